// Session takeover: two devices with one client id kick each other off the
// broker [MQTT-3.1.4-3]. MQTT 5 says so (DISCONNECT 0x8E); in 3.1.1 the broker
// just closes the connection right after CONNACK, time after time. Either
// stops the ordinary reconnect loop: a long, capped, jittered wait, reported.
import { describe, expect, it } from 'vitest';
import { rig } from './harness.js';
import { ClientEvent } from '../../modules/session/ports.js';
import { ConnState, Metric } from '../../modules/session/client.js';
import { ReconnectPolicy, LossKind } from '../../modules/session/reconnect.js';

const CONNACK = '20 02 00 00';
const CONNACK_V5 = '20 03 00 00 00';
const DISCONNECT_TAKEN_OVER = 'e0 02 8e 00'; // MQTT 5 3.14.2.1: 0x8E Session taken over
const DISCONNECT_SHUTTING_DOWN = 'e0 02 8b 00'; // 0x8B Server shutting down

function connectAt(r: ReturnType<typeof rig>, now: number, connack: string) {
  r.client.tick(now);
  r.client.transportOpened(now);
  r.feed(connack, now);
  r.take();
}

describe('session takeover', () => {
  it('MQTT 5: DISCONNECT 0x8E closes, reports TakenOver and waits the takeover window, not the ordinary backoff', () => {
    const r = rig({ clean: true, protocolVersion: 5, reconnect: { baseMs: 1000, takeoverBaseMs: 300_000, takeoverCapMs: 3_600_000 } });
    r.client.start(0);
    connectAt(r, 0, CONNACK_V5);
    expect(r.client.state).toBe(ConnState.Connected);
    r.feed(DISCONNECT_TAKEN_OVER, 60_000);
    expect(r.closed).toBe(1);
    expect(r.client.lastReasonCode).toBe(0x8e);
    // random() = 0.5: equal jitter over the 300 s window gives 225 s.
    expect(r.kinds(ClientEvent.TakenOver).map((e) => [e.a, e.b])).toEqual([[0x8e, 225_000]]);
    expect(r.client.metrics[Metric.Takeovers]).toBe(1);
    expect(r.client.nextDeadline()).toBe(285_000);
    r.client.tick(284_999);
    expect(r.opened).toBe(1);
    r.client.tick(285_000);
    expect(r.opened).toBe(2);
    // Taken over again at once: the window doubles (600 s × 0.75).
    r.client.transportOpened(285_000);
    r.feed(CONNACK_V5 + ' ' + DISCONNECT_TAKEN_OVER, 285_010);
    expect(r.kinds(ClientEvent.TakenOver).map((e) => e.b)).toEqual([225_000, 450_000]);
  });

  it('MQTT 5: another DISCONNECT reason is an ordinary loss with the ordinary backoff', () => {
    const r = rig({ clean: true, protocolVersion: 5, reconnect: { baseMs: 1000 } });
    r.client.start(0);
    connectAt(r, 0, CONNACK_V5);
    r.feed(DISCONNECT_SHUTTING_DOWN, 60_000);
    expect(r.kinds(ClientEvent.TakenOver)).toEqual([]);
    expect(r.client.nextDeadline()).toBe(60_500);
  });

  it('MQTT 3.1.1: the third close within 2 s of CONNACK in a row is a takeover; a connection that lasted resets the count', () => {
    const r = rig({ clean: true, reconnect: { baseMs: 1000, capMs: 8000 } });
    r.client.start(0);
    let now = 0;
    const kick = (upMs: number) => {
      connectAt(r, now, CONNACK);
      now += upMs;
      r.client.transportClosed(now); // the broker closed the socket
      const wait = r.client.nextDeadline() - now;
      now = r.client.nextDeadline();
      return wait;
    };
    // Two kicks: ordinary full-jitter delays (0.5 × 1 s, 0.5 × 2 s).
    expect([kick(50), kick(50)]).toEqual([500, 1000]);
    // A connection that stayed up 10 s: not a kick, the count starts over.
    expect(kick(10_000)).toBe(2000);
    expect([kick(50), kick(50)]).toEqual([4000, 4000]);
    expect(r.kinds(ClientEvent.TakenOver)).toEqual([]);
    // Third kick in a row: the takeover window (300 s default × 0.75).
    expect(kick(50)).toBe(225_000);
    expect(r.kinds(ClientEvent.TakenOver).map((e) => [e.a, e.b])).toEqual([[0, 225_000]]);
    // The Disconnected event still comes first, with the reason of the close.
    const kinds = r.events.map((e) => e.kind);
    expect(kinds.lastIndexOf(ClientEvent.Disconnected)).toBe(kinds.length - 2);
  });

  it('closes made by this side (keepalive timeout, connect timeout) are not kicks', () => {
    const p = new ReconnectPolicy({ baseMs: 100, jitter: 'none' });
    for (let k = 0; k < 5; k++) {
      p.connected(k * 1000);
      p.nextDelay(k * 1000 + 10, Math.random, LossKind.Failed);
      expect(p.takenOver).toBe(false);
    }
    expect(p.kicks).toBe(0);
  });

  it('without autoReconnect a takeover is reported and the client stays idle', () => {
    const r = rig({ clean: true, protocolVersion: 5, autoReconnect: false });
    r.client.start(0);
    connectAt(r, 0, CONNACK_V5);
    r.feed(DISCONNECT_TAKEN_OVER, 10);
    expect(r.client.state).toBe(ConnState.Idle);
    expect(r.kinds(ClientEvent.TakenOver).map((e) => [e.a, e.b])).toEqual([[0x8e, 0]]);
  });

  it('the takeover window is capped and always at least half of it (equal jitter)', () => {
    const p = new ReconnectPolicy({ takeoverBaseMs: 60_000, takeoverCapMs: 240_000 });
    const got: number[] = [];
    for (const r of [0, 0.999, 0, 0.999, 0]) got.push(p.nextDelay(0, () => r, LossKind.TakenOver));
    expect(got).toEqual([30_000, 119_940, 120_000, 239_880, 120_000]);
  });
});

it('resets right after CONNACK (transportClosed with failed = true) are the network, not kicks', () => {
  const r = rig({ clean: true, reconnect: { baseMs: 1000, capMs: 8000 } });
  r.client.start(0);
  let now = 0;
  for (let k = 0; k < 5; k++) {
    connectAt(r, now, CONNACK);
    now += 50;
    r.client.transportClosed(now, true);
    now = r.client.nextDeadline();
  }
  expect(r.kinds(ClientEvent.TakenOver)).toEqual([]);
  expect(r.client.reconnectPolicy.kicks).toBe(0);
});
