// The module specifier `dormouse` (manifest_dormouse.json). A re-export by
// full specifier: XS resolves a relative import against the importing
// module's specifier, so the bound client keeps its home in hosts/moddable/.
export { Client, platform } from 'hosts/moddable/dormouse';
export { default } from 'hosts/moddable/dormouse';
export type { ClientOptions, PublishFlags } from 'hosts/moddable/dormouse';
