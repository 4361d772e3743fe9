// The energy model of one wake, shared by bench/wake.ts (which measures the
// bytes and round trips of real wakes against mosquitto and turns them into
// radio-on time here) and the simulator's battery scenario (sim/radio.ts,
// which counts bytes on its virtual links and adds the Wi-Fi and TLS terms
// from here). One module, so the bench's figures and the simulator's battery
// life come from the same assumptions. Every number is a stated default
// that a caller may replace; `describeModel` prints them.
//
// Radio-on time of a wake =
//     Wi-Fi join (scan or known BSSID) + address (DHCP or static)
//   + round trips × rttMs                       (waiting for the other side)
//   + (bytes + headerBytes × packets) × 8 / phyBps each way   (airtime)
//   + TLS computation (key exchange and certificate check, or the short resumed one)
// The radio stays on through all of it; the charge is airtime at TX/RX
// current and the rest at the awake current; between wakes, deep sleep.

export interface WakeModel {
  /** Wi-Fi join scanning for the access point, ms (users report 3.9 s). */
  joinScanMs: number;
  /** Wi-Fi join with the BSSID (and channel) known from the last wake, ms (users report 1.2 s). */
  joinBssidMs: number;
  /** Getting an address by DHCP, ms (users report 1.6 s with DHCP against 0.7 s static: 0.9 s). */
  dhcpMs: number;
  /** Round-trip time to the broker, ms. */
  rttMs: number;
  /** PHY rate for airtime, bits/s. */
  phyBps: number;
  /** IPv4 + TCP header bytes per packet (FACTS: at least 40). */
  headerBytes: number;
  /** CPU time of a full TLS 1.2 handshake on the device (ECDHE + certificate chain check), ms. */
  tlsFullCpuMs: number;
  /** CPU time of a resumed handshake (key derivation, two Finished checks), ms. */
  tlsResumedCpuMs: number;
  txMa: number;
  rxMa: number;
  /** Current while awake with the radio on but not sending or receiving. */
  awakeMa: number;
  sleepUa: number;
  volts: number;
  batteryMah: number;
}

export const DEFAULT_WAKE_MODEL: Readonly<WakeModel> = Object.freeze({
  joinScanMs: 3900,
  joinBssidMs: 1200,
  dhcpMs: 900,
  rttMs: 60,
  // 802.11b's lowest rate, as the battery scenario's link: conservative.
  phyBps: 1_000_000,
  headerBytes: 40,
  // Chosen so a full handshake costs about 2 s and a resumed one under 0.4 s
  // on the radio, as users of ESP32 clients report; not measured here.
  tlsFullCpuMs: 1500,
  tlsResumedCpuMs: 100,
  txMa: 240,
  rxMa: 100,
  awakeMa: 150,
  sleepUa: 10,
  volts: 3.3,
  batteryMah: 2000,
});

export type TlsMode = 'none' | 'full' | 'resumed';

/**
 * What TLS 1.2 adds to one connection beyond its MQTT bytes (handshake, record
 * headers and MACs, close_notify), measured by bench/wake.ts against Debian's
 * mosquitto 2.0.11 with a P-256 certificate and Node 20's OpenSSL as the
 * client (a device's ClientHello is shorter: its cipher list is): the wake
 * with TLS minus the same wake in plain TCP. Data flights each way and the
 * round trips the client waits for. The simulator adds these per connection.
 */
export const TLS12_HANDSHAKE: Readonly<Record<'full' | 'resumed', Readonly<{ bytesUp: number; bytesDown: number; flightsUp: number; flightsDown: number; roundTrips: number }>>> = Object.freeze({
  full: Object.freeze({ bytesUp: 440, bytesDown: 1254, flightsUp: 2, flightsDown: 3, roundTrips: 2 }),
  resumed: Object.freeze({ bytesUp: 430, bytesDown: 230, flightsUp: 1, flightsDown: 2, roundTrips: 1 }),
});

/**
 * One DNS lookup of the broker's name (an A query and its answer over UDP),
 * measured by bench/wake.ts: what a wake without the address kept in RTC
 * (modules/wake/fast-connect.ts) adds. Query as Node's c-ares writes it for
 * `broker.example.net`; the answer in its shortest form.
 */
export const DNS_LOOKUP: Readonly<{ bytesUp: number; bytesDown: number; packetsUp: number; packetsDown: number; roundTrips: number }> = Object.freeze({
  bytesUp: 36,
  bytesDown: 52,
  packetsUp: 1,
  packetsDown: 1,
  roundTrips: 1,
});

/** What crossed the air in one wake (measured by the bench or counted by the simulator). */
export interface WakeTraffic {
  roundTrips: number;
  bytesUp: number;
  bytesDown: number;
  packetsUp: number;
  packetsDown: number;
  tls: TlsMode;
}

export interface WakeJoin {
  /** The BSSID was known (fast-connect hint). */
  bssidHint: boolean;
  /** A static address (or one kept from the last wake) instead of DHCP. */
  staticIp: boolean;
}

export interface WakeEnergy {
  joinMs: number;
  addressMs: number;
  latencyMs: number;
  txMs: number;
  rxMs: number;
  cpuMs: number;
  /** The radio is on this long. */
  radioOnMs: number;
  /** Charge of the wake, mA·ms. */
  chargeMaMs: number;
}

export function airtimeMs(m: WakeModel, bytes: number, packets: number): number {
  return ((bytes + packets * m.headerBytes) * 8 * 1000) / m.phyBps;
}

/** Join and address time of a wake; 0 when `join` is null (the link was already up). */
export function joinMs(m: WakeModel, join: WakeJoin | null): { joinMs: number; addressMs: number } {
  if (join === null) return { joinMs: 0, addressMs: 0 };
  return { joinMs: join.bssidHint ? m.joinBssidMs : m.joinScanMs, addressMs: join.staticIp ? 0 : m.dhcpMs };
}

export function tlsCpuMs(m: WakeModel, tls: TlsMode): number {
  return tls === 'full' ? m.tlsFullCpuMs : tls === 'resumed' ? m.tlsResumedCpuMs : 0;
}

/** Charge for a stretch of awake time of which txMs and rxMs are spent sending and receiving. */
export function awakeChargeMaMs(m: WakeModel, awakeMs: number, txMs: number, rxMs: number): number {
  return txMs * m.txMa + rxMs * m.rxMa + Math.max(0, awakeMs - txMs - rxMs) * m.awakeMa;
}

export function wakeEnergy(m: WakeModel, t: WakeTraffic, join: WakeJoin | null): WakeEnergy {
  const j = joinMs(m, join);
  const txMs = airtimeMs(m, t.bytesUp, t.packetsUp);
  const rxMs = airtimeMs(m, t.bytesDown, t.packetsDown);
  const latencyMs = t.roundTrips * m.rttMs;
  const cpuMs = tlsCpuMs(m, t.tls);
  const radioOnMs = j.joinMs + j.addressMs + latencyMs + txMs + rxMs + cpuMs;
  return { joinMs: j.joinMs, addressMs: j.addressMs, latencyMs, txMs, rxMs, cpuMs, radioOnMs, chargeMaMs: awakeChargeMaMs(m, radioOnMs, txMs, rxMs) };
}

/** Battery life, days, for a wake costing `chargeMaMs` every `everyS` seconds, deep sleep between. */
export function batteryLifeDays(m: WakeModel, chargeMaMs: number, awakeMs: number, everyS: number): number {
  const periodMs = everyS * 1000;
  const sleepMs = Math.max(0, periodMs - awakeMs);
  const avgMa = (chargeMaMs + sleepMs * (m.sleepUa / 1000)) / periodMs;
  return m.batteryMah / avgMa / 24;
}

export function describeModel(m: WakeModel): string[] {
  return [
    `Wi-Fi join: ${m.joinScanMs} ms scanning, ${m.joinBssidMs} ms with a known BSSID; DHCP adds ${m.dhcpMs} ms, a static address nothing (users' reports, issue 15)`,
    `round trip ${m.rttMs} ms; airtime at ${m.phyBps / 1e6} Mbit/s with ${m.headerBytes} B of IPv4 + TCP headers per packet`,
    `TLS computation on the device: ${m.tlsFullCpuMs} ms full handshake, ${m.tlsResumedCpuMs} ms resumed (assumed, so the totals match users' ~2 s vs <0.4 s)`,
    `current: TX ${m.txMa} mA, RX ${m.rxMa} mA, radio on otherwise ${m.awakeMa} mA, deep sleep ${m.sleepUa} µA (FACTS, ESP32 datasheet); ${m.volts} V, battery ${m.batteryMah} mAh`,
  ];
}
