export type DeviceState = 'awake' | 'asleep' | 'offline' | 'reconnecting';
export interface DeviceView { id: string; state: DeviceState; inflight: number; queued: number; sent: number; acked: number; lost: number }
export interface Frame { scenario: string; simTimeMs: number; wallTimeMs: number; devices: DeviceView[] /* at most 2,000, sampled */; totals: { devices: number; awake: number; asleep: number; offline: number; reconnecting: number }; broker: { queued: number; delivered: number; connects: number; connectsPerSecond: number; memoryEstimateBytes: number }; counters: { accepted: number; acked: number; lost: number; duplicates: number; dropped: number } }
export interface Handshake { tMs: number; dir: 'c2s' | 's2c'; packet: string /* e.g. "PUBLISH q1 id 7 dup" */ }
export interface DeviceDetail { id: string; state: DeviceState; inflight: Array<{ token: number; packetId: number; qos: number; state: 'queued' | 'sent' | 'pubrel' }>; outbox: Array<{ token: number; qos: number; bytes: number; expiresInS: number | null }>; handshakes: Handshake[] }
export interface DashboardFeed { frame(f: Frame): void; setDetailProvider(p: (id: string) => DeviceDetail | null): void }
