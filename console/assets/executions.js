// The executions list: newest first.
import { h } from './dom.js';
import { sfn, stateMachineArn } from './api.js';

export function executionsView() {
  const body = h('tbody');
  const root = h('section.panel', {}, h('h1', {}, 'Executions'),
    h('table.list', {}, h('thead', {}, h('tr', {}, h('th', {}, 'Name'), h('th', {}, 'Status'), h('th', {}, 'Started'))), body));
  stateMachineArn()
    .then((arn) => sfn('ListExecutions', { stateMachineArn: arn, maxResults: 50 }))
    .then(({ executions }) => {
      body.replaceChildren(...executions.map((e) => h('tr', {},
        h('td', {}, h('a', { href: `#/execution/${encodeURIComponent(e.executionArn)}` }, e.name)),
        h('td', {}, h(`span.status.${e.status.toLowerCase()}`, {}, e.status)),
        h('td', {}, new Date(e.startDate * 1000).toLocaleString()))));
    });
  return root;
}
