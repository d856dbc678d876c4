// Drives the console in headless Chromium with playwright-core, for tests/tests/console.rs.
//
//   node drive.mjs SCENARIO --url http://127.0.0.1:PORT --photo FILE --screenshots DIR
//
// Scenarios:
//   upload   upload the photo through the file picker, watch its execution turn SUCCEEDED and
//            its graph colour in, open its events and its image page;
//   redrive  (the twin fails Resize past its retries) upload, open the FAILED execution from the
//            list, press Redrive, watch it succeed.
// Prints one JSON line with what it saw; exits non-zero with the reason when a step fails.
// Needs playwright-core under $IMGFLOW_TOOLS/playwright (scripts/test installs it) and Debian's
// chromium ($IMGFLOW_CHROMIUM, default /usr/bin/chromium); never downloads a browser.
import { createRequire } from 'node:module';
import { mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const STEP_TIMEOUT_MS = 30_000;
const PIPELINE_TIMEOUT_MS = 180_000;

const { positionals, values: options } = parseArgs({
  allowPositionals: true,
  options: { url: { type: 'string' }, photo: { type: 'string' }, screenshots: { type: 'string' } },
});
const scenario = positionals[0];
if (!['upload', 'redrive'].includes(scenario) || !options.url || !options.photo || !options.screenshots) {
  console.error('usage: node drive.mjs upload|redrive --url URL --photo FILE --screenshots DIR');
  process.exit(2);
}

const tools = process.env.IMGFLOW_TOOLS || join(homedir(), '.cache', 'imgflow-tools');
let chromium;
try {
  ({ chromium } = createRequire(join(tools, 'playwright', 'package.json'))('playwright-core'));
} catch (error) {
  console.error(`playwright-core is not installed under ${tools}/playwright (${error.code ?? error.message}): run scripts/test, or npm install --prefix ${tools}/playwright playwright-core`);
  process.exit(3);
}

mkdirSync(options.screenshots, { recursive: true });
const shots = [];
const pageErrors = [];

async function screenshot(page, name) {
  const path = join(options.screenshots, `${scenario}-${name}.png`);
  await page.screenshot({ path, fullPage: true });
  shots.push(path);
}

/** Each state's colour as the graph shows it: {name: status}. */
async function graphStatuses(page) {
  return page.$$eval('svg.graph .state', (nodes) => Object.fromEntries(nodes.map((n) => [n.dataset.state, n.dataset.status])));
}

/** Uploads the photo through the file picker; returns {imageId, executionArn}. */
async function uploadPhoto(page) {
  await page.goto(`${options.url}/console/#/executions`);
  await page.locator('#file-input').setInputFiles(options.photo);
  const row = page.locator('.upload[data-image-id]').first();
  await row.waitFor({ timeout: STEP_TIMEOUT_MS });
  await screenshot(page, '1-uploaded');
  const imageId = await row.getAttribute('data-image-id');
  const executionHref = await row.locator('a', { hasText: 'execution' }).getAttribute('href');
  return { imageId, executionArn: decodeURIComponent(executionHref.replace('#/execution/', '')), row };
}

async function uploadScenario(page) {
  const { imageId, executionArn, row } = await uploadPhoto(page);
  await page.locator('.upload[data-image-status]').first().waitFor({ timeout: PIPELINE_TIMEOUT_MS });
  const imageStatus = await row.getAttribute('data-image-status');
  // The list refreshes itself: the new execution shows up there as SUCCEEDED.
  await page.locator(`tr[data-execution-arn="${executionArn}"][data-status="SUCCEEDED"]`).waitFor({ timeout: STEP_TIMEOUT_MS });
  await screenshot(page, '2-executions');

  await row.locator('a', { hasText: 'execution' }).click();
  await page.locator('svg.graph .state[data-state="WriteMetadata"][data-status="succeeded"]').waitFor({ timeout: STEP_TIMEOUT_MS });
  const states = await graphStatuses(page);
  const executionStatus = await page.locator('.summary .badge').first().textContent();
  // Open the events of Resize from the graph, then one event's details.
  await page.locator('svg.graph .state[data-state="Resize"]').click();
  await page.locator('p.filter', { hasText: 'Events of Resize' }).waitFor({ timeout: STEP_TIMEOUT_MS });
  const exited = page.locator('tr.event', { hasText: 'TaskStateExited' }).first();
  await exited.click();
  const output = await page.locator('.event-details pre.json').first().textContent();
  await screenshot(page, '3-execution');

  await page.locator('.summary a[href^="#/image/"]').click();
  await page.locator('.image-page[data-status="SUCCEEDED"] figure img').first().waitFor({ timeout: STEP_TIMEOUT_MS });
  // Every picture (renditions and original) loads from its url.
  await page.waitForFunction(() => [...document.querySelectorAll('figure img')].every((img) => img.complete && img.naturalWidth > 0), null, { timeout: STEP_TIMEOUT_MS });
  const pictures = await page.$$eval('figure', (figures) => figures.map((f) => ({
    name: f.querySelector('figcaption strong').textContent, width: f.querySelector('img').naturalWidth,
  })));
  const exif = await page.$$eval('.side table.kv', (tables) => tables[1]?.innerText ?? '');
  await screenshot(page, '4-image');

  await page.locator('nav a[data-nav="images"]').click();
  const card = page.locator(`.card[data-image-id="${imageId}"] img`);
  await card.waitFor({ timeout: STEP_TIMEOUT_MS });
  await page.waitForFunction((id) => {
    const img = document.querySelector(`.card[data-image-id="${id}"] img`);
    return img?.complete && img.naturalWidth > 0;
  }, imageId, { timeout: STEP_TIMEOUT_MS });
  await screenshot(page, '5-images');
  return { imageId, executionArn, imageStatus, executionStatus, states, resizeOutput: output, pictures, exif };
}

async function redriveScenario(page) {
  const { imageId, executionArn } = await uploadPhoto(page);
  // Find it as a person would: the FAILED filter of the list.
  await page.locator('#status-filter').selectOption('FAILED');
  const failedRow = page.locator(`tr[data-execution-arn="${executionArn}"][data-status="FAILED"]`);
  await failedRow.waitFor({ timeout: PIPELINE_TIMEOUT_MS });
  await screenshot(page, '2-failed-list');
  await failedRow.locator('a.execution-link').click();
  await page.locator('svg.graph .state[data-state="Resize"][data-status="failed"]').waitFor({ timeout: STEP_TIMEOUT_MS });
  const failedStates = await graphStatuses(page);
  const failure = await page.locator('.summary .failure').textContent();
  await screenshot(page, '3-failed');

  const redrive = page.locator('#redrive');
  if (await redrive.isDisabled()) throw new Error('Redrive is disabled on a FAILED execution');
  await redrive.click();
  await page.locator('.summary .badge-succeeded').waitFor({ timeout: PIPELINE_TIMEOUT_MS });
  await page.locator('svg.graph .state[data-state="WriteMetadata"][data-status="succeeded"]').waitFor({ timeout: STEP_TIMEOUT_MS });
  const redrivenStates = await graphStatuses(page);
  const redriveDisabled = await redrive.isDisabled();
  await screenshot(page, '4-redriven');
  return { imageId, executionArn, failedStates, failure, redrivenStates, redriveDisabledAfter: redriveDisabled };
}

const browser = await chromium.launch({
  executablePath: process.env.IMGFLOW_CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
});
let exitCode = 0;
try {
  const page = await browser.newPage({ viewport: { width: 1360, height: 900 } });
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  page.on('pageerror', (error) => pageErrors.push(error.message));
  page.on('console', (message) => { if (message.type() === 'error') pageErrors.push(message.text()); });
  const seen = scenario === 'upload' ? await uploadScenario(page) : await redriveScenario(page);
  console.log(JSON.stringify({ scenario, ...seen, pageErrors, screenshots: shots }));
} catch (error) {
  exitCode = 1;
  const pages = browser.contexts().flatMap((context) => context.pages());
  if (pages[0]) await screenshot(pages[0], 'failure').catch(() => {});
  console.error(`${scenario}: ${error.message}`);
  console.log(JSON.stringify({ scenario, error: error.message, pageErrors, screenshots: shots }));
} finally {
  await browser.close();
}
process.exit(exitCode);
