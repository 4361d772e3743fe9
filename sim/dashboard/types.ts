export type DeviceState = 'awake' | 'asleep' | 'offline' | 'reconnecting';
export interface DeviceView { id: string; state: DeviceState; inflight: number; queued: number; sent: number; acked: number; lost: number }
/**
 * CONNECTs the broker accepted in each whole second of sim time, from second
 * fromS on: the seconds completed since the previous frame (the last frame of
 * a run carries the rest). The same per-second counts the CLI's "peak
 * CONNECT/s" is the maximum of, so page and CLI agree.
 */
export interface ConnectSeconds { fromS: number; counts: number[] }
/** A fault's window in sim time, marked on the charts. */
export interface FaultMark { kind: 'outage' | 'broker-restart' | 'power-outage'; label: string; fromMs: number; toMs: number }
export interface Frame { scenario: string; simTimeMs: number; wallTimeMs: number; devices: DeviceView[] /* at most 2,000, sampled */; totals: { devices: number; awake: number; asleep: number; offline: number; reconnecting: number }; broker: { queued: number; delivered: number; connects: number; connectsPerSecond: number; memoryEstimateBytes: number; connectSeconds?: ConnectSeconds }; counters: { accepted: number; acked: number; lost: number; duplicates: number; dropped: number }; marks?: FaultMark[] }
export interface Handshake { tMs: number; dir: 'c2s' | 's2c'; packet: string /* e.g. "PUBLISH q1 id 7 dup" */ }
export interface DeviceDetail { id: string; state: DeviceState; inflight: Array<{ token: number; packetId: number; qos: number; state: 'queued' | 'sent' | 'pubrel' }>; outbox: Array<{ token: number; qos: number; bytes: number; expiresInS: number | null }>; handshakes: Handshake[] }
export interface DashboardFeed { frame(f: Frame): void; setDetailProvider(p: (id: string) => DeviceDetail | null): void }
