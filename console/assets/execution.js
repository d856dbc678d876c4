// One execution: summary, actions (redrive, start again), the coloured graph, error and cause,
// input and output, and the event history. Refreshes itself while the execution runs.
import { h, replaceChildren, formatDate, formatDuration, prettyJson } from './dom.js';
import { sfn, definitionOf, executionHistory } from './api.js';
import { renderGraph } from './graph.js';
import { historyTable } from './history.js';
import { attributeEvents, stateProgress, failedStateName, Status, STATUS_LABELS } from './states.js';
import { imageIdOfInput } from './ids.js';

const REFRESH_MS = 1000;
const OPEN_STATUSES = new Set(['RUNNING', 'PENDING_REDRIVE']);

export function statusBadge(status) {
  return h(`span.badge.badge-${status.toLowerCase()}`, {}, status.replace('_', ' '));
}

function legend() {
  return h('ul.legend', {}, Object.values(Status).map((status) =>
    h('li', {}, h(`span.swatch.state-${status}`), STATUS_LABELS[status])));
}

export function executionView(executionArn) {
  const summary = h('section.panel.summary', {}, h('p.muted', {}, 'Loading…'));
  const graphPanel = h('div.graph-scroll');
  const statePanel = h('div.state-detail');
  const historyPanel = h('div');
  const dataPanel = h('div.io');
  const message = h('div.message', { role: 'status' });
  const root = h('div.execution-page', {},
    h('p.crumbs', {}, h('a', { href: '#/executions' }, 'Executions'), ' / ', executionArn.split(':').pop()),
    message,
    summary,
    h('div.columns', {},
      h('section.panel.graph-panel', {}, h('h2', {}, 'Graph'), graphPanel, legend()),
      h('section.panel.side', {}, statePanel, dataPanel)),
    h('section.panel', {}, h('h2', {}, 'Events'), historyPanel));

  const view = {
    selected: undefined,
    openEvents: new Set(),
    description: undefined,
    definition: undefined,
    events: [],
    imageId: undefined,
    busy: false,
  };
  let timer;
  // Each refresh has a number: an answer that arrives after a newer refresh started is dropped.
  let generation = 0;

  const show = (text, tone = 'info') => replaceChildren(message, text ? h(`p.flash.${tone}`, {}, text) : null);

  async function load() {
    const description = await sfn('DescribeExecution', { executionArn });
    const [definition, events, imageId] = await Promise.all([
      definitionOf(description.stateMachineArn),
      executionHistory(executionArn),
      view.imageId ?? imageIdOfInput(description.input),
    ]);
    return { description, definition, events, imageId };
  }

  function render() {
    const { description, definition, events } = view;
    const progress = stateProgress(definition, events, description.status);
    const owners = attributeEvents(events);
    const failedState = failedStateName(progress);
    renderSummary(description, failedState);
    replaceChildren(graphPanel, renderGraph(definition, {
      progress,
      selected: view.selected,
      onSelect: (name) => { view.selected = view.selected === name ? undefined : name; render(); },
    }));
    renderState(progress, definition, owners);
    replaceChildren(dataPanel,
      h('h3', {}, 'Input'), h('pre.json', {}, prettyJson(description.input ?? '')),
      description.output !== undefined ? [h('h3', {}, 'Output'), h('pre.json', {}, prettyJson(description.output))] : null);
    const filter = view.selected
      ? h('p.filter', {}, `Events of ${view.selected} `, h('button.link', { type: 'button', onclick: () => { view.selected = undefined; render(); } }, 'show all'))
      : null;
    replaceChildren(historyPanel, filter, historyTable(events, {
      owners, startDate: description.startDate, stateFilter: view.selected, open: view.openEvents,
    }));
  }

  function renderSummary(description, failedState) {
    const redrivable = description.redriveStatus === 'REDRIVABLE';
    const fields = [
      ['Status', statusBadge(description.status)],
      ['Started', formatDate(description.startDate)],
      ['Ended', description.stopDate ? formatDate(description.stopDate) : '—'],
      ['Duration', formatDuration(description.startDate, description.stopDate)],
      ['Redrives', String(description.redriveCount ?? 0)],
      ['Image', view.imageId ? h('a', { href: `#/image/${encodeURIComponent(view.imageId)}` }, view.imageId) : '—'],
    ];
    replaceChildren(summary,
      h('div.summary-head', {},
        h('div', {}, h('h1', {}, description.name), h('p.arn', {}, description.executionArn)),
        h('div.actions', {},
          h('button.primary', {
            type: 'button', id: 'redrive', disabled: !redrivable || view.busy,
            title: redrivable ? 'Resume from the state that failed' : 'Only failed, timed-out or aborted executions can be redriven',
            onclick: redrive,
          }, 'Redrive'),
          h('button', { type: 'button', id: 'restart', disabled: view.busy, onclick: startAgain }, 'Start a new execution with the same input'))),
      h('dl.fields', {}, fields.map(([label, value]) => h('div', {}, h('dt', {}, label), h('dd', {}, value)))),
      description.error || description.cause
        ? h('div.failure', {},
          h('h3', {}, failedState ? `Failed in ${failedState}` : 'Failed'),
          h('p.error-name', {}, description.error ?? ''),
          description.cause ? h('pre.json', {}, prettyJson(description.cause)) : null)
        : null);
  }

  function renderState(progress, definition, owners) {
    if (!view.selected) {
      replaceChildren(statePanel, h('p.muted', {}, 'Select a state in the graph to see what happened to it and filter the events.'));
      return;
    }
    const entry = progress.get(view.selected);
    const stateEvents = view.events.filter((event) => owners.get(event.id) === view.selected);
    const lastExited = [...stateEvents].reverse().find((event) => event.type.endsWith('StateExited'));
    replaceChildren(statePanel,
      h('h2', {}, view.selected),
      h('p', {}, h(`span.swatch.state-${entry?.status ?? Status.NOT_REACHED}`), ` ${STATUS_LABELS[entry?.status ?? Status.NOT_REACHED]}`),
      entry?.attempts ? h('p.muted', {}, `${entry.attempts} attempt${entry.attempts === 1 ? '' : 's'}, ${entry.failures} failed`) : null,
      entry?.lastError ? h('p.error-name', {}, entry.lastError) : null,
      entry?.lastCause ? h('pre.json', {}, prettyJson(entry.lastCause)) : null,
      lastExited ? [h('h3', {}, 'Output'), h('pre.json', {}, prettyJson(lastExited.stateExitedEventDetails?.output ?? ''))] : null,
      h('details', {}, h('summary', {}, 'Definition'), h('pre.json', {}, JSON.stringify(findState(definition, view.selected), null, 2))));
  }

  async function redrive() {
    view.busy = true;
    render();
    try {
      await sfn('RedriveExecution', { executionArn });
      show('Redriven: the execution resumes from the state that failed.', 'ok');
    } catch (error) {
      show(`Redrive refused: ${error.message}`, 'bad');
    } finally {
      view.busy = false;
    }
    await refresh();
  }

  async function startAgain() {
    view.busy = true;
    render();
    try {
      const started = await sfn('StartExecution', {
        stateMachineArn: view.description.stateMachineArn,
        input: view.description.input,
      });
      location.hash = `#/execution/${encodeURIComponent(started.executionArn)}`;
    } catch (error) {
      view.busy = false;
      show(`Could not start: ${error.message}`, 'bad');
      render();
    }
  }

  async function refresh() {
    clearTimeout(timer);
    // The view was left: stop refreshing.
    if (!root.isConnected && view.description) return;
    const mine = ++generation;
    try {
      const loaded = await load();
      if (mine !== generation) return;
      Object.assign(view, loaded);
      render();
    } catch (error) {
      if (mine !== generation) return;
      show(`Could not load the execution: ${error.message}`, 'bad');
    }
    if (OPEN_STATUSES.has(view.description?.status)) timer = setTimeout(refresh, REFRESH_MS);
  }

  refresh();
  return root;
}

/** The definition of a state by name, searched through nested machines. */
function findState(machine, name) {
  for (const [stateName, state] of Object.entries(machine?.States ?? {})) {
    if (stateName === name) return state;
    for (const child of [...(state.Branches ?? []), state.ItemProcessor ?? state.Iterator].filter(Boolean)) {
      const found = findState(child, name);
      if (found) return found;
    }
  }
  return undefined;
}
