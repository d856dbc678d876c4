// The event history as the AWS console shows it: id, type, step, resource, elapsed time and
// date; each row opens to its details, input and output as formatted JSON.
import { h, formatDate, prettyJson } from './dom.js';
import { detailsOf } from './states.js';

const PAYLOAD_FIELDS = ['input', 'output', 'parameters', 'error', 'cause'];

/** The tone of an event type, for its colour. */
function toneOf(type) {
  if (/(Failed|TimedOut|Aborted)$/.test(type)) return 'bad';
  if (/(Succeeded|StateExited)$/.test(type)) return 'good';
  if (/Redriven$/.test(type)) return 'note';
  return 'plain';
}

function resourceOf(details) {
  if (!details) return '';
  const resource = details.resource ?? '';
  // Lambda ARNs are long: the function name says enough in the table.
  const lambda = /:function:([^:]+)/.exec(resource);
  return lambda ? lambda[1] : [details.resourceType, resource].filter(Boolean).join(':');
}

function detailsPanel(event) {
  const details = detailsOf(event) ?? {};
  const blocks = [];
  for (const field of PAYLOAD_FIELDS) {
    if (details[field] === undefined) continue;
    blocks.push(h('div.payload', {}, h('h4', {}, field[0].toUpperCase() + field.slice(1)), h('pre.json', {}, prettyJson(details[field]))));
  }
  const rest = Object.fromEntries(Object.entries(details).filter(([key]) => !PAYLOAD_FIELDS.includes(key)));
  if (Object.keys(rest).length > 0) {
    blocks.push(h('div.payload', {}, h('h4', {}, 'Details'), h('pre.json', {}, JSON.stringify(rest, null, 2))));
  }
  if (blocks.length === 0) blocks.push(h('p.muted', {}, 'This event has no details.'));
  return h('div.event-details', {}, blocks);
}

/**
 * The history table. `owners` maps event ids to state names (attributeEvents); `stateFilter`
 * keeps only the events of one state; `open` is the set of expanded event ids, kept by the
 * caller across refreshes.
 */
export function historyTable(events, { owners, startDate, stateFilter, open }) {
  const shown = stateFilter ? events.filter((event) => owners.get(event.id) === stateFilter) : events;
  const body = h('tbody');
  for (const event of shown) {
    const details = detailsOf(event);
    const elapsed = startDate === undefined ? '' : Math.max(0, Math.round((event.timestamp - startDate) * 1000));
    const expanded = open.has(event.id);
    const row = h(`tr.event.event-${toneOf(event.type)}${expanded ? '.open' : ''}`, {
      'data-event-id': event.id, tabindex: 0, 'aria-expanded': String(expanded),
    },
    h('td.id', {}, h('span.chevron', { 'aria-hidden': 'true' }, '▸'), ` ${event.id}`),
    h('td.type', {}, event.type),
    h('td', {}, owners.get(event.id) ?? ''),
    h('td.resource', {}, resourceOf(details)),
    h('td.num', {}, elapsed === '' ? '' : elapsed.toLocaleString()),
    h('td.date', {}, formatDate(event.timestamp)));
    const detailRow = h('tr.event-detail-row', { hidden: !expanded }, h('td', { colspan: 6 }, expanded ? detailsPanel(event) : null));
    const toggle = () => {
      const nowOpen = !open.has(event.id);
      if (nowOpen) open.add(event.id); else open.delete(event.id);
      row.classList.toggle('open', nowOpen);
      row.setAttribute('aria-expanded', String(nowOpen));
      detailRow.hidden = !nowOpen;
      if (nowOpen && !detailRow.firstChild.firstChild) detailRow.firstChild.append(detailsPanel(event));
    };
    row.addEventListener('click', toggle);
    row.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); toggle(); } });
    body.append(row, detailRow);
  }
  return h('table.list.history', {},
    h('thead', {}, h('tr', {},
      h('th', {}, 'ID'), h('th', {}, 'Type'), h('th', {}, 'Step'), h('th', {}, 'Resource'),
      h('th.num', {}, 'Started after (ms)'), h('th', {}, 'Date and time'))),
    body);
}
