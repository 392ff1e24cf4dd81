/**
 * The web page in a real browser: Debian's chromium, headless, driven by playwright-core, against
 * a real server over the colour collection. Each test saves a screenshot (under runs/e2e, or
 * E2E_SCREENSHOTS=docs/screenshots to refresh the committed ones).
 *
 * Chromium is required: without it these tests fail, saying how to install it. Only
 * DUO_SKIP_E2E=1 skips them, printing why; CI (.ci/run) installs chromium and runs them.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { buildApp } from '../../src/serve/app.js';
import { defaultWebRoot } from '../../src/serve/web.js';
import { packageRoot } from '../../src/util/package-root.js';
import { tempDir } from '../helpers.js';
import { colourCollection, openEngines, type Collection } from '../serve/fixture.js';

// The few browser globals the page callbacks use: this file compiles without the DOM library.
interface El {
  dataset: Record<string, string | undefined>;
  offsetTop: number;
  complete?: boolean;
  naturalWidth?: number;
}
declare const document: { querySelector(s: string): El | null; querySelectorAll(s: string): Iterable<El> & { length: number }; documentElement: { scrollWidth: number }; activeElement: El | null };
declare const location: { href: string };
declare class DataTransfer {
  items: { add(file: unknown): void };
}
declare const File: new (parts: unknown[], name: string, options: { type: string }) => unknown;

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const SHOTS = process.env.E2E_SCREENSHOTS ?? join(packageRoot(), 'runs', 'e2e');

const skip = process.env.DUO_SKIP_E2E === '1' && !existsSync(CHROMIUM) ? `DUO_SKIP_E2E=1 and no chromium at ${CHROMIUM}` : false;
if (skip) console.log(`# skipping the browser tests: ${skip}`);

describe('web page in headless Chromium', { skip, timeout: 180_000 }, () => {
  let c: Collection;
  let engines: Awaited<ReturnType<typeof openEngines>>;
  let app: FastifyInstance;
  let context: BrowserContext;
  let url: string;
  const dir = tempDir('duo-e2e-');
  const profile = tempDir('duo-chromium-');
  const cacheDir = tempDir();

  before(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`no chromium at ${CHROMIUM}: install Debian's package (apt-get install -y chromium), set CHROMIUM_PATH, or set DUO_SKIP_E2E=1 to skip these tests`);
    }
    if (!existsSync(join(defaultWebRoot(), 'index.html'))) throw new Error(`the web page is not built at ${defaultWebRoot()}: run npm run build`);
    mkdirSync(SHOTS, { recursive: true });
    c = await colourCollection(dir);
    engines = await openEngines(c);
    app = await buildApp({ engine: engines.engine, captions: engines.captions, cacheDir });
    await app.listen({ host: '127.0.0.1', port: 0 });
    url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
    context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: FLAGS, viewport: { width: 1280, height: 900 } });
  });
  after(async () => {
    await context?.close();
    await app?.close();
    await engines?.close();
  });

  /** a fresh tab on the page, failing the test on any script error */
  async function open(path = '/'): Promise<Page> {
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => m.type() === 'error' && !/Failed to load resource/.test(m.text()) && errors.push(m.text()));
    (page as Page & { errors: string[] }).errors = errors;
    await page.goto(`${url}${path}`);
    await page.waitForSelector('body[data-ready="true"]');
    return page;
  }
  const noErrors = (page: Page) => assert.deepEqual((page as Page & { errors: string[] }).errors, []);
  const ids = (page: Page, column = '') => page.$$eval(`${column} .result`, (cards) => cards.map((c) => (c as unknown as El).dataset.id));
  const shot = (page: Page, name: string) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });

  it('type a query and see results: thumbnails, scores, latency, state in the URL', async () => {
    const page = await open();
    await page.fill('#q', 'red');
    await page.press('#q', 'Enter');
    await page.waitForSelector('.result');
    const found = await ids(page);
    assert.deepEqual(found.slice(0, 2).sort(), ['warm/red.jpg', 'warm/red2.jpg']);
    assert.match(page.url(), /\?q=red$/);
    await page.waitForFunction(() => [...document.querySelectorAll('.result img')].every((img) => img.complete && img.naturalWidth! > 0));
    assert.match(await page.textContent('.latency') ?? '', /encode .* ms.*stage 1 .* ms/);
    assert.match(await page.textContent('.result .score') ?? '', /^\d\.\d{3}$/);
    // the link restores the search
    const again = await open('/?q=red');
    await again.waitForSelector('.result');
    assert.deepEqual(await ids(again), found);
    assert.equal(await again.inputValue('#q'), 'red');
    await shot(page, 'e2e-text-query');
    noErrors(page);
    await again.close();
    await page.close();
  });

  it('weighted terms typed in the box, and query expansion as a switch kept in the link', async () => {
    const page = await open();
    const requests: unknown[] = [];
    page.on('request', (r) => r.url().endsWith('/v1/search') && requests.push(r.postDataJSON()));
    await page.fill('#q', '"yellow" - "red"');
    await page.press('#q', 'Enter');
    await page.waitForSelector('.result');
    const away = await ids(page);
    assert.equal(away[0], 'cold/green.jpg', 'away from red: as the API gives for the same terms');
    assert.deepEqual(away.slice(-2).sort(), ['warm/red.jpg', 'warm/red2.jpg']);
    await page.check('#expand');
    await page.waitForURL(/expand=1/);
    await page.waitForSelector('main:not([aria-busy])');
    assert.deepEqual(
      requests.map((b) => { const { expression, expand } = b as { expression: string; expand?: boolean }; return { expression, expand: expand ?? false }; }),
      [{ expression: '"yellow" - "red"', expand: false }, { expression: '"yellow" - "red"', expand: true }],
    );
    const restored = await open(`/?q=${encodeURIComponent('red')}&expand=1`);
    await restored.waitForSelector('.result');
    assert.equal(await restored.isChecked('#expand'), true, 'the link restores the switch');
    noErrors(page);
    noErrors(restored);
    await restored.close();
    await page.close();
  });

  it('drop an image and see similar ones', async () => {
    const page = await open();
    const bytes = readFileSync(join(c.root, 'cold', 'blue.jpg')).toString('base64');
    const dataTransfer = await page.evaluateHandle((b64) => {
      const data = Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
      const dt = new DataTransfer();
      dt.items.add(new File([data], 'holiday.jpg', { type: 'image/jpeg' }));
      return dt;
    }, bytes);
    await page.dispatchEvent('body', 'dragenter', { dataTransfer });
    assert.equal(await page.isVisible('#drop'), true, 'the drop zone shows while dragging');
    await page.dispatchEvent('body', 'drop', { dataTransfer });
    await page.waitForSelector('.result');
    assert.equal((await ids(page))[0], 'cold/blue.jpg');
    assert.equal(await page.isVisible('#drop'), false);
    assert.match(await page.textContent('#query') ?? '', /Images like holiday\.jpg/);
    await page.waitForSelector('.captions li');
    assert.equal(await page.textContent('.captions li'), 'a blue photo', 'the caption index describes it');
    await shot(page, 'e2e-drop-image');
    // the file picker does the same
    await page.setInputFiles('#file', join(c.root, 'warm', 'yellow.jpg'));
    await page.waitForFunction(() => document.querySelector('.result')?.dataset.id === 'warm/yellow.jpg');
    noErrors(page);
    await page.close();
  });

  it('the side-by-side switch: stage 1 and hybrid columns, rank movement and per-stage latency', async () => {
    const page = await open('/?q=a+blue+photo');
    await page.waitForSelector('.result');
    assert.equal(await page.$$eval('.column', (cols) => cols.length), 1);
    await page.check('input[name=view][value=compare]');
    await page.waitForSelector('.column[data-mode=hybrid] .result');
    assert.match(page.url(), /mode=compare/);
    const stage1 = await ids(page, '.column[data-mode=stage1]');
    const hybrid = await ids(page, '.column[data-mode=hybrid]');
    assert.equal(hybrid[0], 'cold/blue.jpg');
    assert.deepEqual([...stage1].sort(), [...hybrid].sort(), 'the same candidates, reordered');
    assert.match(await page.textContent('.column[data-mode=hybrid] .latency') ?? '', /stage 2 .* ms/);
    assert.equal(await page.$$eval('.column[data-mode=hybrid] .move', (m) => m.length), hybrid.length, 'each hybrid result shows its movement');
    // keyboard: C switches back, ↓ enters the grid, Enter opens the explain panel
    await page.focus('#q');
    await page.keyboard.press('ArrowDown');
    assert.equal(await page.evaluate(() => document.activeElement!.dataset.rank), '1');
    await page.keyboard.press('ArrowRight');
    assert.equal(await page.evaluate(() => document.activeElement!.dataset.rank), '2');
    await page.focus('.column[data-mode=hybrid] .result');
    await page.keyboard.press('Enter');
    const panel = await page.waitForSelector('.result.open .explain');
    assert.match(await panel.textContent() ?? '', /stage 1.*rank.*stage 2.*rank/);
    await shot(page, 'e2e-side-by-side');
    await page.keyboard.press('Escape');
    await page.keyboard.press('c');
    await page.waitForFunction(() => document.querySelectorAll('.column').length === 1);
    assert.doesNotMatch(page.url(), /mode=compare/);
    noErrors(page);
    await page.close();
  });

  it('more like this, filter chips and paging', async () => {
    const page = await open('/?q=red&k=2');
    await page.waitForSelector('.result');
    const first = (await ids(page))[0]!;
    await page.click('.result .more-like');
    await page.waitForFunction((id) => new URL(location.href).searchParams.get('like') === id, first);
    await page.waitForSelector('.result');
    const similar = await ids(page);
    assert.ok(!similar.includes(first), 'the item itself is left out');
    assert.equal(similar[0], first === 'warm/red.jpg' ? 'warm/red2.jpg' : 'warm/red.jpg');
    assert.match(await page.textContent('#query') ?? '', /More like/);
    await page.click('button[data-chip="folder:cold"]');
    await page.waitForFunction(() => new URL(location.href).searchParams.get('f') === 'folder:cold');
    await page.waitForFunction(() => [...document.querySelectorAll('.result')].every((r) => r.dataset.id!.startsWith('cold/')));
    await page.click('#next');
    await page.waitForFunction(() => new URL(location.href).searchParams.get('page') === '1');
    await page.waitForFunction(() => document.querySelector('.result')?.dataset.rank === '3');
    await shot(page, 'e2e-more-like-this');
    await page.goBack();
    await page.waitForFunction(() => document.querySelector('.result')?.dataset.rank === '1');
    noErrors(page);
    await page.close();
  });

  it('usable at phone width: no sideways scrolling, two results a row', async () => {
    const page = await context.newPage();
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${url}/?q=green&mode=compare`);
    await page.waitForSelector('.column[data-mode=hybrid] .result');
    assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= 390), 'nothing wider than the screen');
    const tops = await page.$$eval('.column[data-mode=stage1] .result', (cards) => cards.slice(0, 3).map((c) => (c as unknown as El).offsetTop));
    assert.equal(tops[0], tops[1]);
    assert.ok(tops[2]! > tops[0]!);
    await shot(page, 'e2e-phone');
    await page.close();
  });
});
