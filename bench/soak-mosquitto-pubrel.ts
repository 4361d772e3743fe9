// A standalone reproduction, against the installed mosquitto, of the QoS 2
// duplicates the fault soak finds (bench/soak-run.ts): mosquitto resends a
// PUBLISH it has already followed with a PUBREL.
//
//   node --import tsx bench/soak-mosquitto-pubrel.ts [--version 4|5] [--attempts N] [--keep]
//
// The steps, with raw sockets so every packet is ours:
//   1. subscriber S (persistent session) subscribes to t at QoS 2;
//   2. a publisher sends one QoS 2 message to t;
//   3. S gets PUBLISH id X, sends PUBREC, gets PUBREL X: as the receiver it
//      delivers the message and forgets X (MQTT 4.3.3: after PUBREL the id
//      may be reused); its PUBCOMP is lost (S's connection ends without it);
//   4. S reconnects and the connection dies right after CONNECT (reset), before
//      mosquitto's CONNACK write succeeds: mosquitto set X to "resend PUBREL"
//      on this CONNECT but never sent it;
//   5. S reconnects normally. Expected: PUBREL X (MQTT 4.3.3, the sender
//      "MUST NOT re-send the PUBLISH once it has sent the corresponding
//      PUBREL"; 4.4, unacknowledged PUBRELs are resent). mosquitto 2.0.11
//      sends PUBLISH X again with DUP=1, because
//      db__message_reconnect_reset_outgoing() (src/database.c) maps only
//      wait_for_pubcomp to resend_pubrel and everything else, resend_pubrel
//      included, to publish_qos2. A receiver that followed the protocol has
//      forgotten X and delivers the message a second time.
// Step 4 stops mosquitto (SIGSTOP) once it has accepted the connection; the
// connection then sends CONNECT and is reset, and mosquitto, continued, reads
// the CONNECT after the reset: the session is taken, the CONNACK or PUBREL
// write fails. (In the soak, the proxy's cut right after a CONNECT or at a
// CONNACK does the same.) Steps 4 and 5 are retried if step 5 gets the PUBREL.
// Exit status 1 when reproduced.

import { execFileSync } from 'node:child_process';
import net from 'node:net';
import { createRequire } from 'node:module';
import { startMosquitto } from '../sim/brokers.js';

const mp = createRequire(import.meta.url)('mqtt-packet');
const argv = process.argv;
const opt = (n: string, d: string): string => (argv.includes(`--${n}`) ? argv[argv.indexOf(`--${n}`) + 1]! : d);
const version = Number(opt('version', '5')) === 4 ? 4 : 5;
const attempts = Number(opt('attempts', '50'));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Pkt { cmd: string; messageId?: number; dup?: boolean; qos?: number; payload?: Buffer; sessionPresent?: boolean }

/** A raw MQTT connection: send packets, await the next one matching. */
class Raw {
  sock: net.Socket;
  got: Pkt[] = [];
  waiters: Array<{ f: (p: Pkt) => boolean; r: (p: Pkt) => void }> = [];
  constructor(port: number) {
    this.sock = net.connect(port, '127.0.0.1');
    const parser = mp.parser({ protocolVersion: version });
    parser.on('packet', (p: Pkt) => {
      this.got.push(p);
      const w = this.waiters.findIndex((x) => x.f(p));
      if (w >= 0) this.waiters.splice(w, 1)[0]!.r(p);
    });
    this.sock.on('data', (b) => parser.parse(b));
    this.sock.on('error', () => {});
  }
  opened(): Promise<void> { return new Promise((r) => this.sock.once('connect', () => r())); }
  send(p: object): void { this.sock.write(mp.generate({ ...p }, { protocolVersion: version })); }
  next(f: (p: Pkt) => boolean, ms = 3000): Promise<Pkt> {
    const have = this.got.find(f);
    if (have) { this.got.splice(this.got.indexOf(have), 1); return Promise.resolve(have); }
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('timeout')), ms);
      this.waiters.push({ f, r: (p) => { clearTimeout(t); this.got.splice(this.got.indexOf(p), 1); resolve(p); } });
    });
  }
}

const connectPacket = (clientId: string, clean: boolean) => ({
  cmd: 'connect', protocolVersion: version, clientId, clean, keepalive: 60,
  ...(version === 5 && !clean ? { properties: { sessionExpiryInterval: 3600 } } : {}),
});

const mosq = await startMosquitto({ extraConfig: ['log_type all'] });
let verdict = 'not reproduced';
try {
  const port = mosq.port;
  // mosquitto's pid, from the listening socket (ss -ltnpH): ours, started above.
  const ss = execFileSync('ss', ['-ltnpH', `sport = :${port}`], { encoding: 'utf8' });
  const pid = Number(/pid=(\d+)/.exec(ss)?.[1]);
  if (!pid) throw new Error(`no pid for mosquitto on port ${port}: ${ss}`);
  // 1. the subscriber
  let s = new Raw(port);
  await s.opened();
  s.send(connectPacket('repro-sub', false));
  await s.next((p) => p.cmd === 'connack');
  s.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 't', qos: 2 }] });
  await s.next((p) => p.cmd === 'suback');
  // 2. one QoS 2 message
  const pub = new Raw(port);
  await pub.opened();
  pub.send(connectPacket('repro-pub', true));
  await pub.next((p) => p.cmd === 'connack');
  pub.send({ cmd: 'publish', topic: 't', payload: Buffer.from('exactly once'), qos: 2, messageId: 7 });
  await pub.next((p) => p.cmd === 'pubrec');
  pub.send({ cmd: 'pubrel', messageId: 7 });
  await pub.next((p) => p.cmd === 'pubcomp');
  // 3. PUBLISH X, PUBREC, PUBREL X: delivered once, X forgotten; no PUBCOMP
  const first = await s.next((p) => p.cmd === 'publish');
  const x = first.messageId!;
  console.log(`subscriber: PUBLISH id ${x} d${first.dup ? 1 : 0} '${first.payload}' -> delivered (1st), PUBREC`);
  s.send({ cmd: 'pubrec', messageId: x });
  await s.next((p) => p.cmd === 'pubrel' && p.messageId === x);
  console.log(`subscriber: PUBREL ${x} -> id ${x} released; the PUBCOMP is lost (connection ends)`);
  s.sock.destroy();
  await sleep(200);
  // 4 and 5, until mosquitto shows it (or attempts run out): a connection reset
  // right after its CONNECT, then a normal one. If the normal one gets the
  // PUBREL (the reset came too early or too late), its PUBCOMP is withheld
  // again, so the broker is back where it was, and we try again.
  for (let i = 1; i <= attempts; i++) {
    const d = new Raw(port);
    await d.opened();
    // Once mosquitto has accepted the connection (it logs it), stop it:
    const t0 = Date.now();
    while (!mosq.log().includes(`New connection from 127.0.0.1:${d.sock.localPort} `) && Date.now() - t0 < 2000) await sleep(2);
    process.kill(pid, 'SIGSTOP');
    await new Promise<void>((r) => d.sock.write(mp.generate(connectPacket('repro-sub', false), { protocolVersion: version }), () => r()));
    await sleep(20);
    d.sock.resetAndDestroy();
    await sleep(20);
    process.kill(pid, 'SIGCONT');
    await sleep(100);
    s = new Raw(port);
    await s.opened();
    s.send(connectPacket('repro-sub', false));
    const ack = await s.next((p) => p.cmd === 'connack');
    const again = await s.next((p) => (p.cmd === 'publish' || p.cmd === 'pubrel') && p.messageId === x, 2000).catch(() => null);
    s.sock.destroy();
    await sleep(100);
    if (again?.cmd === 'publish') {
      verdict = `REPRODUCED (try ${i}): after PUBREL ${x}, mosquitto sent PUBLISH id ${x} d${again.dup ? 1 : 0} '${again.payload}' again (session present ${ack.sessionPresent ? 1 : 0}): a compliant receiver delivers it twice`;
      break;
    }
    verdict = `not reproduced in ${i} tries: mosquitto resent PUBREL ${x} each time, as it should`;
  }
  s.sock.destroy();
  pub.sock.destroy();
  const relevant = mosq.log().split('\n').filter((l) => /repro-sub/.test(l) && (new RegExp(`m${x}\\b|Mid: ${x}\\b`).test(l) || /connected|CONNACK|closed|disconnected/.test(l)));
  console.log('mosquitto log (repro-sub, id ' + x + '):\n  ' + relevant.join('\n  '));
} finally {
  await mosq.stop();
  if (!argv.includes("--keep")) await mosq.dispose();
}
console.log(verdict);
process.exitCode = verdict.startsWith('REPRODUCED') ? 1 : 0;
