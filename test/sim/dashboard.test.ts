// The live dashboard: the server's bounds over plain HTTP, then the page in a
// real browser (Debian's chromium driven by playwright-core) fed by the
// seeded demo fleet, so every number on screen can be checked exactly, and
// last `dormouse sim --dashboard` run as a user runs it: the page opened
// after the run has ended shows the whole run, with the CLI's numbers.
// DASHBOARD_SCREENSHOT=/tmp/dashboard.png saves a screenshot of the page.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { startDashboard, type DashboardHandle, type FrameMessage } from '../../sim/dashboard/server.js';
import { DemoFleet } from '../../sim/dashboard/demo-feed.js';
import type { Frame } from '../../sim/dashboard/types.js';
import { loadScenario } from '../../sim/scenario.js';
import { runVirtual } from '../../sim/virtual.js';

const CHROMIUM = '/usr/bin/chromium';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const num = (v: number) => new Intl.NumberFormat('en-US').format(v);

/** The same pattern as describeMosquitto: skip with a warning locally, fail in CI. */
function describeChromium(name: string, fn: () => void): void {
  if (existsSync(CHROMIUM)) {
    describe(name, fn);
  } else if (process.env.CI === 'true') {
    describe(name, () => {
      it('needs chromium', () => {
        throw new Error(`chromium is not installed (looked at ${CHROMIUM}); CI must provide it`);
      });
    });
  } else {
    console.warn(`[dormouse tests] SKIPPED "${name}": chromium is not installed (apt-get install chromium)`);
    describe.skip(name, fn);
  }
}

// ---------------------------------------------------------------- plain HTTP

interface Response { status: number; headers: http.IncomingHttpHeaders; body: string }

function request(url: string, opts: { method?: string; host?: string } = {}): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: opts.method ?? 'GET', headers: opts.host ? { host: opts.host } : {} }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** An event-stream reader that collects the parsed "frame" events. */
class EventReader {
  readonly messages: FrameMessage[] = [];
  status = 0;
  #req: http.ClientRequest;
  #buffer = '';
  readonly ready: Promise<void>;

  constructor(url: string) {
    let onReady!: () => void;
    this.ready = new Promise((r) => { onReady = r; });
    const target = new URL(url);
    this.#req = http.get(target.pathname.startsWith('/events') ? target : new URL('/events', url), (res) => {
      this.status = res.statusCode!;
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        this.#buffer += chunk;
        let end: number;
        while ((end = this.#buffer.indexOf('\n\n')) >= 0) {
          const block = this.#buffer.slice(0, end);
          this.#buffer = this.#buffer.slice(end + 2);
          const data = block.split('\n').find((l) => l.startsWith('data: '));
          if (block.startsWith('event: frame') && data) this.messages.push(JSON.parse(data.slice(6)) as FrameMessage);
        }
      });
      res.on('error', () => {});
      onReady();
    });
    this.#req.on('error', () => {});
  }

  close(): void {
    this.#req.destroy();
  }
}

function frameAt(simTimeMs: number, wallTimeMs: number, over: Partial<Frame> = {}): Frame {
  return {
    scenario: 'unit',
    simTimeMs,
    wallTimeMs,
    devices: [{ id: 'a', state: 'awake', inflight: 0, queued: 0, sent: 0, acked: 0, lost: 0 }],
    totals: { devices: 1, awake: 1, asleep: 0, offline: 0, reconnecting: 0 },
    broker: { queued: simTimeMs, delivered: 0, connects: 0, connectsPerSecond: 0, memoryEstimateBytes: 0 },
    counters: { accepted: 0, acked: 0, lost: 0, duplicates: 0, dropped: 0 },
    ...over,
  };
}

describe('dashboard server', () => {
  const open: DashboardHandle[] = [];
  const readers: EventReader[] = [];
  const start = async (opts: Parameters<typeof startDashboard>[0] = {}) => {
    const d = await startDashboard(opts);
    open.push(d);
    return d;
  };
  const reader = (url: string) => {
    const r = new EventReader(url);
    readers.push(r);
    return r;
  };
  afterAll(async () => {
    for (const r of readers) r.close();
    for (const d of open) await d.close();
  });

  it('listens on 127.0.0.1 only and serves one self-contained page', async () => {
    const d = await start();
    expect(d.url).toBe(`http://127.0.0.1:${d.port}/`);
    const page = await request(d.url);
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.headers['content-security-policy']).toMatch(/default-src 'none'/);
    expect(page.body).not.toMatch(/PAGE_(CSS|JS)/);
    expect(page.body).not.toMatch(/(src|href)="(https?:)?\/\//); // nothing from another host
  });

  it('refuses foreign Host headers, other methods, and answers device requests by kind', async () => {
    const d = await start();
    expect((await request(d.url, { host: 'attacker.example' })).status).toBe(403);
    expect((await request(d.url, { method: 'POST' })).status).toBe(405);
    expect((await request(new URL('/nope', d.url).href)).status).toBe(404);
    expect((await request(new URL('/device/a', d.url).href)).status).toBe(503); // no provider yet
    d.feed.setDetailProvider((id) => (id === 'a b' ? { id, state: 'asleep', inflight: [], outbox: [], handshakes: [] } : null));
    const found = await request(new URL('/device/a%20b', d.url).href);
    expect(found.status).toBe(200);
    expect(JSON.parse(found.body)).toMatchObject({ id: 'a b', state: 'asleep' });
    expect((await request(new URL('/device/zz', d.url).href)).status).toBe(404);
    expect((await request(new URL('/device/%E0%A4%A', d.url).href)).status).toBe(400);
    expect((await request(new URL(`/device/${'x'.repeat(300)}`, d.url).href)).status).toBe(400);
    d.feed.setDetailProvider(() => { throw new Error('boom'); });
    const failed = await request(new URL('/device/a', d.url).href);
    expect(failed.status).toBe(500);
    expect(failed.body).toContain('boom');
  });

  it('sends each browser at most one frame per interval, always the latest', async () => {
    const d = await start({ pushIntervalMs: 100 });
    const r = reader(d.url);
    await r.ready;
    let sim = 0;
    const began = Date.now();
    while (Date.now() - began < 600) { // a frame every 5 ms: ~120 frames
      sim += 10;
      d.feed.frame(frameAt(sim, sim));
      await sleep(5);
    }
    const elapsed = Date.now() - began;
    await sleep(250);
    expect(r.messages.length).toBeGreaterThanOrEqual(2);
    expect(r.messages.length).toBeLessThanOrEqual(Math.ceil(elapsed / 100) + 2);
    expect(r.messages.at(-1)!.frame.simTimeMs).toBe(sim);
    // Chart points: one per interval of wall time, the last one carrying the latest frame.
    const points = r.messages.flatMap((m) => m.points);
    expect(points.at(-1)!.simTimeMs).toBe(sim);
  });

  it('keeps the whole run, thinned to at most historyPoints chart points, and sends it all to a new browser', async () => {
    const d = await start({ historyPoints: 50, pushIntervalMs: 250 });
    for (let i = 1; i <= 200; i++) d.feed.frame(frameAt(i * 250, i * 250));
    d.feed.frame(frameAt(200 * 250 + 10, 200 * 250 + 10));
    const r = reader(d.url);
    await r.ready;
    await sleep(50);
    const first = r.messages[0]!;
    expect(first.reset).toBe(true);
    expect(first.points.length).toBeGreaterThan(25);
    expect(first.points.length).toBeLessThanOrEqual(50);
    // From the run's first frame to its latest: nothing at the start is dropped, only the resolution halves.
    expect(first.points[0]!.simTimeMs).toBe(250);
    expect(first.points.at(-1)!.simTimeMs).toBe(200 * 250 + 10);
    const gaps = first.points.slice(1).map((p, i) => p.simTimeMs - first.points[i]!.simTimeMs);
    expect(Math.max(...gaps)).toBeLessThanOrEqual(8 * 250);
    // A new scenario starts a new history.
    d.feed.frame(frameAt(0, 60_000, { scenario: 'other' }));
    await sleep(400);
    const last = r.messages.at(-1)!;
    expect(last.reset).toBe(true);
    expect(last.points).toHaveLength(1);
  });

  it('keeps the connection rate per whole second of sim time, its peak exact however long the run', async () => {
    const d = await start({ historyPoints: 10 }); // at most 20 buckets
    // 95 s of sim time, each frame carrying the seconds it completed; one busy second, 77 s in.
    let sent = 0;
    for (let t = 5; t <= 95; t += 5) {
      const counts = Array.from({ length: t - sent }, (_, k) => (sent + k === 77 ? 121 : (sent + k) % 7));
      d.feed.frame(frameAt(t * 1000, t * 1000, { broker: { queued: 0, delivered: 0, connects: 0, connectsPerSecond: 0, memoryEstimateBytes: 0, connectSeconds: { fromS: sent, counts } } }));
      sent = t;
    }
    const r = reader(d.url);
    await r.ready;
    await sleep(50);
    const c = r.messages[0]!.connects;
    expect(c.widthS).toBe(8); // 95 one-second buckets merged three times to stay within 20
    expect(c.peaks.length).toBeLessThanOrEqual(20);
    expect(Math.max(...c.peaks)).toBe(121);
    expect(c.peaks.indexOf(121)).toBe(Math.floor(77 / 8));
  });

  it('keeps each run of a multi-variant run; a page follows the latest or picks one with ?run=', async () => {
    const d = await start({ maxRuns: 2 });
    for (const [name, frames] of [['a', 3], ['b', 2], ['c', 4]] as const) for (let i = 1; i <= frames; i++) d.feed.frame(frameAt(i * 1000, i * 1000, { scenario: name }));
    const latest = reader(d.url);
    const picked = reader(new URL('/events?run=b', d.url).href);
    await Promise.all([latest.ready, picked.ready]);
    await sleep(50);
    expect(latest.messages[0]).toMatchObject({ run: 'c', runs: ['b', 'c'], reset: true });
    expect(latest.messages[0]!.points.map((p) => p.simTimeMs)).toEqual([1000, 2000, 3000, 4000]);
    expect(picked.messages[0]).toMatchObject({ run: 'b', runs: ['b', 'c'], frame: { scenario: 'b' } });
    expect(picked.messages[0]!.points.map((p) => p.simTimeMs)).toEqual([1000, 2000]);
    // A run that is not kept: the latest is shown instead.
    const gone = reader(new URL('/events?run=a', d.url).href);
    await gone.ready;
    await sleep(50);
    expect(gone.messages[0]!.run).toBe('c');
  });

  it('caps the devices sent per frame at 2,000', async () => {
    const d = await start();
    const devices = Array.from({ length: 2500 }, (_, i) => ({ id: `d${i}`, state: 'asleep' as const, inflight: 0, queued: 0, sent: 0, acked: 0, lost: 0 }));
    d.feed.frame(frameAt(1, 1, { devices }));
    const r = reader(d.url);
    await r.ready;
    await sleep(50);
    expect(r.messages[0]!.frame.devices).toHaveLength(2000);
  });

  it('refuses event streams beyond maxBrowsers with 503', async () => {
    const d = await start({ maxBrowsers: 2 });
    const a = reader(d.url);
    const b = reader(d.url);
    await Promise.all([a.ready, b.ready]);
    const c = reader(d.url);
    await c.ready;
    expect([a.status, b.status, c.status]).toEqual([200, 200, 503]);
    a.close();
    // The server frees the slot when it sees the socket close: on a busy machine that may take a moment.
    let again = reader(d.url);
    await again.ready;
    for (let i = 0; i < 50 && again.status === 503; i++) {
      await sleep(100);
      again = reader(d.url);
      await again.ready;
    }
    expect(again.status).toBe(200);
  });
});

// ---------------------------------------------------------------- in a browser

describeChromium('dashboard in chromium', () => {
  let dashboard: DashboardHandle;
  let fleet: DemoFleet;
  let latest: Frame;
  let context: BrowserContext;
  let page: Page;
  let profile: string;
  const problems: string[] = [];

  const push = (steps: number) => {
    for (let i = 0; i < steps; i++) latest = fleet.step();
    dashboard.feed.frame(latest);
  };

  beforeAll(async () => {
    dashboard = await startDashboard({ port: 0, pushIntervalMs: 250 });
    fleet = new DemoFleet({ devices: 600, seed: 7 });
    dashboard.feed.setDetailProvider((id) => fleet.detail(id));
    // 20 s of sim time, one frame per step: a broker outage at 12 s and the reconnect storm after it.
    for (let i = 0; i < 80; i++) push(1);
    profile = mkdtempSync(join(tmpdir(), 'dormouse-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      viewport: { width: 1440, height: 1000 },
    });
    page = context.pages()[0] ?? await context.newPage();
    // A failed request is logged as a console error too; responses are checked on their own below.
    page.on('console', (m) => { if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) problems.push(`console: ${m.text()}`); });
    page.on('response', (r) => { if (r.status() >= 400 && !r.url().endsWith('/device/no-such-device')) problems.push(`${r.status()} for ${r.url()}`); });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('request', (r) => { if (!r.url().startsWith(dashboard.url)) problems.push(`request to another origin: ${r.url()}`); });
    await page.goto(dashboard.url);
  });

  afterAll(async () => {
    await context?.close();
    await dashboard?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  it('loads, connects and shows one cell per device with the totals', async () => {
    await expect(page.title()).resolves.toBe('Dormouse simulator');
    await expect(page.locator('h1').textContent()).resolves.toBe('Dormouse simulator');
    await page.locator('#stream-status', { hasText: 'live' }).waitFor();
    await expect.poll(() => page.locator('#grid .cell').count(), { timeout: 10_000 }).toBe(latest.devices.length);
    expect(latest.devices).toHaveLength(600);
    expect(await page.locator('#grid .cell.s-awake').count()).toBe(latest.devices.filter((d) => d.state === 'awake').length);
    expect(await page.locator('#total-devices').textContent()).toBe(num(latest.totals.devices));
    expect(await page.locator('#total-awake').textContent()).toBe(num(latest.totals.awake));
    expect(await page.locator('#total-asleep').textContent()).toBe(num(latest.totals.asleep));
    expect(await page.locator('#total-reconnecting').textContent()).toBe(num(latest.totals.reconnecting));
    expect(await page.locator('#scenario').textContent()).toBe(latest.scenario);
  });

  it('updates as new frames arrive', async () => {
    const before = await page.locator('#c-accepted').textContent();
    expect(before).toBe(num(latest.counters.accepted));
    for (let i = 0; i < 6; i++) { push(2); await sleep(60); }
    expect(latest.counters.accepted).not.toBe(Number(before!.replace(/,/g, '')));
    await page.locator('#c-accepted', { hasText: new RegExp(`^${num(latest.counters.accepted)}$`) }).waitFor();
    await page.locator('#sim-time', { hasText: `${(latest.simTimeMs / 1000).toFixed(1)} s` }).waitFor();
    expect(await page.locator('#b-delivered').textContent()).toBe(num(latest.broker.delivered));
    expect(Number(await page.locator('#frames-seen').textContent())).toBeGreaterThanOrEqual(2);
  });

  it('draws the queue, delivery and connection-rate charts, with the numbers as text', async () => {
    const pointsIn = (sel: string) => page.locator(sel).evaluate((p) => (p.getAttribute('d')!.match(/[ML]/g) ?? []).length);
    // 80 + 12 steps, each 250 ms of wall time apart: one chart point each (the page coalesces nothing).
    await expect.poll(() => pointsIn('#chart-queue path.series'), { timeout: 10_000 }).toBeGreaterThanOrEqual(40);
    for (const s of ['delivered', 'acked', 'lost']) expect(await pointsIn(`#chart-delivery path[data-series="${s}"]`)).toBeGreaterThanOrEqual(40);
    expect(await pointsIn('#chart-connects path.series')).toBeGreaterThanOrEqual(30); // two points per second of sim time (a step)
    // The storm is visible: the connection-rate line is not flat.
    const ys = await page.locator('#chart-connects path.series').evaluate((p) =>
      [...p.getAttribute('d')!.matchAll(/[ML][\d.]+,([\d.]+)/g)].map((m) => Number(m[1])));
    expect(new Set(ys).size).toBeGreaterThan(3);
    expect(await page.locator('#queue-now').textContent()).toContain(num(latest.broker.queued));
    expect(await page.locator('#delivery-now').textContent()).toContain(num(latest.broker.delivered));
    expect(await page.locator('#connects-now').textContent()).toMatch(/Connects per second now: [\d.,]+/);
    for (const id of ['chart-queue', 'chart-delivery', 'chart-connects']) {
      expect(await page.locator(`#${id}`).getAttribute('role')).toBe('img');
      expect(await page.locator(`#${id}`).getAttribute('aria-describedby')).toMatch(/-now$/);
    }
  });

  it('selecting a device shows its inflight table, outbox and handshakes as a sequence diagram', async () => {
    const index = latest.devices.findIndex((d) => d.inflight >= 2 && fleet.detail(d.id)!.handshakes.length >= 4);
    expect(index).toBeGreaterThanOrEqual(0);
    const id = latest.devices[index]!.id;
    const detail = fleet.detail(id)!;
    await page.locator('#grid .cell').nth(index).click();
    await page.locator('#device-h', { hasText: `Device ${id}` }).waitFor();
    await expect.poll(() => page.locator('#inflight tbody tr').count(), { timeout: 10_000 }).toBe(detail.inflight.length);
    const rows = await page.locator('#inflight tbody tr').allTextContents();
    expect(rows[0]).toContain(String(detail.inflight[0]!.packetId));
    expect(rows[0]).toContain(detail.inflight[0]!.state);
    expect(await page.locator('#outbox tbody tr').count()).toBe(detail.outbox.length);
    const shown = detail.handshakes.slice(-14);
    expect(await page.locator('#seq .arrow').count()).toBe(shown.length);
    expect(await page.locator('#seq .actor text').allTextContents()).toEqual(['Device', 'Broker']);
    expect(await page.locator('#seq .label').allTextContents()).toEqual(shown.map((h) => h.packet));
    // Direction: device-to-broker arrows point right, broker-to-device arrows point left.
    const directions = await page.locator('#seq .arrow').evaluateAll((lines) =>
      lines.map((l) => (Number(l.getAttribute('x2')) > Number(l.getAttribute('x1')) ? 'c2s' : 's2c')));
    expect(directions).toEqual(shown.map((h) => h.dir));
    expect(await page.locator('#seq-text li').count()).toBe(shown.length);
    expect(await page.locator('#grid .cell.selected').count()).toBe(1);
  });

  it('moves the selection with the arrow keys and picks a device by id', async () => {
    const selected = await page.locator('#grid .cell.selected').getAttribute('data-index');
    await page.locator('#grid').focus();
    await page.keyboard.press('ArrowRight');
    const next = latest.devices[Number(selected) + 1]!.id;
    await page.locator('#device-h', { hasText: `Device ${next}` }).waitFor();
    await page.locator('#pick-id').fill('dev-0003');
    await page.locator('#pick button').click();
    await page.locator('#device-h', { hasText: 'Device dev-0003' }).waitFor();
    await page.locator('#pick-id').fill('no-such-device');
    await page.locator('#pick button').click();
    await page.locator('#device-state', { hasText: 'no device' }).waitFor();
  });

  it('offers the runs it keeps once there are two, and shows an earlier one whole', async () => {
    expect(await page.locator('#run-field').isHidden()).toBe(true);
    const first = latest.scenario;
    const firstPoints = await page.locator('#chart-queue path.series').evaluate((p) => (p.getAttribute('d')!.match(/[ML]/g) ?? []).length);
    dashboard.feed.frame({ ...latest, scenario: 'second run', simTimeMs: 1000 });
    await page.locator('#run-field').waitFor({ state: 'visible' });
    await page.locator('#scenario', { hasText: 'second run' }).waitFor();
    expect(await page.locator('#run-pick option').allTextContents()).toEqual(['the latest, live', first, 'second run']);
    await page.locator('#run-pick').selectOption(first);
    await page.locator('#scenario', { hasText: first }).waitFor();
    await expect.poll(() => page.locator('#chart-queue path.series').evaluate((p) => (p.getAttribute('d')!.match(/[ML]/g) ?? []).length)).toBeGreaterThanOrEqual(firstPoints);
    await page.locator('#run-pick').selectOption('');
    await page.locator('#scenario', { hasText: 'second run' }).waitFor();
  });

  it('shows a busy device, then leaves no errors and no requests to other hosts', async () => {
    const busy = latest.devices.find((d) => d.inflight >= 2)!;
    await page.locator('#pick-id').fill(busy.id);
    await page.locator('#pick button').click();
    await page.locator('#device-h', { hasText: `Device ${busy.id}` }).waitFor();
    await page.locator('#seq .arrow').first().waitFor({ state: 'attached' }); // a horizontal line has no height, so never "visible"
    if (process.env.DASHBOARD_SCREENSHOT) await page.screenshot({ path: process.env.DASHBOARD_SCREENSHOT, fullPage: true });
    expect(problems).toEqual([]);
  });
});

// ---------------------------------------------------------------- a real run, watched after it ended

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

describe('the dashboard of a run', () => {
  it('gets the connection rate per whole second from the engine: its peak is the CLI\'s', async () => {
    const d = await startDashboard({ port: 0 });
    try {
      const r = await runVirtual(loadScenario(join(ROOT, 'sim/scenarios/storm.yaml')), { devices: 300, variants: ['no-backoff', 'full-jitter'], feed: d.feed });
      // The page opens after the run: it gets the last variant's whole history.
      const reader = new EventReader(d.url);
      await reader.ready;
      await expect.poll(() => reader.messages.length).toBeGreaterThan(0);
      reader.close();
      const m = reader.messages[0]!;
      const v = r.variants.at(-1)!;
      expect(m.frame.scenario).toBe('full-jitter');
      expect(Math.max(...m.connects.peaks)).toBe(v.broker.peakConnectsPerSecond);
      expect(v.broker.peakConnectsPerSecond).toBeGreaterThan(10);
      // The whole run, from its first sample to its end (420 s + 60 s of drain).
      expect(m.points[0]!.simTimeMs).toBe(0);
      expect(m.points.at(-1)!.simTimeMs).toBe(480_000);
      expect(m.points.length).toBeGreaterThanOrEqual(90); // a point at each 5 s sample at least
      expect(m.frame.marks).toEqual([{ kind: 'power-outage', label: 'power outage: 120 s, the broker back 5 s after the power', fromMs: 120_000, toMs: 245_000 }]);
      expect(m.runs).toEqual(['no-backoff', 'full-jitter']);
      // The earlier variant is kept whole too, with its own peak.
      const first = new EventReader(new URL('/events?run=no-backoff', d.url).href);
      await first.ready;
      await expect.poll(() => first.messages.length).toBeGreaterThan(0);
      first.close();
      const f = first.messages[0]!;
      expect(f.run).toBe('no-backoff');
      expect(Math.max(...f.connects.peaks)).toBe(r.variants[0]!.broker.peakConnectsPerSecond);
      expect(r.variants[0]!.broker.peakConnectsPerSecond).toBeGreaterThan(v.broker.peakConnectsPerSecond);
      expect(f.points.at(-1)!.simTimeMs).toBe(480_000);
    } finally {
      await d.close();
    }
  });
});

describeChromium('dormouse sim --dashboard, watched after the run', () => {
  it('stays up until Ctrl-C and shows the whole run: axes with units, the outage marked, the CLI\'s peak', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bin/dormouse.mjs'), 'sim', 'trucks', '--devices', '200', '--duration', '600', '--dashboard', '--json', '--progress', '0'], {
      cwd: ROOT,
      env: { ...process.env, DORMOUSE_FROM_SOURCE: '1' },
      stdio: ['ignore', 'pipe', 'pipe'], // stdin is not a terminal: it used to close the page at once
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (x: string) => (stdout += x));
    child.stderr!.setEncoding('utf8').on('data', (x: string) => (stderr += x));
    const exited = new Promise<number | null>((r) => child.once('close', (code) => r(code)));
    const profile = mkdtempSync(join(tmpdir(), 'dormouse-chromium-'));
    let context: BrowserContext | null = null;
    try {
      await expect.poll(() => /the whole run stays at (http:\S+); Ctrl-C to quit/.test(stderr), { timeout: 60_000, interval: 200 }).toBe(true);
      const url = /the whole run stays at (http:\S+);/.exec(stderr)![1]!;
      const result = JSON.parse(stdout) as { ok: boolean; variants: Array<{ broker: { peakConnectsPerSecond: number } }> };
      expect(result.ok).toBe(true);
      const cliPeak = result.variants[0]!.broker.peakConnectsPerSecond;
      await sleep(1500); // the run is over; the page must still be there
      context = await chromium.launchPersistentContext(profile, {
        executablePath: CHROMIUM,
        headless: true,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
        viewport: { width: 1440, height: 1000 },
      });
      const page = context.pages()[0] ?? (await context.newPage());
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(url);
      // The end of the run: 600 s + 300 s of drain.
      await page.locator('#sim-time', { hasText: '15 min 00 s' }).waitFor({ timeout: 15_000 });
      for (const id of ['chart-queue', 'chart-delivery', 'chart-connects']) {
        const chart = page.locator(`#${id}`);
        expect(await chart.locator('.x-title').textContent(), id).toBe('sim time (min)');
        const ticks = await chart.locator('.xtick').allTextContents();
        expect(ticks.length, id).toBeGreaterThan(2);
        expect(ticks[0], id).toBe('0'); // from the start of the run
        expect(Number(ticks.at(-1)), id).toBeGreaterThanOrEqual(14);
        // The tunnel outage (20 % of the trucks, staggered), scaled into this run: 60 s + 60 s stagger + 360 s.
        expect(await chart.locator('.mark-outage title').textContent(), id).toBe('outage: 20 % of devices cut off (partition) for 360 s each, going over 60 s: 1 min 00 s to 8 min 00 s');
      }
      expect(await page.locator('#chart-queue .y-title').textContent()).toBe('messages queued at the broker');
      expect(await page.locator('#chart-delivery .y-title').textContent()).toBe('messages (running total)');
      expect(await page.locator('#chart-connects .y-title').textContent()).toBe('CONNECTs per second');
      // The queue line starts at the left edge (sim time 0) and ends at the right one (the end of the run).
      const xsOf = (sel: string) => page.locator(sel).evaluate((p) => [...p.getAttribute('d')!.matchAll(/[ML]([\d.]+),/g)].map((m) => Number(m[1])));
      const qx = await xsOf('#chart-queue path.series');
      expect(qx[0]).toBe(46);
      expect(qx.at(-1)).toBe(468);
      // Lines that run close together stay apart: drawn widest first, then dashed, then dotted, each in the legend.
      expect(await page.locator('#chart-delivery path.series').evaluateAll((ps) => ps.map((p) => p.getAttribute('data-series')))).toEqual(['delivered', 'acked', 'lost']);
      const styles = await page.locator('#chart-delivery path.series').evaluateAll((ps) => ps.map((p) => { const c = p.ownerDocument.defaultView!.getComputedStyle(p); return `${c.stroke} ${c.strokeWidth} ${c.strokeDasharray}`; }));
      expect(new Set(styles).size).toBe(3);
      expect(await page.locator('#chart-delivery .legend-label').allTextContents()).toEqual(['lost', 'acked', 'delivered']);
      // The connection-rate peak: the same quantity from the same per-second counts as the CLI's table.
      expect(Number(await page.locator('#connects-now').getAttribute('data-peak'))).toBe(cliPeak);
      expect(await page.locator('#connects-now').textContent()).toContain(`peak ${num(cliPeak)}/s at `);
      if (process.env.DASHBOARD_SCREENSHOT) await page.screenshot({ path: process.env.DASHBOARD_SCREENSHOT.replace(/\.png$/, '-run.png'), fullPage: true });
      expect(errors).toEqual([]);
      child.kill('SIGINT');
      expect(await exited).toBe(0);
    } finally {
      child.kill('SIGKILL');
      await context?.close();
      rmSync(profile, { recursive: true, force: true });
    }
  });
});
