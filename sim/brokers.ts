// Real brokers for tests, benchmarks and the simulator, on 127.0.0.1 only.
// aedes runs in-process (MQTT 3.1.1 only); mosquitto runs as a child process
// from a generated config file so persistence and restarts are real.
// Every child process started here is also killed at process exit, so a
// failing test cannot leave a broker behind.
//
// aedes is an optional peer dependency of the package: only startAedes (the
// testing kit's embedded broker, the simulator's --realtime default) needs
// it, so it is loaded when first asked for, and the types here do not name
// it (dormouse/testing type-checks without aedes installed).

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { WebSocketServer, createWebSocketStream } from 'ws';

const HOST = '127.0.0.1';

/** A port that was free a moment ago (listen on 0, read it, close). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, HOST, () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Resolves once HOST:port accepts a TCP connection, or rejects after timeoutMs. */
export async function waitForPort(port: number, timeoutMs = 5000, alive?: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: HOST, port });
      s.once('connect', () => { s.destroy(); resolve(true); });
      s.once('error', () => { s.destroy(); resolve(false); });
    });
    if (ok) return;
    if (alive && !alive()) throw new Error(`process listening on ${port} exited before accepting connections`);
    if (Date.now() > deadline) throw new Error(`nothing accepted connections on ${HOST}:${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function closeServer(server: net.Server | WebSocketServer): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

// ---------------------------------------------------------------- aedes

/** The parts of aedes's broker the handle promises; it is an `Aedes` from 'aedes' (cast to use the rest). */
export interface EmbeddedBroker extends EventEmitter {
  handle(connection: Duplex): unknown;
  close(callback?: () => void): void;
}

export interface AedesHandle {
  broker: EmbeddedBroker;
  port: number;
  /** mqtt://127.0.0.1:PORT */
  url: string;
  /** Port of the WebSocket listener (path /mqtt), when started with ws: true. */
  wsPort?: number;
  /** ws://127.0.0.1:PORT/mqtt, when started with ws: true. */
  wsUrl?: string;
  /** Destroys every client connection, closes listeners and the broker. */
  close(): Promise<void>;
}

export interface StartAedesOptions {
  /** Also listen for MQTT over WebSocket (subprotocol mqtt) on another port. */
  ws?: boolean;
  /** Passed to aedes's `Aedes.createBroker` (its AedesOptions). */
  broker?: Record<string, unknown>;
}

/** Thrown by startAedes when the optional aedes package is not installed. */
export class AedesMissingError extends Error {
  readonly code = 'DORMOUSE_NO_AEDES';
}

async function loadAedes(): Promise<{ createBroker(options?: object): Promise<EmbeddedBroker> }> {
  try {
    return (await import('aedes')).Aedes as unknown as { createBroker(options?: object): Promise<EmbeddedBroker> };
  } catch (e) {
    // Only aedes itself missing; a broken aedes install keeps its own error.
    if ((e as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND' || !/'aedes'/.test((e as Error).message)) throw e;
    throw new AedesMissingError('the embedded broker needs the aedes package, an optional peer dependency of dormouse: npm install aedes (or give a broker URL)');
  }
}

export async function startAedes(opts: StartAedesOptions = {}): Promise<AedesHandle> {
  const broker = await (await loadAedes()).createBroker(opts.broker);
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    broker.handle(socket);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, HOST, () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;

  let wss: WebSocketServer | undefined;
  let wsPort: number | undefined;
  if (opts.ws) {
    wss = new WebSocketServer({ host: HOST, port: 0, path: '/mqtt' });
    await new Promise<void>((resolve, reject) => {
      wss!.once('error', reject);
      wss!.once('listening', () => resolve());
    });
    wss.on('connection', (ws) => {
      const stream = createWebSocketStream(ws);
      stream.on('error', () => stream.destroy());
      broker.handle(stream);
    });
    wsPort = (wss.address() as net.AddressInfo).port;
  }

  let closed = false;
  return {
    broker,
    port,
    url: `mqtt://${HOST}:${port}`,
    wsPort,
    wsUrl: wsPort === undefined ? undefined : `ws://${HOST}:${wsPort}/mqtt`,
    async close() {
      if (closed) return;
      closed = true;
      for (const s of sockets) s.destroy();
      if (wss) {
        for (const c of wss.clients) c.terminate();
        await closeServer(wss);
      }
      await closeServer(server);
      await new Promise<void>((resolve) => broker.close(() => resolve()));
    },
  };
}

// ---------------------------------------------------------------- mosquitto

const live = new Set<ChildProcess>();
/** Process groups (RabbitMQ's script and its Erlang VM) to kill with the process. */
const liveGroups = new Set<number>();
process.once('exit', () => {
  for (const c of live) {
    try { c.kill('SIGKILL'); } catch { /* already gone */ }
  }
  for (const g of liveGroups) {
    try { process.kill(-g, 'SIGKILL'); } catch { /* already gone */ }
  }
});

let mosquittoPath: string | null | undefined;

/** Absolute path of the mosquitto broker, or null when it is not installed. */
export function findMosquitto(): string | null {
  if (mosquittoPath !== undefined) return mosquittoPath;
  mosquittoPath = null;
  if (existsSync('/usr/sbin/mosquitto')) mosquittoPath = '/usr/sbin/mosquitto';
  else {
    const r = spawnSync('sh', ['-c', 'command -v mosquitto'], { encoding: 'utf8' });
    const p = r.status === 0 ? r.stdout.trim() : '';
    if (p) mosquittoPath = p;
  }
  return mosquittoPath;
}

export function mosquittoAvailable(): boolean {
  return findMosquitto() !== null;
}

export interface StartMosquittoOptions {
  /** Default true: persistence on, database in dir. */
  persistence?: boolean;
  /** Directory for the config, log and database; a new temp dir by default (removed by stop()/kill() only if created here). */
  dir?: string;
  port?: number;
  /** Extra config lines appended verbatim (for example a TLS listener). */
  extraConfig?: string[];
}

export interface MosquittoHandle {
  port: number;
  url: string;
  dir: string;
  /** SIGTERM (mosquitto saves its database) and wait for exit. */
  stop(): Promise<void>;
  /** stop() if running, then start again on the same port, dir and config. */
  restart(): Promise<void>;
  /** SIGKILL (nothing saved) and wait for exit. */
  kill(): Promise<void>;
  /** stop() and delete the temp dir if this helper created it. */
  dispose(): Promise<void>;
  /** The broker's log so far (for failure messages). */
  log(): string;
  readonly running: boolean;
}

export async function startMosquitto(opts: StartMosquittoOptions = {}): Promise<MosquittoHandle> {
  const bin = findMosquitto();
  if (!bin) throw new Error('mosquitto is not installed');
  const ownDir = opts.dir === undefined;
  const dir = opts.dir ?? mkdtempSync(path.join(tmpdir(), 'dormouse-mosq-'));
  const port = opts.port ?? (await freePort());
  const conf = path.join(dir, 'mosquitto.conf');
  const logFile = path.join(dir, 'mosquitto.log');
  const lines = [
    `listener ${port} ${HOST}`,
    'allow_anonymous true',
    `persistence ${opts.persistence === false ? 'false' : 'true'}`,
    `persistence_location ${dir}/`,
    `log_dest file ${logFile}`,
    'log_type error',
    'log_type warning',
    'log_type notice',
    'log_type information',
  ];
  if (process.getuid?.() === 0) lines.push('user root');
  if (opts.extraConfig) lines.push(...opts.extraConfig);
  writeFileSync(conf, lines.join('\n') + '\n');

  let child: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();
  let stderr = '';

  const launch = async (): Promise<void> => {
    const c = spawn(bin, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    child = c;
    live.add(c);
    c.stderr!.setEncoding('utf8');
    c.stderr!.on('data', (d: string) => { stderr += d; });
    let alive = true;
    exited = new Promise<void>((resolve) => {
      c.once('exit', () => { alive = false; live.delete(c); if (child === c) child = null; resolve(); });
    });
    try {
      await waitForPort(port, 5000, () => alive);
    } catch (e) {
      c.kill('SIGKILL');
      await exited;
      throw new Error(`${(e as Error).message}\n${stderr}\n${readLog()}`);
    }
  };
  const readLog = (): string => { try { return readFileSync(logFile, 'utf8'); } catch { return ''; } };
  const signal = async (sig: NodeJS.Signals): Promise<void> => {
    const c = child;
    if (!c) return;
    c.kill(sig);
    // mosquitto exits promptly on SIGTERM; escalate if it does not.
    const t = setTimeout(() => c.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  };

  try {
    await launch();
  } catch (e) {
    if (ownDir) rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const handle: MosquittoHandle = {
    port,
    url: `mqtt://${HOST}:${port}`,
    dir,
    stop: () => signal('SIGTERM'),
    kill: () => signal('SIGKILL'),
    async restart() {
      await signal('SIGTERM');
      await launch();
    },
    async dispose() {
      await signal('SIGTERM');
      if (ownDir) rmSync(dir, { recursive: true, force: true });
    },
    log: () => stderr + readLog(),
    get running() { return child !== null; },
  };
  return handle;
}

// ---------------------------------------------------------------- RabbitMQ

const RABBITMQ_SERVER = '/usr/lib/rabbitmq/bin/rabbitmq-server';

/**
 * Debian's RabbitMQ (3.10 in bookworm) with its MQTT plugin, which matters for
 * what it does not do: it speaks MQTT 3.1.1 only (it closes the connection on an
 * MQTT 5 CONNECT) and has no QoS 2 (it answers a QoS 2 PUBLISH with PUBACK).
 */
export function rabbitmqAvailable(): boolean {
  return existsSync(RABBITMQ_SERVER);
}

export interface RabbitMQHandle {
  port: number;
  url: string;
  dir: string;
  /** Milliseconds from spawn until its MQTT listener accepted a connection. */
  startedInMs: number;
  /** Stop the node, its private epmd, and delete its directory. */
  dispose(): Promise<void>;
  log(): string;
}

/**
 * A private RabbitMQ node for one test file: its own directory (database, logs,
 * Erlang cookie), node name, AMQP, distribution and epmd ports, a config file
 * with the MQTT listener on 127.0.0.1 and guest allowed beyond loopback, and an
 * enabled-plugins file with rabbitmq_mqtt. It runs as whoever runs the tests
 * (root in CI: the script under /usr/lib/rabbitmq/bin does not switch users,
 * unlike /usr/sbin/rabbitmq-server). Erlang takes a while to boot: the wait is
 * bounded by timeoutMs (default 120 s), and a node that has not come up by
 * then is killed and reported with its log.
 */
export async function startRabbitMQ(opts: { timeoutMs?: number } = {}): Promise<RabbitMQHandle> {
  if (!existsSync(RABBITMQ_SERVER)) throw new Error(`RabbitMQ is not installed (${RABBITMQ_SERVER})`);
  const dir = mkdtempSync(path.join(tmpdir(), 'dormouse-rabbit-'));
  const [port, amqp, dist, epmd] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const home = path.join(dir, 'home');
  for (const d of [home, path.join(dir, 'mnesia'), path.join(dir, 'log')]) mkdirSync(d, { recursive: true });
  writeFileSync(path.join(dir, 'enabled_plugins'), '[rabbitmq_mqtt].\n');
  writeFileSync(
    path.join(dir, 'rabbitmq.conf'),
    [
      `listeners.tcp.default = ${HOST}:${amqp}`,
      `mqtt.listeners.tcp.default = ${HOST}:${port}`,
      'mqtt.allow_anonymous = true',
      'loopback_users = none',
      '',
    ].join('\n'),
  );
  const logFile = path.join(dir, 'rabbit.log');
  const env = {
    ...process.env,
    HOME: home,
    RABBITMQ_MNESIA_BASE: path.join(dir, 'mnesia'),
    RABBITMQ_LOG_BASE: path.join(dir, 'log'),
    RABBITMQ_LOGS: logFile,
    RABBITMQ_NODENAME: `dormouse-${process.pid}-${port}@localhost`,
    RABBITMQ_NODE_IP_ADDRESS: HOST,
    RABBITMQ_NODE_PORT: String(amqp),
    RABBITMQ_DIST_PORT: String(dist),
    ERL_EPMD_PORT: String(epmd),
    ERL_EPMD_ADDRESS: HOST,
    RABBITMQ_ENABLED_PLUGINS_FILE: path.join(dir, 'enabled_plugins'),
    RABBITMQ_CONFIG_FILE: path.join(dir, 'rabbitmq.conf'),
    RABBITMQ_PID_FILE: path.join(dir, 'rabbit.pid'),
  };
  const started = Date.now();
  // A guard shell leads its own process group: it starts the server, and when
  // its stdin closes (dispose(), or this process dying, even by SIGKILL, when
  // no exit handler runs) it stops the whole group and the private epmd. A
  // node left running by a killed test worker would otherwise burn CPU for good.
  const guard =
    'trap "" TERM; "$0" & server=$!; read _; kill -TERM 0; wait $server; ' +
    'sleep 1; epmd -kill >/dev/null 2>&1; rm -rf "$1"; kill -KILL 0';
  const c = spawn('sh', ['-c', guard, RABBITMQ_SERVER, dir], { env, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
  liveGroups.add(c.pid!);
  let output = '';
  c.stdout!.setEncoding('utf8').on('data', (d: string) => { output += d; });
  c.stderr!.setEncoding('utf8').on('data', (d: string) => { output += d; });
  c.stdin!.on('error', () => {});
  let alive = true;
  const exited = new Promise<void>((resolve) => c.once('exit', () => { alive = false; liveGroups.delete(c.pid!); resolve(); }));
  const readLog = (): string => { try { return readFileSync(logFile, 'utf8'); } catch { return ''; } };
  const stop = async (): Promise<void> => {
    if (alive) {
      c.stdin!.end(); // the guard shell stops the node and its epmd
      const t = setTimeout(() => { try { process.kill(-c.pid!, 'SIGKILL'); } catch { /* gone */ } }, 20_000);
      await exited;
      clearTimeout(t);
    }
    // The Erlang VM started a daemon epmd on the private port (the guard stops it; this is for a guard killed first).
    spawnSync('epmd', ['-kill'], { env: { ...process.env, ERL_EPMD_PORT: String(epmd) }, stdio: 'ignore', timeout: 5000 });
  };
  try {
    await waitForPort(port, opts.timeoutMs ?? 120_000, () => alive);
  } catch (e) {
    await stop();
    const why = `${(e as Error).message}\n${output.slice(-4000)}\n${readLog().slice(-4000)}`;
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`RabbitMQ did not start: ${why}`);
  }
  return {
    port,
    url: `mqtt://${HOST}:${port}`,
    dir,
    startedInMs: Date.now() - started,
    async dispose() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
    log: () => output + readLog(),
  };
}
