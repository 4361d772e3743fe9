// A radio and battery model for the simulator's energy figures. It turns what
// crossed a link (MQTT bytes and TCP segments, counted by VirtualLink) and how
// long the device was awake into time on air, charge and battery life. Every
// assumption is listed by `radioAssumptions` and printed with the results.

import type { RadioSpec } from './scenario.js';
import type { LinkCounters } from './link.js';

export interface RadioTotals {
  /** IP packets sent and received, TCP handshakes and pure ACKs included. */
  packetsUp: number;
  packetsDown: number;
  /** Bytes on the air: MQTT bytes + headerBytes per packet. */
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

/** Add one device's link counters and time to the totals. */
export function addDevice(t: RadioTotals, c: LinkCounters, awakeMs: number, asleepMs: number, wakes: number, r: RadioSpec, bitrateBps: number): void {
  // Segments: every data segment is answered by a pure ACK; opening costs SYN,
  // SYN-ACK, ACK; closing costs FIN and ACK each way.
  const up = c.segmentsUp + c.segmentsDown + c.opens + c.established + 2 * c.closes;
  const down = c.segmentsDown + c.segmentsUp + c.established + 2 * c.closes;
  const bytesUp = c.bytesUp + up * r.headerBytes;
  const bytesDown = c.bytesDown + down * r.headerBytes;
  const txMs = (bytesUp * 8 * 1000) / bitrateBps;
  const rxMs = (bytesDown * 8 * 1000) / bitrateBps;
  const awake = awakeMs + wakes * r.wakeOverheadMs;
  t.packetsUp += up;
  t.packetsDown += down;
  t.bytesUp += bytesUp;
  t.bytesDown += bytesDown;
  t.txMs += txMs;
  t.rxMs += rxMs;
  t.awakeMs += awake;
  t.asleepMs += asleepMs;
  const idle = Math.max(0, awake - txMs - rxMs);
  t.chargeMaMs += txMs * r.txMa + rxMs * r.rxMa + idle * r.awakeMa + asleepMs * (r.sleepUa / 1000);
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

export function radioAssumptions(r: RadioSpec, bitrateBps: number): string[] {
  return [
    `radio: ${bitrateBps / 1000} kbit/s each way; every IP packet carries ${r.headerBytes} B of IPv4 + TCP headers (FACTS: at least 40 B; no TLS)`,
    'TCP: SYN, SYN-ACK, ACK to open; FIN + ACK each way to close; each data segment answered by one pure ACK (no piggy-backing)',
    `current: TX ${r.txMa} mA, RX ${r.rxMa} mA, awake otherwise ${r.awakeMa} mA, deep sleep ${r.sleepUa} µA (FACTS, ESP32 datasheet); ${r.volts} V`,
    `awake time = simulated wake-to-DISCONNECT time${r.wakeOverheadMs > 0 ? ` + ${r.wakeOverheadMs} ms boot and Wi-Fi association per wake` : '; boot and Wi-Fi association are not included (radio.wakeOverheadMs)'}`,
    `battery ${r.batteryMah} mAh, all of it usable, no self-discharge; life = capacity / average current over the run`,
  ];
}
