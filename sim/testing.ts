// The testing kit: what the project's own tests use to run device logic
// across sleep cycles and faults, for users' tests too (`dormouse/testing`).
export { MemorySnapshotStore, PowerLossError } from './memory-store.js';
export { FaultProxy, type ProxyOptions, type Direction } from './proxy.js';
export { startAedes, startMosquitto, mosquittoAvailable, type AedesHandle, type MosquittoHandle } from './brokers.js';
