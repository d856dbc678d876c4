// The images list: thumbnails, newest first, by status, in pages.
import { h, replaceChildren, formatDate } from './dom.js';
import { images } from './api.js';
import { statusBadge } from './execution.js';

const PAGE_SIZE = 24;
const STATUSES = ['SUCCEEDED', 'REJECTED', 'FAILED'];
const query = { status: '', tokens: [undefined], page: 0 };

/** The smallest rendition, for a thumbnail. */
export function thumbnailOf(record) {
  const [smallest] = [...(record.renditions ?? [])].sort((a, b) => a.width * a.height - b.width * b.height);
  return smallest;
}

function card(record) {
  const thumb = thumbnailOf(record);
  return h('a.card', { href: `#/image/${encodeURIComponent(record.imageId)}`, 'data-image-id': record.imageId },
    h('div.thumb', {}, thumb
      ? h('img', { src: thumb.url, alt: record.imageId, loading: 'lazy' })
      : h('span.muted', {}, record.status === 'REJECTED' ? record.error ?? 'Rejected' : 'No rendition')),
    h('div.card-text', {},
      h('span.mono', { title: record.imageId }, record.imageId),
      statusBadge(record.status),
      h('span.muted', {}, formatDate(record.uploadedAt))));
}

export function imagesView() {
  const grid = h('div.grid');
  const pager = h('div.pager');
  const select = h('select', { 'aria-label': 'Status' },
    h('option', { value: '' }, 'All statuses'),
    STATUSES.map((s) => h('option', { value: s, selected: query.status === s }, s)));

  async function load() {
    try {
      const page = await images({ status: query.status || undefined, limit: PAGE_SIZE, nextToken: query.tokens[query.page] });
      query.tokens[query.page + 1] = page.nextToken ?? undefined;
      replaceChildren(grid, page.items.length ? page.items.map(card) : h('p.muted', {}, 'No images yet.'));
      replaceChildren(pager,
        h('button', { type: 'button', disabled: query.page === 0, onclick: () => { query.page -= 1; load(); } }, '‹ Newer'),
        h('span', {}, `Page ${query.page + 1}`),
        h('button', { type: 'button', disabled: !page.nextToken, onclick: () => { query.page += 1; load(); } }, 'Older ›'));
    } catch (error) {
      replaceChildren(grid, h('p.error', {}, `Could not list images: ${error.message}`));
    }
  }
  select.addEventListener('change', () => {
    query.status = select.value;
    query.page = 0;
    query.tokens = [undefined];
    load();
  });
  load();
  return h('section.panel', {}, h('div.toolbar', {}, h('h1', {}, 'Images'), select), grid, h('div.list-foot', {}, pager));
}
