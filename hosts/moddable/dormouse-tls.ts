// The module `dormouse/tls`: importing it once lets `new Client({tls: ...})`
// use Moddable's TLS for ECMA-419 sockets (`embedded:io/socket/tcp/tls`,
// examples/io/tcp/tlssocket over modules/crypt/tls_419.json). Included by
// manifest_dormouse_tls.json, which also maps Moddable's `ssl/cache` to
// tls-session-cache.ts: the client forgets the session on a TLS error and the
// wake helper keeps it in RTC memory (RtcLayout.tls) through deep sleep.
import TLS from 'embedded:io/socket/tcp/tls';
import cache from 'hosts/moddable/tls-session-cache';
import { platform } from './dormouse.js';

platform.TLS = TLS as unknown as NonNullable<typeof platform.TLS>;
platform.tlsCache = cache;
