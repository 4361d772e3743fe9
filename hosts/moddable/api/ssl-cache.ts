// The module specifier `ssl/cache` (manifest_dormouse_tls.json): the cache manager
// Moddable's TLS imports, replaced by ours so the session survives deep sleep.
// A re-export by full specifier (see api/dormouse.ts).
export { default } from 'hosts/moddable/tls-session-cache';
