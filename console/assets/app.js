// The console's entry point: hash routing between the views.
import { h, replaceChildren } from './dom.js';
import { stateMachineArn } from './api.js';
import { executionsView } from './executions.js';

const view = document.getElementById('view');

/** Routes: #/executions (default). */
function route() {
  const path = location.hash.replace(/^#/, '') || '/executions';
  document.querySelectorAll('[data-nav]').forEach((link) => {
    link.classList.toggle('active', path.startsWith(`/${link.dataset.nav}`));
  });
  replaceChildren(view, executionsView());
}

window.addEventListener('hashchange', route);
stateMachineArn()
  .then((arn) => { document.getElementById('machine').textContent = arn.split(':').pop(); })
  .catch((error) => { replaceChildren(view, h('p.error', {}, `The twin did not answer: ${error.message}`)); });
route();
