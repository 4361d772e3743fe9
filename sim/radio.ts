// A radio and battery model for the simulator's energy figures. It turns what
// crossed a link (MQTT bytes and TCP segments, counted by VirtualLink) and how
// long the device was awake into time on air, charge and battery life. Every
// assumption is listed by `radioAssumptions` and printed with the results.
// Airtime, charge, the Wi-Fi join and the TLS terms come from the wake model
// bench/wake.ts uses too (modules/wake/energy.ts): one model for both.

import type { RadioSpec } from './scenario.js';
import type { LinkCounters } from './link.js';
import { DEFAULT_WAKE_MODEL, DNS_LOOKUP, TLS12_HANDSHAKE, airtimeMs, awakeChargeMaMs, describeModel, joinMs, tlsCpuMs, type WakeModel } from '../modules/wake/energy.js';

export interface RadioTotals {
  /** IP packets sent and received, TCP handshakes and pure ACKs included. */
  packetsUp: number;
  packetsDown: number;
  /** Bytes on the air: MQTT (and TLS) bytes + headerBytes per packet. */
  bytesUp: number;
  bytesDown: number;
  txMs: number;
  rxMs: number;
  awakeMs: number;
  asleepMs: number;
  /** Charge drawn, mA·ms. */
  chargeMaMs: number;
}

export function emptyTotals(): RadioTotals {
  return { packetsUp: 0, packetsDown: 0, bytesUp: 0, bytesDown: 0, txMs: 0, rxMs: 0, awakeMs: 0, asleepMs: 0, chargeMaMs: 0 };
}

/** The shared wake model with the scenario's radio and link figures. */
export function wakeModel(r: RadioSpec, bitrateBps: number, latencyMs: number): WakeModel {
  return {
    ...DEFAULT_WAKE_MODEL,
    phyBps: bitrateBps,
    headerBytes: r.headerBytes,
    rttMs: 2 * latencyMs,
    txMa: r.txMa,
    rxMa: r.rxMa,
    awakeMa: r.awakeMa,
    sleepUa: r.sleepUa,
    volts: r.volts,
    batteryMah: r.batteryMah,
  };
}

/** Add one device's link counters and time to the totals. */
export function addDevice(t: RadioTotals, c: LinkCounters, awakeMs: number, asleepMs: number, wakes: number, r: RadioSpec, bitrateBps: number, latencyMs = 0): void {
  const m = wakeModel(r, bitrateBps, latencyMs);
  // Segments: every data segment is answered by a pure ACK; opening costs SYN,
  // SYN-ACK, ACK; closing costs FIN and ACK each way.
  let up = c.segmentsUp + c.segmentsDown + c.opens + c.established + 2 * c.closes;
  let down = c.segmentsDown + c.segmentsUp + c.established + 2 * c.closes;
  let bytesUp = c.bytesUp;
  let bytesDown = c.bytesDown;
  // TLS: each established connection carries a handshake (measured against
  // mosquitto by bench/wake.ts), its round trips and its computation.
  let extraAwake = wakes * r.wakeOverheadMs;
  if (r.tls !== 'none') {
    const h = TLS12_HANDSHAKE[r.tls];
    bytesUp += c.established * h.bytesUp;
    bytesDown += c.established * h.bytesDown;
    up += c.established * h.flightsUp * 2; // each flight answered by a pure ACK
    down += c.established * h.flightsDown * 2;
    extraAwake += c.established * (h.roundTrips * m.rttMs + tlsCpuMs(m, r.tls));
  }
  if (r.wifi !== 'none') {
    const j = joinMs(m, { bssidHint: r.wifi === 'bssid+static', staticIp: r.wifi === 'bssid+static' });
    extraAwake += wakes * (j.joinMs + j.addressMs);
    if (r.wifi === 'scan+dhcp') {
      // No fast-connect hints (a cold wake): the broker's name is looked up too, every wake.
      bytesUp += wakes * DNS_LOOKUP.bytesUp;
      bytesDown += wakes * DNS_LOOKUP.bytesDown;
      up += wakes * DNS_LOOKUP.packetsUp;
      down += wakes * DNS_LOOKUP.packetsDown;
      extraAwake += wakes * DNS_LOOKUP.roundTrips * m.rttMs;
    }
  }
  bytesUp += up * r.headerBytes;
  bytesDown += down * r.headerBytes;
  const txMs = airtimeMs(m, bytesUp, 0);
  const rxMs = airtimeMs(m, bytesDown, 0);
  const awake = awakeMs + extraAwake;
  t.packetsUp += up;
  t.packetsDown += down;
  t.bytesUp += bytesUp;
  t.bytesDown += bytesDown;
  t.txMs += txMs;
  t.rxMs += rxMs;
  t.awakeMs += awake;
  t.asleepMs += asleepMs;
  t.chargeMaMs += awakeChargeMaMs(m, awake, txMs, rxMs) + asleepMs * (r.sleepUa / 1000);
}

export interface EnergyReport {
  deliveredMessages: number;
  perMessage: { packets: number; bytes: number; airtimeMs: number; awakeMs: number; chargeUaH: number; energyMj: number };
  averageCurrentUa: number;
  batteryLifeDays: number;
  totals: RadioTotals;
}

export function energyReport(t: RadioTotals, delivered: number, devices: number, r: RadioSpec): EnergyReport {
  const per = (x: number) => (delivered > 0 ? x / delivered : 0);
  const chargeMaH = t.chargeMaMs / 3_600_000;
  const totalMs = t.awakeMs + t.asleepMs;
  const avgMa = totalMs > 0 ? t.chargeMaMs / totalMs : 0; // per device, averaged over the fleet
  return {
    deliveredMessages: delivered,
    perMessage: {
      packets: per(t.packetsUp + t.packetsDown),
      bytes: per(t.bytesUp + t.bytesDown),
      airtimeMs: per(t.txMs + t.rxMs),
      awakeMs: per(t.awakeMs),
      chargeUaH: per(chargeMaH * 1000),
      energyMj: per(chargeMaH * 3.6 * r.volts * 1000),
    },
    averageCurrentUa: avgMa * 1000,
    batteryLifeDays: avgMa > 0 ? r.batteryMah / avgMa / 24 : Infinity,
    totals: t,
  };
  void devices;
}

export function radioAssumptions(r: RadioSpec, bitrateBps: number, latencyMs = 0): string[] {
  const out = [
    `radio: ${bitrateBps / 1000} kbit/s each way; every IP packet carries ${r.headerBytes} B of IPv4 + TCP headers (FACTS: at least 40)`,
    'TCP: SYN, SYN-ACK, ACK to open; FIN + ACK each way to close; each data segment answered by one pure ACK (no piggy-backing)',
    `current: TX ${r.txMa} mA, RX ${r.rxMa} mA, awake otherwise ${r.awakeMa} mA, deep sleep ${r.sleepUa} µA (FACTS, ESP32 datasheet); ${r.volts} V`,
    `awake time = simulated wake-to-DISCONNECT time${r.wakeOverheadMs > 0 ? ` + ${r.wakeOverheadMs} ms boot per wake` : ''}` +
      (r.wifi === 'none'
        ? '; the Wi-Fi join is not included (radio.wifi)'
        : ` + the Wi-Fi join (${r.wifi}) per wake` +
          (r.wifi === 'scan+dhcp' ? ` and a DNS lookup of the broker (no address kept: ${DNS_LOOKUP.bytesUp} B up, ${DNS_LOOKUP.bytesDown} B down, one round trip, bench/wake.ts)` : '')) +
      (r.tls === 'none' ? '; no TLS' : ` + a TLS 1.2 ${r.tls} handshake per connection (bytes from bench/wake.ts against mosquitto, its round trips and computation)`),
    `battery ${r.batteryMah} mAh, all of it usable, no self-discharge; life = capacity / average current over the run`,
  ];
  // Variants may set radio.wifi and radio.tls: the terms they add come from the shared wake model.
  out.push(...describeModel(wakeModel(r, bitrateBps, latencyMs)).slice(0, 3).map((l) => `with radio.wifi / radio.tls, from the wake model (modules/wake/energy.ts): ${l}`));
  return out;
}
