// Draws the state machine as SVG, each state coloured by what happened to it.
import { svg } from './dom.js';
import { layoutMachine } from './layout.js';
import { Status, STATUS_LABELS } from './states.js';

const CORNER = 6;
const MAX_NAME_CHARS = 24;

/** A polyline with rounded corners as an SVG path. */
function pathOf(points) {
  if (points.length < 3) return `M${points.map(([x, y]) => `${x},${y}`).join(' L')}`;
  let d = `M${points[0][0]},${points[0][1]}`;
  for (let i = 1; i < points.length - 1; i += 1) {
    const [px, py] = points[i - 1];
    const [x, y] = points[i];
    const [nx, ny] = points[i + 1];
    const inLength = Math.hypot(x - px, y - py);
    const outLength = Math.hypot(nx - x, ny - y);
    const r = Math.min(CORNER, inLength / 2, outLength / 2);
    const before = [x - ((x - px) / (inLength || 1)) * r, y - ((y - py) / (inLength || 1)) * r];
    const after = [x + ((nx - x) / (outLength || 1)) * r, y + ((ny - y) / (outLength || 1)) * r];
    d += ` L${before[0]},${before[1]} Q${x},${y} ${after[0]},${after[1]}`;
  }
  const [lx, ly] = points[points.length - 1];
  return `${d} L${lx},${ly}`;
}

function shortName(name) {
  return name.length > MAX_NAME_CHARS ? `${name.slice(0, MAX_NAME_CHARS - 1)}…` : name;
}

/** Whether the execution went along an edge, from what happened to both ends. */
function edgeTaken(edge, statusOf) {
  const from = edge.from === 'Start' ? Status.SUCCEEDED : statusOf(edge.from);
  const to = edge.to === 'End' ? undefined : statusOf(edge.to);
  const reached = (s) => s !== undefined && s !== Status.NOT_REACHED;
  if (edge.to === 'End') return from === Status.SUCCEEDED || from === Status.RETRIED || from === Status.FAILED;
  if (!reached(to)) return false;
  if (edge.kind === 'catch') return from === Status.CAUGHT;
  return from === Status.SUCCEEDED || from === Status.RETRIED || from === Status.CAUGHT || edge.from === 'Start';
}

function tooltip(node, entry) {
  const status = entry ? STATUS_LABELS[entry.status] : STATUS_LABELS[Status.NOT_REACHED];
  const lines = [`${node.name} (${node.type})`, status];
  if (entry?.attempts > 1) lines.push(`${entry.attempts} attempts`);
  if (entry?.lastError) lines.push(`${entry.lastError}${entry.lastCause ? `: ${entry.lastCause}` : ''}`);
  return lines.join('\n');
}

function drawMachine(layout, progress, options) {
  const statusOf = (name) => progress?.get(name)?.status;
  const group = svg('g');
  for (const edge of layout.edges) {
    const taken = progress ? edgeTaken(edge, statusOf) : false;
    group.append(svg('path', {
      class: `edge edge-${edge.kind}${taken ? ' taken' : ''}`,
      d: pathOf(edge.points),
      'marker-end': `url(#${options.idPrefix}-arrow${taken ? '-taken' : ''})`,
    }));
  }
  for (const node of layout.nodes) {
    if (node.marker) {
      const r = node.width / 2;
      group.append(svg('g', { class: `marker marker-${node.type.toLowerCase()}`, transform: `translate(${node.x + r},${node.y + r})` },
        svg('circle', { r }),
        svg('text', { 'text-anchor': 'middle', dy: '0.35em' }, node.type)));
      continue;
    }
    const entry = progress?.get(node.name);
    const status = entry?.status ?? Status.NOT_REACHED;
    const container = node.children.length > 0;
    const attributes = {
      class: `state state-${status}${container ? ' container' : ''}${options.selected === node.name ? ' selected' : ''}`,
      transform: `translate(${node.x},${node.y})`,
      'data-state': node.name,
      'data-status': status,
      tabindex: 0,
      role: 'button',
      'aria-label': `${node.name}: ${STATUS_LABELS[status]}`,
    };
    const box = svg('g', attributes, svg('title', {}, tooltip(node, entry)));
    box.append(svg('rect', { class: 'box', width: node.width, height: node.height, rx: container ? 10 : 8 }));
    if (container) {
      box.append(svg('text', { class: 'name', x: 12, y: 18 }, shortName(node.name)));
      box.append(svg('text', { class: 'type', x: node.width - 12, y: 18, 'text-anchor': 'end' }, node.type));
      for (const child of node.children) {
        const inner = drawMachine(child.layout, progress, options);
        inner.setAttribute('transform', `translate(${child.dx},${child.dy})`);
        box.append(svg('rect', { class: 'branch', x: child.dx, y: child.dy, width: child.layout.width, height: child.layout.height, rx: 8 }), inner);
      }
    } else {
      box.append(svg('text', { class: 'name', x: node.width / 2, y: 20, 'text-anchor': 'middle' }, shortName(node.name)));
      const detail = entry?.attempts > 1 ? `${node.type} · ${entry.attempts} attempts` : node.type;
      box.append(svg('text', { class: 'type', x: node.width / 2, y: 36, 'text-anchor': 'middle' }, detail));
    }
    if (options.onSelect) {
      const select = (event) => {
        event.stopPropagation();
        options.onSelect(node.name);
      };
      box.addEventListener('click', select);
      box.addEventListener('keydown', (event) => { if (event.key === 'Enter' || event.key === ' ') select(event); });
    }
    group.append(box);
  }
  return group;
}

let graphs = 0;

/**
 * The SVG of a definition. `progress` (from stateProgress) colours the states; `onSelect(name)`
 * is called when a state is clicked; `selected` names the highlighted state.
 */
export function renderGraph(definition, { progress, onSelect, selected } = {}) {
  const layout = layoutMachine(definition, { markers: true });
  graphs += 1;
  const idPrefix = `graph${graphs}`;
  const arrow = (id, className) => svg('marker', { id, class: className, viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' },
    svg('path', { d: 'M0,0 L10,5 L0,10 z' }));
  const root = svg('svg', {
    class: 'graph',
    viewBox: `0 0 ${layout.width} ${layout.height}`,
    width: layout.width,
    height: layout.height,
    role: 'img',
    'aria-label': 'State machine graph',
  }, svg('defs', {}, arrow(`${idPrefix}-arrow`, 'arrow'), arrow(`${idPrefix}-arrow-taken`, 'arrow taken')));
  root.append(drawMachine(layout, progress, { idPrefix, onSelect, selected }));
  return root;
}
