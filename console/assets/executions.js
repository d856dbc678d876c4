// The executions list: newest first, filtered by status, searched by image id or name, in
// pages, refreshed live. The upload panel sits on top.
import { h, replaceChildren, formatDate, formatDuration } from './dom.js';
import { sfn, stateMachineArn, image, ApiError } from './api.js';
import { statusBadge } from './execution.js';
import { uploadPanel } from './upload.js';
import { imageIdOfInput } from './ids.js';

const PAGE_SIZE = 20;
const REFRESH_MS = 2000;
const SEARCH_LIMIT = 5000;
const STATUSES = ['RUNNING', 'SUCCEEDED', 'FAILED', 'TIMED_OUT', 'ABORTED', 'PENDING_REDRIVE'];

// Image ids by execution ARN: the input of an execution never changes.
const imageIds = new Map();

function imageIdOf(executionArn) {
  if (!imageIds.has(executionArn)) {
    imageIds.set(executionArn, sfn('DescribeExecution', { executionArn })
      .then((description) => imageIdOfInput(description.input))
      .catch(() => null));
  }
  return imageIds.get(executionArn);
}

/** What the list shows, kept across visits so that going back to the list lands where it was. */
const query = { status: '', search: '', live: true, tokens: [undefined], page: 0 };

/** Every execution (up to SEARCH_LIMIT) whose name, ARN or image id contains `text`. */
async function search(arn, text) {
  const needle = text.trim().toLowerCase();
  const found = [];
  let nextToken;
  let scanned = 0;
  do {
    const page = await sfn('ListExecutions', { stateMachineArn: arn, statusFilter: query.status || undefined, maxResults: 1000, nextToken });
    scanned += page.executions.length;
    found.push(...page.executions.filter((e) => e.name.toLowerCase().includes(needle) || e.executionArn.toLowerCase().includes(needle)));
    nextToken = page.nextToken;
  } while (nextToken && scanned < SEARCH_LIMIT);
  // An image id names one upload: its metadata knows the latest execution.
  try {
    const record = await image(text.trim());
    if (record.executionArn && !found.some((e) => e.executionArn === record.executionArn)) {
      const described = await sfn('DescribeExecution', { executionArn: record.executionArn });
      if (!query.status || described.status === query.status) found.unshift(described);
    }
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 404)) throw error;
  }
  return found;
}

function row(execution) {
  const imageCell = h('td.mono');
  imageIdOf(execution.executionArn).then((id) => {
    if (id) replaceChildren(imageCell, h('a', { href: `#/image/${encodeURIComponent(id)}` }, id));
  });
  return h('tr', { 'data-execution-arn': execution.executionArn, 'data-status': execution.status },
    h('td', {}, h('a.execution-link', { href: `#/execution/${encodeURIComponent(execution.executionArn)}` }, execution.name)),
    h('td', {}, statusBadge(execution.status)),
    imageCell,
    h('td', {}, formatDate(execution.startDate)),
    h('td.num', {}, formatDuration(execution.redriveDate ?? execution.startDate, execution.stopDate)),
    h('td.num', {}, String(execution.redriveCount ?? 0)));
}

export function executionsView() {
  const body = h('tbody');
  const pager = h('div.pager');
  const note = h('p.muted.count');
  const statusSelect = h('select', { id: 'status-filter', 'aria-label': 'Status' },
    h('option', { value: '' }, 'All statuses'),
    STATUSES.map((s) => h('option', { value: s, selected: query.status === s }, s.replace('_', ' '))));
  const searchInput = h('input', {
    id: 'search', type: 'search', placeholder: 'Search by image id or execution name', value: query.search, 'aria-label': 'Search',
  });
  const liveToggle = h('input', { type: 'checkbox', id: 'live', checked: query.live });
  let timer;
  let generation = 0;
  let searchResults;

  const root = h('div.executions-page', {},
    uploadPanel(),
    h('section.panel', {},
      h('div.toolbar', {},
        h('h1', {}, 'Executions'),
        statusSelect,
        searchInput,
        h('label.toggle', {}, liveToggle, ' Live'),
        h('button', { type: 'button', onclick: () => refresh({ rescan: true }) }, 'Refresh')),
      h('table.list.executions', {},
        h('thead', {}, h('tr', {},
          h('th', {}, 'Name'), h('th', {}, 'Status'), h('th', {}, 'Image'), h('th', {}, 'Started'),
          h('th.num', {}, 'Duration'), h('th.num', {}, 'Redrives'))),
        body),
      h('div.list-foot', {}, note, pager)));

  function renderRows(executions, hasNext) {
    if (executions.length === 0) {
      replaceChildren(body, h('tr', {}, h('td.empty', { colspan: 6 }, query.search ? 'No execution matches.' : 'No executions yet: upload an image above.')));
    } else {
      replaceChildren(body, executions.map(row));
    }
    replaceChildren(pager,
      h('button', { type: 'button', disabled: query.page === 0, onclick: () => { query.page -= 1; refresh(); } }, '‹ Newer'),
      h('span', {}, `Page ${query.page + 1}`),
      h('button', { type: 'button', disabled: !hasNext, onclick: () => { query.page += 1; refresh(); } }, 'Older ›'));
  }

  async function refresh({ rescan = false } = {}) {
    clearTimeout(timer);
    if (!root.isConnected && generation > 0) return;
    const mine = ++generation;
    try {
      const arn = await stateMachineArn();
      if (query.search.trim()) {
        if (rescan || !searchResults) searchResults = await search(arn, query.search);
        if (mine !== generation) return;
        const start = query.page * PAGE_SIZE;
        renderRows(searchResults.slice(start, start + PAGE_SIZE), start + PAGE_SIZE < searchResults.length);
        note.textContent = `${searchResults.length} matching execution${searchResults.length === 1 ? '' : 's'}`;
      } else {
        const page = await sfn('ListExecutions', {
          stateMachineArn: arn, statusFilter: query.status || undefined, maxResults: PAGE_SIZE, nextToken: query.tokens[query.page],
        });
        if (mine !== generation) return;
        query.tokens[query.page + 1] = page.nextToken;
        renderRows(page.executions, Boolean(page.nextToken));
        note.textContent = '';
      }
    } catch (error) {
      if (mine !== generation) return;
      replaceChildren(body, h('tr', {}, h('td.error', { colspan: 6 }, `Could not list executions: ${error.message}`)));
    }
    if (query.live) timer = setTimeout(() => refresh({ rescan: true }), REFRESH_MS);
  }

  const restart = () => {
    query.page = 0;
    query.tokens = [undefined];
    searchResults = undefined;
    refresh();
  };
  statusSelect.addEventListener('change', () => { query.status = statusSelect.value; restart(); });
  let typing;
  searchInput.addEventListener('input', () => {
    clearTimeout(typing);
    typing = setTimeout(() => { query.search = searchInput.value; restart(); }, 250);
  });
  liveToggle.addEventListener('change', () => { query.live = liveToggle.checked; refresh(); });
  refresh();
  return root;
}
