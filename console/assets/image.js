// One image: the original, every rendition, the metadata and the EXIF.
import { h, replaceChildren, formatBytes, formatDate } from './dom.js';
import { image } from './api.js';
import { statusBadge } from './execution.js';

const POLL_MS = 1000;

const EXIF_LABELS = {
  make: 'Camera make', model: 'Camera model', lensMake: 'Lens make', lensModel: 'Lens',
  dateTimeOriginal: 'Taken', orientation: 'Orientation', exposureTime: 'Exposure (s)',
  fNumber: 'Aperture (f/)', iso: 'ISO', focalLengthMm: 'Focal length (mm)',
};

/** EXIF rationals arrive as long decimals (57.019002375296914 mm): two decimals at most. */
function formatExifValue(value) {
  return typeof value === 'number' && !Number.isInteger(value) ? String(Math.round(value * 100) / 100) : value;
}

function table(rows) {
  const shown = rows.filter(([, value]) => value !== undefined && value !== null && value !== '');
  return h('table.kv', {}, h('tbody', {}, shown.map(([label, value]) => h('tr', {}, h('th', {}, label), h('td', {}, value)))));
}

function figure(title, url, caption) {
  return h('figure', {},
    h('a', { href: url, target: '_blank', rel: 'noopener' }, h('img', { src: url, alt: title, loading: 'lazy' })),
    h('figcaption', {}, h('strong', {}, title), caption ? ` ${caption}` : null));
}

function render(root, record) {
  const metadata = table([
    ['Status', statusBadge(record.status)],
    ['Image id', h('span.mono', {}, record.imageId)],
    ['Bucket', record.bucket], ['Key', h('span.mono', {}, record.key)], ['Version', record.versionId],
    ['Format', record.format], ['Content type', record.contentType],
    ['Size', record.bytes !== undefined ? formatBytes(record.bytes) : undefined],
    ['Dimensions', record.width ? `${record.width} × ${record.height}` : undefined],
    ['SHA-256', record.sha256 ? h('span.mono.wrap', {}, record.sha256) : undefined],
    ['Uploaded', formatDate(record.uploadedAt)], ['Processed', formatDate(record.processedAt)],
    ['Execution', record.executionArn
      ? h('a', { href: `#/execution/${encodeURIComponent(record.executionArn)}` }, record.executionArn.split(':').pop())
      : undefined],
  ]);
  const exif = record.exif
    ? table([
      ...Object.entries(EXIF_LABELS).map(([key, label]) => [label, formatExifValue(record.exif[key])]),
      ['GPS', record.exif.gps ? `${record.exif.gps.latitude}, ${record.exif.gps.longitude}` : undefined],
    ])
    : h('p.muted', {}, record.status === 'PROCESSING' ? 'Not read yet.' : 'This image has no EXIF.');
  const originalUrl = record.originalUrl;
  replaceChildren(root,
    h('p.crumbs', {}, h('a', { href: '#/images' }, 'Images'), ' / ', record.imageId),
    record.error || record.cause
      ? h('section.panel.failure', {},
        h('h3', {}, record.failedState ? `${record.status} in ${record.failedState}` : record.status),
        h('p.error-name', {}, record.error ?? ''), record.cause ? h('pre.json', {}, record.cause) : null)
      : null,
    h('div.columns', {},
      h('section.panel.pictures', {},
        h('h2', {}, 'Renditions'),
        h('div.figures', {},
          (record.renditions ?? []).map((r) => figure(r.name, r.url, `${r.width} × ${r.height} · ${formatBytes(r.bytes)}`)),
          originalUrl ? figure('original', originalUrl, record.width ? `${record.width} × ${record.height}` : '') : null),
        record.status === 'PROCESSING' ? h('p.muted', {}, 'Processing…') : null),
      h('section.panel.side', {}, h('h2', {}, 'Metadata'), metadata, h('h2', {}, 'EXIF'), exif,
        record.warnings?.length ? [h('h2', {}, 'Warnings'), h('ul', {}, record.warnings.map((w) => h('li', {}, w)))] : null)));
}

export function imageView(imageId) {
  const root = h('div.image-page', {}, h('p.muted', {}, 'Loading…'));
  const load = async () => {
    try {
      const record = await image(imageId);
      if (!root.isConnected && root.dataset.loaded) return;
      root.dataset.loaded = 'true';
      root.dataset.status = record.status;
      render(root, record);
      if (record.status === 'PROCESSING') setTimeout(load, POLL_MS);
    } catch (error) {
      replaceChildren(root, h('p.error', {}, error.status === 404 ? `No image ${imageId}.` : `Could not load the image: ${error.message}`));
    }
  };
  load();
  return root;
}
