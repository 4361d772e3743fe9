// The client core's public surface.
export * from './client.js';
export * from './ports.js';
export * from './session-state.js';
export * from './snapshot.js';
export * from './reconnect.js';
export { crc32 } from './crc32.js';
export * from './wake-budget.js';
