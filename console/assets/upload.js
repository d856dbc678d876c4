// Uploads: drop files anywhere on the page or pick them; each file shows its progress, then the
// processing status of its image until the pipeline is done with it.
import { h, replaceChildren, formatBytes } from './dom.js';
import { upload, image, ApiError } from './api.js';

const CONCURRENT_UPLOADS = 3;
const POLL_MS = 1000;
const MAX_BUSY_RETRIES = 5;

const queue = [];
let active = 0;
// One panel for the whole page: uploads go on while the views change.
let panel;
let list;

function fileRow(file) {
  const bar = h('progress', { max: 1, value: 0 });
  const status = h('span.upload-status', {}, 'Waiting');
  const links = h('span.upload-links');
  const element = h('li.upload', { 'data-file': file.name },
    h('span.upload-name', { title: file.name }, file.name),
    h('span.muted', {}, formatBytes(file.size)),
    bar, status, links);
  return { file, element, bar, status, links, busyRetries: 0 };
}

function setStatus(item, text, tone) {
  item.status.textContent = text;
  item.status.className = `upload-status${tone ? ` tone-${tone}` : ''}`;
  item.element.dataset.state = tone ?? 'busy';
}

async function watchImage(item, imageId) {
  try {
    const record = await image(imageId);
    if (record.status === 'PROCESSING') {
      setStatus(item, 'Processing…');
      setTimeout(() => watchImage(item, imageId), POLL_MS);
      return;
    }
    const tone = record.status === 'SUCCEEDED' ? 'good' : 'bad';
    setStatus(item, record.status[0] + record.status.slice(1).toLowerCase(), tone);
    item.element.dataset.imageStatus = record.status;
  } catch (error) {
    setStatus(item, `Status unknown: ${error.message}`, 'bad');
  }
}

async function send(item) {
  setStatus(item, 'Uploading…');
  try {
    const answer = await upload(item.file, (fraction) => { item.bar.value = fraction; });
    item.element.dataset.imageId = answer.imageId;
    replaceChildren(item.links,
      h('a', { href: `#/image/${encodeURIComponent(answer.imageId)}` }, 'image'),
      answer.executionArn ? [' · ', h('a', { href: `#/execution/${encodeURIComponent(answer.executionArn)}` }, 'execution')] : null);
    setStatus(item, 'Processing…');
    watchImage(item, answer.imageId);
  } catch (error) {
    // The twin is at its limit of open executions: wait as it asks, then try again.
    if (error instanceof ApiError && error.status === 503 && item.busyRetries < MAX_BUSY_RETRIES) {
      item.busyRetries += 1;
      const seconds = error.retryAfterSeconds ?? 2;
      setStatus(item, `Busy, retrying in ${seconds} s`);
      await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
      return send(item);
    }
    item.bar.value = 0;
    setStatus(item, error.status === 413 ? 'Too large (10 MB at most)' : error.status === 415 ? 'Not an image' : error.message, 'bad');
  }
  return undefined;
}

function pump() {
  while (active < CONCURRENT_UPLOADS && queue.length > 0) {
    const item = queue.shift();
    active += 1;
    send(item).finally(() => {
      active -= 1;
      pump();
    });
  }
}

/** Queues files for upload (at most CONCURRENT_UPLOADS at a time). */
export function uploadFiles(files) {
  uploadPanel();
  for (const file of files) {
    const item = fileRow(file);
    list.prepend(item.element);
    queue.push(item);
  }
  pump();
}

/** The upload panel: a drop zone with a file picker and the list of uploads. */
export function uploadPanel() {
  if (panel) return panel;
  const input = h('input', { type: 'file', id: 'file-input', multiple: true, accept: 'image/*', hidden: true });
  input.addEventListener('change', () => {
    uploadFiles([...input.files]);
    input.value = '';
  });
  list = h('ul.uploads', { id: 'uploads' });
  panel = h('section.panel.upload-panel', {},
    h('label.dropzone', { for: 'file-input' },
      h('strong', {}, 'Drop images here'), ' or ', h('span.link', {}, 'choose files'),
      h('span.muted', {}, ' — JPEG, PNG, WebP, GIF, TIFF; 10 MB each at most'),
      input),
    list);
  return panel;
}

/** Lets files be dropped anywhere on the page. */
export function acceptDrops(target) {
  let depth = 0;
  const hasFiles = (event) => [...(event.dataTransfer?.types ?? [])].includes('Files');
  target.addEventListener('dragenter', (event) => {
    if (!hasFiles(event)) return;
    depth += 1;
    document.body.classList.add('dragging');
  });
  target.addEventListener('dragleave', () => {
    depth = Math.max(0, depth - 1);
    if (depth === 0) document.body.classList.remove('dragging');
  });
  target.addEventListener('dragover', (event) => {
    if (hasFiles(event)) event.preventDefault();
  });
  target.addEventListener('drop', (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    depth = 0;
    document.body.classList.remove('dragging');
    const files = [...event.dataTransfer.files];
    if (files.length === 0) return;
    if (!location.hash.startsWith('#/executions') && location.hash !== '') location.hash = '#/executions';
    uploadFiles(files);
  });
}
