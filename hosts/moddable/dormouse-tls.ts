// The module `dormouse/tls`: importing it once lets `new Client({tls: ...})`
// use Moddable's TLS for ECMA-419 sockets (`embedded:io/socket/tcp/tls`,
// examples/io/tcp/tlssocket over modules/crypt/tls_419.json). Included by
// manifest_dormouse_tls.json.
import TLS from 'embedded:io/socket/tcp/tls';
import { platform } from './dormouse.js';

platform.TLS = TLS as unknown as NonNullable<typeof platform.TLS>;
