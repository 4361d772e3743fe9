// The module specifier `dormouse/wake` (manifest_dormouse.json).
export { everyWake, platform, Wake } from 'hosts/moddable/dormouse-wake';
export type { WakeOptions, WakeTrace } from 'hosts/moddable/dormouse-wake';
