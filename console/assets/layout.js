// Lays out an ASL definition as a top-down graph: states in layers by longest path from
// StartAt, Parallel and Map states as boxes around their branches, edges routed around the
// layers they skip. Pure geometry (no DOM), so that graph.js only draws.

export const NODE_WIDTH = 184;
export const NODE_HEIGHT = 46;
const LAYER_GAP = 46;
const NODE_GAP = 28;
const BRANCH_GAP = 24;
const CONTAINER_PADDING = 16;
const CONTAINER_HEADER = 28;
const LANE_GAP = 22;
const MARKER_SIZE = 26;
const MARGIN = 12;

/** The transitions out of a state: {to, kind} with kind next | default | choice | catch. */
export function transitionsOf(state) {
  const out = [];
  for (const choice of state.Choices ?? []) if (choice.Next) out.push({ to: choice.Next, kind: 'choice' });
  if (state.Default) out.push({ to: state.Default, kind: 'default' });
  if (state.Next) out.push({ to: state.Next, kind: 'next' });
  for (const catcher of state.Catch ?? []) if (catcher.Next) out.push({ to: catcher.Next, kind: 'catch' });
  // A state reached by several transitions of the same kind is drawn once.
  return out.filter((t, i) => out.findIndex((o) => o.to === t.to && o.kind === t.kind) === i);
}

function isTerminal(state) {
  return state.End === true || state.Type === 'Succeed' || state.Type === 'Fail';
}

/** The nested machines of a state: Parallel branches or the Map's item processor. */
function childMachines(state) {
  if (state.Type === 'Parallel') return state.Branches ?? [];
  if (state.Type === 'Map') {
    const processor = state.ItemProcessor ?? state.Iterator;
    return processor ? [processor] : [];
  }
  return [];
}

/**
 * Lays out one machine ({StartAt, States}). With `markers`, a start circle above StartAt and an
 * end circle below the terminal states, as the AWS console draws the top level.
 * Returns {width, height, nodes, edges}; nodes are {name, type, x, y, width, height, children}
 * where children are the layouts of nested machines with their offsets {dx, dy, layout};
 * edges are {from, to, kind, points, back}.
 */
export function layoutMachine(machine, { markers = false } = {}) {
  const states = machine?.States ?? {};
  const names = Object.keys(states);
  const START = '\u0000start';
  const END = '\u0000end';
  const successors = new Map(names.map((name) => [name, transitionsOf(states[name]).filter((t) => t.to in states)]));
  if (markers) {
    if (machine.StartAt in states) successors.set(START, [{ to: machine.StartAt, kind: 'start' }]);
    for (const name of names) if (isTerminal(states[name])) successors.get(name).push({ to: END, kind: 'end' });
    successors.set(END, []);
  }

  // Depth-first from StartAt (then any unreachable state): the order of discovery and the back
  // edges (to a state still on the stack: loops).
  const order = [];
  const postorder = [];
  const onStack = new Set();
  const seen = new Set();
  const backEdges = new Set();
  const visit = (name) => {
    seen.add(name);
    onStack.add(name);
    order.push(name);
    for (const { to } of successors.get(name)) {
      if (onStack.has(to)) backEdges.add(`${name}\u0001${to}`);
      else if (!seen.has(to)) visit(to);
    }
    onStack.delete(name);
    postorder.push(name);
  };
  const roots = markers && successors.has(START) ? [START] : [machine.StartAt];
  for (const root of [...roots, ...names, ...(markers ? [END] : [])]) {
    if (successors.has(root) && !seen.has(root)) visit(root);
  }
  const isBack = (from, to) => backEdges.has(`${from}\u0001${to}`);

  // Layers by longest path over forward edges (reverse postorder is a topological order).
  const rank = new Map();
  for (const name of [...postorder].reverse()) {
    if (!rank.has(name)) rank.set(name, 0);
    for (const { to } of successors.get(name)) {
      if (!isBack(name, to)) rank.set(to, Math.max(rank.get(to) ?? 0, rank.get(name) + 1));
    }
  }
  // The end marker sits alone below everything.
  if (markers) rank.set(END, Math.max(0, ...[...rank].filter(([n]) => n !== END).map(([, r]) => r)) + 1);

  const nodes = new Map();
  for (const name of order) {
    if (name === START || name === END) {
      nodes.set(name, { name, type: name === START ? 'Start' : 'End', width: MARKER_SIZE, height: MARKER_SIZE, marker: true, children: [] });
      continue;
    }
    const state = states[name];
    const machines = childMachines(state);
    if (machines.length === 0) {
      nodes.set(name, { name, type: state.Type, width: NODE_WIDTH, height: NODE_HEIGHT, children: [] });
      continue;
    }
    const layouts = machines.map((child) => layoutMachine(child));
    const innerWidth = layouts.reduce((sum, l) => sum + l.width, 0) + BRANCH_GAP * (layouts.length - 1);
    const innerHeight = Math.max(...layouts.map((l) => l.height));
    const width = Math.max(NODE_WIDTH, innerWidth + 2 * CONTAINER_PADDING);
    let dx = (width - innerWidth) / 2;
    const children = layouts.map((layout) => {
      const child = { dx, dy: CONTAINER_HEADER + CONTAINER_PADDING + (innerHeight - layout.height) / 2, layout };
      dx += layout.width + BRANCH_GAP;
      return child;
    });
    nodes.set(name, {
      name, type: state.Type, width, height: innerHeight + CONTAINER_HEADER + 2 * CONTAINER_PADDING, children,
    });
  }

  // Place the layers top-down, each centred on x = 0, in order of discovery.
  const layers = [];
  for (const name of order) {
    const r = rank.get(name);
    (layers[r] ??= []).push(nodes.get(name));
  }
  let y = 0;
  const layerTop = [];
  for (const [r, layer] of layers.entries()) {
    if (!layer) continue;
    const height = Math.max(...layer.map((n) => n.height));
    const width = layer.reduce((sum, n) => sum + n.width, 0) + NODE_GAP * (layer.length - 1);
    let x = -width / 2;
    for (const node of layer) {
      node.x = x;
      node.y = y + (height - node.height) / 2;
      node.rank = r;
      x += node.width + NODE_GAP;
    }
    layerTop[r] = y;
    y += height + LAYER_GAP;
  }

  const edges = [];
  for (const [from, transitions] of successors) {
    for (const { to, kind } of transitions) {
      edges.push(route(nodes.get(from), nodes.get(to), kind, isBack(from, to), layers));
    }
  }

  // Normalise to a box starting at (MARGIN, MARGIN) that holds every node and route.
  const xs = [];
  const ys = [];
  for (const node of nodes.values()) {
    xs.push(node.x, node.x + node.width);
    ys.push(node.y, node.y + node.height);
  }
  for (const edge of edges) for (const [px, py] of edge.points) { xs.push(px); ys.push(py); }
  const minX = Math.min(...xs) - MARGIN;
  const minY = Math.min(...ys) - MARGIN;
  for (const node of nodes.values()) {
    node.x -= minX;
    node.y -= minY;
  }
  for (const edge of edges) edge.points = edge.points.map(([px, py]) => [px - minX, py - minY]);
  return {
    width: Math.max(...xs) - minX + MARGIN,
    height: Math.max(...ys) - minY + MARGIN,
    nodes: [...nodes.values()].map(({ rank: _rank, ...node }) => ({ ...node, name: node.marker ? node.type : node.name })),
    edges: edges.map((edge) => ({ ...edge, from: label(edge.from), to: label(edge.to) })),
  };

  function label(name) {
    return name === START ? 'Start' : name === END ? 'End' : name;
  }
}

/** The route of one edge as a polyline. */
function route(source, target, kind, back, layers) {
  const sourceCenterX = source.x + source.width / 2;
  const targetCenterX = target.x + target.width / 2;
  const edge = { from: source.name, to: target.name, kind, back };
  const between = layers.slice(Math.min(source.rank, target.rank) + 1, Math.max(source.rank, target.rank)).flat().filter(Boolean);

  if (back) {
    // Loops go up on the left of everything they pass.
    const passed = layers.slice(target.rank, source.rank + 1).flat().filter(Boolean);
    const laneX = Math.min(...passed.map((n) => n.x)) - LANE_GAP;
    const sourceY = source.y + source.height / 2;
    const targetY = target.y + target.height / 2;
    edge.points = [[source.x, sourceY], [laneX, sourceY], [laneX, targetY], [target.x, targetY]];
    return edge;
  }
  if (between.length > 0) {
    // Down into the gap below the source, along it to a lane beside the layers in between, down
    // the lane, and along the gap above the target: gaps hold no node, lanes pass beside them.
    const left = Math.min(...between.map((n) => n.x)) - LANE_GAP;
    const right = Math.max(...between.map((n) => n.x + n.width)) + LANE_GAP;
    const detour = (laneX) => Math.abs(sourceCenterX - laneX) + Math.abs(laneX - targetCenterX);
    const laneX = detour(left) < detour(right) ? left : right;
    const belowSource = source.y + source.height + LAYER_GAP / 2 - 4;
    const aboveTarget = target.y - LAYER_GAP / 2 + 4;
    edge.points = [
      [sourceCenterX, source.y + source.height], [sourceCenterX, belowSource], [laneX, belowSource],
      [laneX, aboveTarget], [targetCenterX, aboveTarget], [targetCenterX, target.y],
    ];
    return edge;
  }
  const startY = source.y + source.height;
  const endY = target.y;
  if (Math.abs(sourceCenterX - targetCenterX) < 1) {
    edge.points = [[sourceCenterX, startY], [targetCenterX, endY]];
  } else {
    const middleY = (startY + endY) / 2;
    edge.points = [[sourceCenterX, startY], [sourceCenterX, middleY], [targetCenterX, middleY], [targetCenterX, endY]];
  }
  return edge;
}
