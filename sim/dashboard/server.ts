// The live dashboard: one self-contained page, a Server-Sent Events stream of
// frames and a JSON view of the selected device, on 127.0.0.1 only.
// It knows nothing of the simulator: whatever drives it calls feed.frame()
// and lends a detail provider (sim/dashboard/types.ts).
//
// The server keeps the run's chart history from its first frame, so a page
// opened late, or after the run ended, shows the whole run: a point every
// `stride` frames plus the latest, the stride doubling whenever there would
// be more than historyPoints (the whole run stays evenly covered), and the
// connection rate as the most CONNECTs in one whole second of sim time per
// bucket, buckets doubling in width past 2 × historyPoints (so its peak stays
// the run's peak, the number the CLI prints).
//
// A run of several variants is several runs (a frame names its scenario or
// variant): the server keeps the last maxRuns of them, and a page can pick an
// earlier one (/events?run=NAME) to see it whole; by default it follows the
// latest.
//
// Bounds: at most maxBrowsers event streams; at most maxRuns runs kept; at
// most one frame per pushIntervalMs to each browser (intermediate frames are
// dropped, the latest is kept); at most historyPoints chart points and
// 2 × historyPoints connection-rate buckets per run; a browser whose socket is backed up is skipped
// until it drains; device ids are capped in length.

import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { DashboardFeed, DeviceDetail, Frame } from './types.js';

const HOST = '127.0.0.1';
/** Devices drawn in the grid; the feed promises at most this many, the server enforces it. */
export const MAX_GRID_DEVICES = 2000;
const MAX_ID_LENGTH = 256;
/** Bytes queued on one browser's socket beyond which frames to it are skipped. */
const MAX_BACKLOG_BYTES = 1 << 20;

export interface DashboardOptions {
  /** TCP port on 127.0.0.1; 0 (the default) picks a free one. */
  port?: number;
  /** Event streams open at once; one more is refused with 503. Default 16. */
  maxBrowsers?: number;
  /** Chart points kept over the whole run (and sent to a browser that connects). Default 600. */
  historyPoints?: number;
  /** Least time between two frames to one browser. Default 250 ms. */
  pushIntervalMs?: number;
  /** Runs (scenarios or variants) whose history is kept; the oldest goes first. Default 16. */
  maxRuns?: number;
}

export interface DashboardHandle {
  /** http://127.0.0.1:PORT/ */
  url: string;
  port: number;
  feed: DashboardFeed;
  /** Ends every event stream and closes the server. */
  close(): Promise<void>;
}

/** One point of the charts: a frame's numbers. */
export interface ChartPoint {
  seq: number;
  /** The frame's number in the run (0 for its first). */
  n: number;
  simTimeMs: number;
  queued: number;
  delivered: number;
  acked: number;
  lost: number;
  /** CONNECTs in the last whole second before this frame. */
  connectsPerSecond: number;
}

/**
 * The connection rate over the run: bucket i covers the seconds of sim time
 * [i × widthS, (i + 1) × widthS) and holds the most CONNECTs the broker took
 * in one whole second among them. Its maximum is the run's peak CONNECT/s.
 */
export interface ConnectHistory {
  widthS: number;
  peaks: number[];
}

/** What one server-sent "frame" event carries. */
export interface FrameMessage {
  frame: Frame;
  /** Chart points the browser has not seen yet; the first may replace its last one (same seq). */
  points: ChartPoint[];
  /** True when the browser must drop its chart history first (a new scenario, time went back, or the history was thinned). */
  reset: boolean;
  /** The whole connection-rate history. */
  connects: ConnectHistory;
  /** The run shown (its frames' scenario), and every run kept, oldest first. */
  run: string;
  runs: string[];
}

/** One run's chart history: a point every `stride` frames plus the latest, and its connection rate. */
class RunHistory {
  points: ChartPoint[] = [];
  connects: ConnectHistory = { widthS: 1, peaks: [] };
  /** Bumped at every frame, and when the points are thinned. */
  frameSeq = 0;
  epoch = 0;
  #frameNo = 0;
  #stride = 1;
  #json = { seq: -1, text: '' };

  constructor(
    readonly name: string,
    public last: Frame,
    readonly maxPoints: number,
  ) {}

  add(f: Frame, nextSeq: () => number): void {
    this.last = f;
    this.frameSeq++;
    // The latest frame is always the last point; it replaces a last point that is not on the stride.
    const n = this.#frameNo++;
    const tail = this.points[this.points.length - 1];
    const replace = tail !== undefined && tail.n % this.#stride !== 0;
    const point: ChartPoint = {
      seq: replace ? tail.seq : nextSeq(),
      n,
      simTimeMs: f.simTimeMs,
      queued: f.broker.queued,
      delivered: f.broker.delivered,
      acked: f.counters.acked,
      lost: f.counters.lost,
      connectsPerSecond: f.broker.connectsPerSecond,
    };
    if (replace) this.points[this.points.length - 1] = point;
    else this.points.push(point);
    if (this.points.length > this.maxPoints) {
      // Half the resolution, the whole run still covered evenly; browsers get it anew.
      this.#stride *= 2;
      this.points = this.points.filter((p) => p.n % this.#stride === 0 || p === point);
      this.epoch++;
    }
    const cs = f.broker.connectSeconds;
    if (cs) for (let k = 0; k < cs.counts.length; k++) this.#connectsIn(cs.fromS + k, cs.counts[k]!);
    else this.#connectsIn(Math.floor(f.simTimeMs / 1000) - 1, f.broker.connectsPerSecond);
  }

  /** Record `count` CONNECTs in second `second` of sim time. */
  #connectsIn(second: number, count: number): void {
    if (second < 0) return;
    const maxBuckets = this.maxPoints * 2;
    let c = this.connects;
    let i = Math.floor(second / c.widthS);
    while (i >= maxBuckets) {
      const merged: number[] = [];
      for (let k = 0; k < c.peaks.length; k += 2) merged.push(Math.max(c.peaks[k]!, c.peaks[k + 1] ?? 0));
      c = { widthS: c.widthS * 2, peaks: merged };
      i = Math.floor(second / c.widthS);
    }
    while (c.peaks.length <= i) c.peaks.push(0);
    if (count > c.peaks[i]!) c.peaks[i] = count;
    this.connects = c;
  }

  /** The last frame as JSON, serialised once per frame that is sent. */
  frameJson(): string {
    if (this.#json.seq !== this.frameSeq) {
      const f = this.last;
      const capped = f.devices.length > MAX_GRID_DEVICES ? { ...f, devices: f.devices.slice(0, MAX_GRID_DEVICES) } : f;
      this.#json = { seq: this.frameSeq, text: JSON.stringify(capped) };
    }
    return this.#json.text;
  }
}

interface Browser {
  res: http.ServerResponse;
  /** The run asked for with ?run=, or null to follow the latest. */
  wants: string | null;
  shown: RunHistory | null;
  frameSeq: number;
  epoch: number;
  pointSeq: number;
  runsVersion: number;
}

export async function startDashboard(opts: DashboardOptions = {}): Promise<DashboardHandle> {
  const maxBrowsers = opts.maxBrowsers ?? 16;
  const historyPoints = opts.historyPoints ?? 600;
  const pushIntervalMs = opts.pushIntervalMs ?? 250;
  const page = loadPage();

  // The feed only stores a reference and updates the chart history: O(1) per
  // frame (amortised over the thinning), so a simulator may call it far more
  // often than browsers are served. Serialising happens at push time, once per
  // frame that is actually sent.
  const maxRuns = opts.maxRuns ?? 16;
  let runs: RunHistory[] = [];
  let current: RunHistory | null = null;
  let runsVersion = 0;
  let pointSeq = 0;
  const nextSeq = () => ++pointSeq;
  let provider: ((id: string) => DeviceDetail | null) | null = null;

  const feed: DashboardFeed = {
    frame(f: Frame): void {
      if (current === null || f.scenario !== current.name || f.simTimeMs < current.last.simTimeMs) {
        // A new run (or the same one started again): it gets its own history, replacing one of the same name.
        current = new RunHistory(f.scenario, f, historyPoints);
        runs = runs.filter((r) => r.name !== f.scenario);
        runs.push(current);
        if (runs.length > maxRuns) runs.splice(0, runs.length - maxRuns);
        runsVersion++;
      }
      current.add(f, nextSeq);
    },
    setDetailProvider(p: (id: string) => DeviceDetail | null): void {
      provider = p;
    },
  };

  const browsers = new Set<Browser>();
  let ticker: NodeJS.Timeout | null = null;

  function push(b: Browser): void {
    const r = (b.wants !== null ? runs.find((x) => x.name === b.wants) : undefined) ?? current;
    if (r === null) return;
    const reset = b.shown !== r || b.epoch !== r.epoch;
    if (!reset && b.frameSeq === r.frameSeq && b.runsVersion === runsVersion) return;
    if (b.res.writableLength > MAX_BACKLOG_BYTES) return; // slow browser: it gets a later frame
    const points = reset ? r.points : r.points.filter((p) => p.seq >= b.pointSeq);
    const data = `{"frame":${r.frameJson()},"points":${JSON.stringify(points)},"reset":${reset},"connects":${JSON.stringify(r.connects)},"run":${JSON.stringify(r.name)},"runs":${JSON.stringify(runs.map((x) => x.name))}}`;
    b.res.write(`event: frame\ndata: ${data}\n\n`);
    b.shown = r;
    b.frameSeq = r.frameSeq;
    b.epoch = r.epoch;
    b.runsVersion = runsVersion;
    b.pointSeq = r.points.length > 0 ? r.points[r.points.length - 1]!.seq : 0;
  }

  function tick(): void {
    for (const b of browsers) push(b);
  }

  function openEvents(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (browsers.size >= maxBrowsers) {
      send(res, 503, 'text/plain', `too many dashboards open (at most ${maxBrowsers}); close one and reload\n`);
      return;
    }
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-content-type-options': 'nosniff',
    });
    res.write('retry: 2000\n\n');
    // A fresh browser has been shown nothing, so its first frame carries the whole history.
    const wants = new URL(req.url ?? '/', 'http://x').searchParams.get('run');
    const b: Browser = { res, wants: wants === null || wants === '' ? null : wants.slice(0, MAX_ID_LENGTH), shown: null, frameSeq: 0, epoch: 0, pointSeq: 0, runsVersion: 0 };
    browsers.add(b);
    push(b);
    if (!ticker) {
      ticker = setInterval(tick, pushIntervalMs);
      ticker.unref();
    }
    req.socket.setNoDelay(true);
    res.once('close', () => {
      browsers.delete(b);
      if (browsers.size === 0 && ticker) { clearInterval(ticker); ticker = null; }
    });
  }

  function deviceDetail(rawId: string, res: http.ServerResponse): void {
    let id: string;
    try {
      id = decodeURIComponent(rawId);
    } catch {
      sendJson(res, 400, { error: 'device id is not valid percent-encoding' });
      return;
    }
    if (id.length === 0 || id.length > MAX_ID_LENGTH) {
      sendJson(res, 400, { error: `device id must be 1 to ${MAX_ID_LENGTH} characters` });
      return;
    }
    if (!provider) {
      sendJson(res, 503, { error: 'no detail provider yet (feed.setDetailProvider)' });
      return;
    }
    let detail: DeviceDetail | null;
    try {
      detail = provider(id);
    } catch (err) {
      sendJson(res, 500, { error: `detail provider failed: ${(err as Error).message}` });
      return;
    }
    if (!detail) sendJson(res, 404, { error: `no device ${JSON.stringify(id)}` });
    else sendJson(res, 200, detail);
  }

  let port = 0;
  const server = http.createServer((req, res) => {
    // Only pages served from this address may read it: a foreign Host header
    // is a DNS-rebinding attempt from some other site in the same browser.
    const host = req.headers.host ?? '';
    if (host !== `${HOST}:${port}` && host !== `localhost:${port}`) {
      send(res, 403, 'text/plain', 'wrong Host header\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      send(res, 405, 'text/plain', 'only GET\n');
      return;
    }
    const path = (req.url ?? '/').split('?')[0]!;
    if (path === '/' || path === '/index.html') {
      res.writeHead(200, {
        'content-type': 'text/html; charset=utf-8',
        'cache-control': 'no-store',
        'content-security-policy': page.csp,
        'x-content-type-options': 'nosniff',
        'referrer-policy': 'no-referrer',
      });
      res.end(req.method === 'HEAD' ? undefined : page.html);
    } else if (path === '/events') {
      openEvents(req, res);
    } else if (path.startsWith('/device/')) {
      deviceDetail(path.slice('/device/'.length), res);
    } else {
      send(res, 404, 'text/plain', 'not found\n');
    }
  });
  server.on('clientError', (_err, socket) => socket.destroy());

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, HOST, () => resolve());
  });
  port = (server.address() as AddressInfo).port;

  return {
    url: `http://${HOST}:${port}/`,
    port,
    feed,
    async close(): Promise<void> {
      if (ticker) { clearInterval(ticker); ticker = null; }
      for (const b of browsers) b.res.end();
      browsers.clear();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

function send(res: http.ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'content-type': `${type}; charset=utf-8`, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
  res.end(body);
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  send(res, status, 'application/json', JSON.stringify(body));
}

interface Page {
  html: string;
  csp: string;
}

let pageCache: Page | null = null;

/**
 * page.html with page.css and page.js inlined, and a Content-Security-Policy
 * that allows exactly those two inline blocks (by hash) and requests to this
 * origin: the browser itself then refuses any CDN, font or other host.
 */
function loadPage(): Page {
  if (pageCache) return pageCache;
  const read = (name: string) => readFileSync(pageFile(name), 'utf8');
  const css = read('page.css');
  const js = read('page.js');
  const html = read('page.html')
    .replace('/*PAGE_CSS*/', () => css)
    .replace('/*PAGE_JS*/', () => js);
  const hash = (s: string) => `'sha256-${createHash('sha256').update(s).digest('base64')}'`;
  const csp = [
    "default-src 'none'",
    `style-src ${hash(css)}`,
    `script-src ${hash(js)}`,
    "connect-src 'self'",
    "img-src 'self' data:",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
  pageCache = { html, csp };
  return pageCache;
}

/**
 * The page files sit next to this module in the source tree. Compiled to
 * dist/ (tsc copies no assets), they are found in the sim/ folder the package
 * ships beside dist/.
 */
function pageFile(name: string): string {
  const here = fileURLToPath(new URL(name, import.meta.url));
  if (existsSync(here)) return here;
  return fileURLToPath(new URL(`../../../sim/dashboard/${name}`, import.meta.url));
}
