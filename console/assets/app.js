// The console's entry point: hash routing between the views, one page.
//   #/executions          the list (with uploads)
//   #/execution/{arn}     one execution
//   #/images              the images
//   #/image/{id}          one image
import { h, replaceChildren } from './dom.js';
import { stateMachineArn } from './api.js';
import { executionsView } from './executions.js';
import { executionView } from './execution.js';
import { imagesView } from './images.js';
import { imageView } from './image.js';
import { acceptDrops } from './upload.js';

const view = document.getElementById('view');

const routes = [
  [/^\/executions\/?$/, () => executionsView()],
  [/^\/execution\/(.+)$/, (arn) => executionView(decodeURIComponent(arn))],
  [/^\/images\/?$/, () => imagesView()],
  [/^\/image\/(.+)$/, (id) => imageView(decodeURIComponent(id))],
];

function route() {
  const path = location.hash.replace(/^#/, '') || '/executions';
  // "execution/…" belongs to "executions", "image/…" to "images".
  const section = path.split('/')[1] ?? '';
  document.querySelectorAll('[data-nav]').forEach((link) => {
    link.classList.toggle('active', section.startsWith(link.dataset.nav.replace(/s$/, '')));
  });
  for (const [pattern, render] of routes) {
    const match = pattern.exec(path);
    if (match) {
      replaceChildren(view, render(...match.slice(1)));
      window.scrollTo(0, 0);
      return;
    }
  }
  replaceChildren(view, h('section.panel', {}, h('h1', {}, 'Not found'), h('p', {}, 'No page at ', h('code', {}, path), '. ', h('a', { href: '#/executions' }, 'Executions'))));
}

acceptDrops(document);
window.addEventListener('hashchange', route);
stateMachineArn()
  .then((arn) => { document.getElementById('machine').textContent = arn.split(':').pop(); })
  .catch((error) => { document.getElementById('machine').textContent = `twin unreachable: ${error.message}`; });
route();
