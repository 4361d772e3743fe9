// Per-wake figures (issue 15): one QoS 1 reading on a resumed MQTT session,
// from TCP connect to TCP close, against Debian's mosquitto on 127.0.0.1
// through the Node host, in three ways: plain TCP, TLS 1.2 with a full
// handshake, and TLS 1.2 resumed from the 108-byte RTC record
// (modules/wake/tls-session-record.ts) as a device would after deep sleep.
//   node --import tsx bench/wake.ts [--json] [--wakes N]
//
// Measured through a counting TCP proxy: bytes each way, data flights each way
// (a burst of writes in one direction; a packet each, as the device's TCP with
// Nagle off sends them), round trips (a client flight answered by a server
// flight, plus one for the TCP handshake), TLS handshake time (raw
// tls.connect, the same options) and wake time to PUBACK. The radio-on time
// and battery life come from the stated model in modules/wake/energy.ts, which
// the simulator's battery scenario uses too.
//
// Cold against warm: a wake after power-on has no hints, so it looks the
// broker's name up (one DNS exchange with a server on 127.0.0.1 standing in
// for the LAN's, its bytes counted as they cross) and makes a full TLS
// handshake; a warm wake uses the address kept in RTC (no lookup) and resumes
// TLS. Both are measured, and the ratio of the whole wakes is reported beside
// the like-for-like one (the same wake with only the TLS handshake changed).
//
// TLS 1.2 on purpose: Moddable's TLS, the device side, speaks TLS 1.2 and
// resumes by session id (no tickets). In TLS 1.3 the session ticket arrives
// after the handshake and resumption saves the certificate, not a round trip.
import net from 'node:net';
import dgram from 'node:dgram';
import { Resolver } from 'node:dns/promises';
import tls from 'node:tls';
import { constants } from 'node:crypto';
import { connect, type ConnectOptions } from '../hosts/node/client.js';
import { fromNodeSession, toNodeSession } from '../hosts/node/tls-session.js';
import { TlsSessionRecord } from '../modules/wake/tls-session-record.js';
import { DEFAULT_WAKE_MODEL, DNS_LOOKUP, TLS12_HANDSHAKE, batteryLifeDays, describeModel, wakeEnergy, type TlsMode, type WakeTraffic } from '../modules/wake/energy.js';
import { freePort, startMosquitto } from '../sim/brokers.js';
import { MemorySnapshotStore } from '../sim/memory-store.js';
import { makeTestPki } from '../test/support/certs.js';

const json = process.argv.includes('--json');
const wakesArg = process.argv.indexOf('--wakes');
const WAKES = wakesArg > 0 ? Number(process.argv[wakesArg + 1]) : 9;
const SERVER = 'localhost';
const EVERY_S = 300;

function row(bench: string, value: number, unit: string): void {
  const v = Math.round(value * 100) / 100;
  if (json) console.log(JSON.stringify({ bench, value: v, unit }));
  else console.log(`${bench.padEnd(48)} ${String(v).padStart(12)}  ${unit}`);
}

/** A TCP proxy counting what crosses it per connection. */
interface Count { up: number; down: number; flightsUp: number; flightsDown: number; roundTrips: number; roundTripsToAck: number }
async function countingProxy(target: number) {
  const port = await freePort();
  let current: Count | null = null;
  const server = net.createServer((c) => {
    const n: Count = { up: 0, down: 0, flightsUp: 0, flightsDown: 0, roundTrips: 1, roundTripsToAck: 0 }; // 1: the TCP handshake
    current = n;
    let last: 'up' | 'down' | '' = '';
    const s = net.connect(target, '127.0.0.1');
    c.setNoDelay(true);
    s.setNoDelay(true);
    c.on('data', (d) => { n.up += d.length; if (last !== 'up') n.flightsUp++; last = 'up'; s.write(d); });
    s.on('data', (d) => {
      n.down += d.length;
      if (last !== 'down') { n.flightsDown++; if (last === 'up') n.roundTrips++; }
      last = 'down';
      c.write(d);
    });
    c.on('end', () => s.end());
    s.on('end', () => c.end());
    c.on('error', () => s.destroy());
    s.on('error', () => c.destroy());
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return {
    port,
    take: () => { const x = current; current = null; return x; },
    /** The device has its PUBACK: round trips after this (TLS close_notify answered at close) are not waited for. */
    acked: () => { if (current) current.roundTripsToAck = current.roundTrips; },
    close: () => new Promise((r) => server.close(r)),
  };
}

/**
 * A DNS server on 127.0.0.1, standing in for the LAN's: answers an A query
 * with 127.0.0.1 (TTL 3600) in the shortest form (the name as a pointer), and
 * counts the UDP payload bytes each way.
 */
async function dnsResponder() {
  const sock = dgram.createSocket('udp4');
  const count = { queries: 0, up: 0, down: 0 };
  sock.on('message', (q, from) => {
    count.queries++;
    count.up += q.length;
    let i = 12;
    while (i < q.length && q[i] !== 0) i += q[i]! + 1;
    const question = q.subarray(12, i + 5); // QNAME, its zero byte, QTYPE, QCLASS
    const head = Buffer.from(q.subarray(0, 12));
    head[2] = 0x81; // response, recursion desired
    head[3] = 0x80; // recursion available, no error
    head.writeUInt16BE(1, 4);
    head.writeUInt16BE(1, 6);
    head.writeUInt32BE(0, 8); // no authority, no additional records
    const answer = Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4, 127, 0, 0, 1]);
    const r = Buffer.concat([head, question, answer]);
    count.down += r.length;
    sock.send(r, from.port, from.address);
  });
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  return { port: sock.address().port, count, close: () => new Promise<void>((r) => sock.close(() => r())) };
}

const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]!; };

const pki = makeTestPki();
const tlsPort = await freePort();
const broker = await startMosquitto({
  persistence: false,
  extraConfig: [`listener ${tlsPort} 127.0.0.1`, `cafile ${pki.files.caCert}`, `certfile ${pki.files.serverCert}`, `keyfile ${pki.files.serverKey}`],
});
const plainProxy = await countingProxy(broker.port);
const tlsProxy = await countingProxy(tlsPort);

interface WakeResult { count: Count; wakeMs: number; resumed: boolean; session: Uint8Array | null }

/** One wake: a fresh client on the stored session, one QoS 1 reading sent behind CONNECT, PUBACK, DISCONNECT. */
async function wake(url: string, store: MemorySnapshotStore, extra: ConnectOptions, proxy: { take: () => Count | null; acked: () => void }): Promise<WakeResult> {
  const t0 = performance.now();
  const c = connect(url, { clientId: 'wake-bench', store, keepalive: 60, reconnectPeriod: 0, ...extra });
  let session: Uint8Array | null = null;
  c.on('tlsSession', (s: Uint8Array | null) => { session = s; });
  const errors: Error[] = [];
  c.on('error', (e: Error) => errors.push(e));
  const { acknowledged } = await c.publish('sensors/t1', '21.5', { qos: 1 });
  await acknowledged;
  proxy.acked();
  const wakeMs = performance.now() - t0;
  const resumed = c.tlsResumed;
  await c.end();
  await new Promise((r) => setTimeout(r, 30)); // the proxy sees the close
  if (errors.length) throw errors[0];
  return { count: proxy.take()!, wakeMs, resumed, session };
}

const tlsBase: ConnectOptions = { ca: pki.caCert, servername: SERVER, tlsSessionIdOnly: true };
const results: Record<TlsMode, WakeResult[]> = { none: [], full: [], resumed: [] };

// plain: a first wake makes the broker session; the measured wakes resume it (one MQTT round trip).
{
  const store = new MemorySnapshotStore();
  await wake(`mqtt://127.0.0.1:${plainProxy.port}`, store, {}, plainProxy);
  for (let k = 0; k < WAKES; k++) results.none.push(await wake(`mqtt://127.0.0.1:${plainProxy.port}`, store, {}, plainProxy));
}
// TLS: full handshakes (nothing offered), then wakes resumed from the RTC record bytes.
{
  const store = new MemorySnapshotStore();
  const url = `mqtts://127.0.0.1:${tlsProxy.port}`;
  await wake(url, store, { ...tlsBase, wantTlsSession: true }, tlsProxy);
  const rtc = new Uint8Array(512);
  let nowS = 1000;
  for (let k = 0; k < WAKES; k++) {
    const r = await wake(url, store, { ...tlsBase, wantTlsSession: true }, tlsProxy);
    if (r.resumed) throw new Error('a full handshake resumed');
    results.full.push(r);
    new TlsSessionRecord(rtc).save(SERVER, fromNodeSession(r.session!), nowS, 7200);
  }
  for (let k = 0; k < WAKES; k++) {
    nowS += 300; // a deep sleep: only the record's bytes are kept
    const kept = rtc.slice();
    const offered = toNodeSession(new TlsSessionRecord(kept), SERVER, nowS);
    if (!offered) throw new Error('the record was not offerable');
    const r = await wake(url, store, { ...tlsBase, tlsSession: offered }, tlsProxy);
    if (!r.resumed) throw new Error('the broker did not resume the session from the record');
    results.resumed.push(r);
  }
}

/** TLS handshake time alone, raw tls.connect with the same options. */
async function handshakeMs(session?: Buffer): Promise<{ ms: number; session?: Buffer; reused: boolean }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let got: Buffer | undefined;
    const s = tls.connect({ host: '127.0.0.1', port: tlsPort, ca: pki.caCert, servername: SERVER, maxVersion: 'TLSv1.2', secureOptions: constants.SSL_OP_NO_TICKET, session, rejectUnauthorized: !session });
    s.on('session', (x) => { got = x; });
    s.on('secureConnect', () => { const ms = performance.now() - t0; const reused = s.isSessionReused(); setImmediate(() => { s.end(); resolve({ ms, session: got, reused }); }); });
    s.on('error', reject);
  });
}
const hsFull: number[] = [];
const hsResumed: number[] = [];
let hsSession: Buffer | undefined;
for (let k = 0; k < WAKES; k++) {
  const f = await handshakeMs();
  hsFull.push(f.ms);
  hsSession = f.session;
  const r = await handshakeMs(hsSession);
  if (!r.reused) throw new Error('raw handshake did not resume');
  hsResumed.push(r.ms);
}

// DNS: the lookup a cold wake makes and a warm one skips (the broker's address kept in RTC).
const dnsServer = await dnsResponder();
const resolver = new Resolver({ timeout: 1000, tries: 1 });
resolver.setServers([`127.0.0.1:${dnsServer.port}`]);
const dnsRuns: { ms: number; up: number; down: number; queries: number }[] = [];
for (let k = 0; k < WAKES; k++) {
  const before = { ...dnsServer.count };
  const t0 = performance.now();
  const answer = await resolver.resolve4('broker.example.net'); // not "localhost": c-ares answers that one itself
  const ms = performance.now() - t0;
  if (answer[0] !== '127.0.0.1') throw new Error(`DNS answered ${answer}`);
  const c = dnsServer.count;
  dnsRuns.push({ ms, up: c.up - before.up, down: c.down - before.down, queries: c.queries - before.queries });
}
await dnsServer.close();

await plainProxy.close();
await tlsProxy.close();
await broker.dispose();
pki.dispose();

// ---- rows -------------------------------------------------------------------
const m = DEFAULT_WAKE_MODEL;
const name: Record<TlsMode, string> = { none: 'plain', full: 'tls-full', resumed: 'tls-resumed' };
const traffic: Partial<Record<TlsMode, WakeTraffic>> = {};
for (const mode of ['none', 'full', 'resumed'] as const) {
  const rs = results[mode];
  const t: WakeTraffic = {
    roundTrips: median(rs.map((r) => r.count.roundTripsToAck)),
    bytesUp: median(rs.map((r) => r.count.up)),
    bytesDown: median(rs.map((r) => r.count.down)),
    // Data flights + TCP's own: SYN and ACK up, SYN-ACK down to open; FIN and ACK each way to close.
    packetsUp: median(rs.map((r) => r.count.flightsUp)) + 2 + 2,
    packetsDown: median(rs.map((r) => r.count.flightsDown)) + 1 + 2,
    tls: mode,
  };
  traffic[mode] = t;
  const n = `wake.${name[mode]}`;
  row(`${n}.round-trips`, t.roundTrips, 'round trips to PUBACK, TCP handshake included');
  row(`${n}.bytes-up`, t.bytesUp, 'B device to broker (TCP payload)');
  row(`${n}.bytes-down`, t.bytesDown, 'B broker to device (TCP payload)');
  row(`${n}.packets`, t.packetsUp + t.packetsDown, 'IP packets (data flights + TCP open/close; pure ACKs not counted)');
  row(`${n}.wake-ms-loopback`, median(rs.map((r) => r.wakeMs)), 'ms connect to PUBACK on loopback (Node host, median)');
  for (const [label, join] of [['scan+dhcp', { bssidHint: false, staticIp: false }], ['bssid+static', { bssidHint: true, staticIp: true }]] as const) {
    const e = wakeEnergy(m, t, join);
    row(`${n}.radio-on-ms.${label}`, e.radioOnMs, `ms radio on (model: join ${e.joinMs + e.addressMs}, latency ${e.latencyMs}, airtime ${(e.txMs + e.rxMs).toFixed(1)}, TLS cpu ${e.cpuMs})`);
    row(`${n}.battery-days.${label}`, batteryLifeDays(m, e.chargeMaMs, e.radioOnMs, EVERY_S), `days on ${m.batteryMah} mAh, a wake every ${EVERY_S} s`);
  }
  const e0 = wakeEnergy(m, t, null);
  row(`${n}.radio-on-ms.link-only`, e0.radioOnMs, 'ms radio on after the join (TCP, TLS, MQTT only)');
}
// The constants the simulator uses (modules/wake/energy.ts TLS12_HANDSHAKE) against this run.
for (const mode of ['full', 'resumed'] as const) {
  const t = traffic[mode]!;
  const p = traffic.none!;
  const k = TLS12_HANDSHAKE[mode];
  row(`tls.${mode}.extra-bytes-up`, t.bytesUp - p.bytesUp, `B TLS adds device to broker (simulator's constant: ${k.bytesUp})`);
  row(`tls.${mode}.extra-bytes-down`, t.bytesDown - p.bytesDown, `B TLS adds broker to device (simulator's constant: ${k.bytesDown})`);
  row(`tls.${mode}.extra-round-trips`, t.roundTrips - p.roundTrips, `round trips TLS adds (simulator's constant: ${k.roundTrips})`);
}
row('tls.handshake-ms.full', median(hsFull), 'ms TLS 1.2 handshake on loopback (median; Node/OpenSSL, not a device)');
row('tls.handshake-ms.resumed', median(hsResumed), 'ms TLS 1.2 resumed handshake on loopback (median)');
const full = traffic.full!;
const res = traffic.resumed!;
const plain = traffic.none!;
row('ratio.resumed-vs-full.bytes', (res.bytesUp + res.bytesDown) / (full.bytesUp + full.bytesDown), 'resumed / full, bytes both ways (target <= 0.5)');
row('ratio.resumed-vs-full.round-trips', res.roundTrips / full.roundTrips, 'resumed / full, whole wake');
row('ratio.resumed-vs-full.tls-round-trips', (res.roundTrips - plain.roundTrips) / (full.roundTrips - plain.roundTrips), 'resumed / full, TLS handshake round trips (wake minus the plain wake; target <= 0.5)');
row('ratio.resumed-vs-full.handshake-ms', median(hsResumed) / median(hsFull), 'resumed / full handshake time on loopback');
// Cold (after power-on: scan, DHCP, DNS lookup, full handshake) against warm (BSSID and address kept, TLS resumed).
const dnsQueries = median(dnsRuns.map((d) => d.queries));
const dnsTraffic = { roundTrips: dnsQueries, bytesUp: median(dnsRuns.map((d) => d.up)), bytesDown: median(dnsRuns.map((d) => d.down)), packetsUp: dnsQueries, packetsDown: dnsQueries };
row('dns.lookup.round-trips', dnsTraffic.roundTrips, 'round trips of one A lookup (UDP, one query and its answer)');
row('dns.lookup.bytes-up', dnsTraffic.bytesUp, `B device to DNS server (UDP payload: Node's c-ares query; simulator's constant: ${DNS_LOOKUP.bytesUp})`);
row('dns.lookup.bytes-down', dnsTraffic.bytesDown, `B DNS server to device (UDP payload, shortest A answer; simulator's constant: ${DNS_LOOKUP.bytesDown})`);
row('dns.lookup.ms-loopback', median(dnsRuns.map((d) => d.ms)), 'ms per lookup on loopback (median)');
const cold: WakeTraffic = {
  roundTrips: full.roundTrips + dnsTraffic.roundTrips,
  bytesUp: full.bytesUp + dnsTraffic.bytesUp,
  bytesDown: full.bytesDown + dnsTraffic.bytesDown,
  packetsUp: full.packetsUp + dnsTraffic.packetsUp,
  packetsDown: full.packetsDown + dnsTraffic.packetsDown,
  tls: 'full',
};
const warm = res;
row('wake.cold.round-trips', cold.roundTrips, 'round trips to PUBACK: DNS lookup + TCP + full TLS + MQTT');
row('wake.cold.bytes-up', cold.bytesUp, 'B device to network (DNS + TCP payload)');
row('wake.cold.bytes-down', cold.bytesDown, 'B network to device (DNS + TCP payload)');
row('wake.warm.round-trips', warm.roundTrips, 'round trips to PUBACK: kept address (no DNS) + TCP + resumed TLS + MQTT');
row('wake.warm.bytes-up', warm.bytesUp, 'B device to network');
row('wake.warm.bytes-down', warm.bytesDown, 'B network to device');
const ec = wakeEnergy(m, cold, { bssidHint: false, staticIp: false });
const ew = wakeEnergy(m, warm, { bssidHint: true, staticIp: true });
row('wake.cold.radio-on-ms.scan+dhcp', ec.radioOnMs, `ms radio on (model: join ${ec.joinMs + ec.addressMs}, latency ${ec.latencyMs}, airtime ${(ec.txMs + ec.rxMs).toFixed(1)}, TLS cpu ${ec.cpuMs})`);
row('wake.cold.battery-days.scan+dhcp', batteryLifeDays(m, ec.chargeMaMs, ec.radioOnMs, EVERY_S), `days on ${m.batteryMah} mAh if every wake were cold, a wake every ${EVERY_S} s`);
row('wake.warm.radio-on-ms.bssid+static', ew.radioOnMs, `ms radio on (model: join ${ew.joinMs + ew.addressMs}, latency ${ew.latencyMs}, airtime ${(ew.txMs + ew.rxMs).toFixed(1)}, TLS cpu ${ew.cpuMs})`);
row('wake.warm.battery-days.bssid+static', batteryLifeDays(m, ew.chargeMaMs, ew.radioOnMs, EVERY_S), `days on ${m.batteryMah} mAh, every wake warm, a wake every ${EVERY_S} s`);
row('ratio.warm-vs-cold.round-trips', warm.roundTrips / cold.roundTrips, 'warm / cold, whole wake round trips, DNS counted (target <= 0.5)');
row('ratio.warm-vs-cold.bytes', (warm.bytesUp + warm.bytesDown) / (cold.bytesUp + cold.bytesDown), 'warm / cold, bytes both ways (target <= 0.5)');
row('ratio.warm-vs-cold.radio-on', ew.radioOnMs / ec.radioOnMs, 'warm / cold radio-on time (model)');
const rf = wakeEnergy(m, full, { bssidHint: true, staticIp: true });
const rr = wakeEnergy(m, res, { bssidHint: true, staticIp: true });
row('ratio.resumed-vs-full.radio-on.bssid+static', rr.radioOnMs / rf.radioOnMs, 'resumed / full radio-on time (model)');
if (!json) {
  console.log('\nmodel (modules/wake/energy.ts):');
  for (const l of describeModel(m)) console.log(`  ${l}`);
  console.log(`  round trips counted at a TCP proxy until the PUBACK: a client flight answered by a server flight, plus 1 for the TCP handshake; bytes until the close; ${WAKES} wakes each, medians`);
}
