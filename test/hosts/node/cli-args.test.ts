import { describe, expect, it } from 'vitest';
import { ExitCode, parseCliArgs, usage, type CliCommand, type PubOptions, type SubOptions, type ParseOutcome } from '../../../hosts/node/cli-args.js';

function pub(...argv: string[]): PubOptions {
  const r = parseCliArgs('pub', argv);
  if (r.kind !== 'run') throw new Error(`expected run, got ${JSON.stringify(r)}`);
  return r.options as PubOptions;
}
function sub(...argv: string[]): SubOptions {
  const r = parseCliArgs('sub', argv);
  if (r.kind !== 'run') throw new Error(`expected run, got ${JSON.stringify(r)}`);
  return r.options as SubOptions;
}
function err(cmd: CliCommand, ...argv: string[]): string {
  const r: ParseOutcome = parseCliArgs(cmd, argv);
  if (r.kind !== 'error') throw new Error(`expected an error for ${argv.join(' ')}, got ${JSON.stringify(r)}`);
  expect(r.exitCode).toBe(1);
  expect(r.hint).toBe(`Use 'dormouse ${cmd} --help' to see usage.`);
  expect(r.message).not.toContain('\n');
  return r.message;
}

describe('dormouse pub arguments', () => {
  it('applies mosquitto_pub defaults', () => {
    const o = pub('-t', 'a/b', '-m', 'hi');
    expect(o).toMatchObject({
      command: 'pub', url: 'mqtt://localhost:1883', host: 'localhost', port: 1883, scheme: 'mqtt',
      topic: 'a/b', message: { kind: 'message', text: 'hi' }, qos: 0, retain: false, keepalive: 60,
      cleanSession: true, protocolVersion: 4, repeat: 1, repeatDelayMs: 0, debug: false, quiet: false,
      tls: { insecure: false, useOsCerts: false },
    });
    expect(o.clientId).toBeUndefined();
    expect(o.sessionExpiryInterval).toBeUndefined();
    expect(o.will).toBeUndefined();
  });

  it('reads every option in short and long form', () => {
    const o = pub('--host', 'broker', '--port', '1999', '--topic', 't', '--message', 'm', '--qos', '2', '--retain',
      '--id', 'dev1', '--keepalive', '30', '--disable-clean-session', '--username', 'u', '--pw', 'p', '--debug', '--quiet',
      '--repeat', '3', '--repeat-delay', '0.25', '--session-file', '/tmp/s', '--nodelay');
    expect(o).toMatchObject({
      host: 'broker', port: 1999, url: 'mqtt://broker:1999', topic: 't', qos: 2, retain: true, clientId: 'dev1',
      keepalive: 30, cleanSession: false, username: 'u', password: 'p', debug: true, quiet: true, repeat: 3,
      repeatDelayMs: 250, sessionFile: '/tmp/s',
    });
  });

  it('takes each message source, one at a time', () => {
    expect(pub('-t', 't', '-f', 'x.bin').message).toEqual({ kind: 'file', path: 'x.bin' });
    expect(pub('-t', 't', '-s').message).toEqual({ kind: 'stdin-file' });
    expect(pub('-t', 't', '-l').message).toEqual({ kind: 'stdin-line' });
    expect(pub('-t', 't', '-n').message).toEqual({ kind: 'null' });
    expect(pub('-t', 't', '-m', '').message).toEqual({ kind: 'message', text: '' });
    expect(pub('-t', 't', '-m', '-n').message).toEqual({ kind: 'message', text: '-n' }); // a value, not a flag
    for (const [a, b] of [['-m', '-f'], ['-n', '-s'], ['-l', '-m']]) {
      const argv = ['-t', 't', a!, ...(a === '-m' ? ['x'] : []), b!, ...(b === '-m' || b === '-f' ? ['y'] : [])];
      expect(err('pub', ...argv)).toBe('Error: Only one type of message can be sent at once.');
    }
  });

  it('needs a topic and a message, one topic, without wildcards', () => {
    expect(err('pub', '-m', 'x')).toBe('Error: Both topic and message must be supplied.');
    expect(err('pub', '-t', 'x')).toBe('Error: Both topic and message must be supplied.');
    expect(err('pub', '-t', 'a', '-t', 'b', '-m', 'x')).toBe('Error: Duplicate topic argument given.');
    expect(err('pub', '-t', 'a/+', '-m', 'x')).toBe("Error: Invalid publish topic 'a/+', does it contain '+' or '#'?");
    expect(err('pub', '-t', 'a/#', '-m', 'x')).toMatch(/Invalid publish topic/);
    expect(err('pub', '-t', '', '-m', 'x')).toMatch(/Invalid publish topic/);
  });

  it('rejects out-of-range numbers with mosquitto wording', () => {
    expect(err('pub', '-t', 't', '-m', 'x', '-q', '3')).toBe('Error: Invalid QoS given: 3');
    expect(err('pub', '-t', 't', '-m', 'x', '-q', 'one')).toBe('Error: Invalid QoS given: one');
    expect(err('pub', '-t', 't', '-m', 'x', '-p', '0')).toBe('Error: Invalid port given: 0');
    expect(err('pub', '-t', 't', '-m', 'x', '-p', '65536')).toBe('Error: Invalid port given: 65536');
    expect(err('pub', '-t', 't', '-m', 'x', '-p', '12ab')).toBe('Error: Invalid port given: 12ab');
    expect(err('pub', '-t', 't', '-m', 'x', '-k', '4')).toBe('Error: Invalid keepalive given, it must be between 5 and 65535 inclusive.');
    expect(err('pub', '-t', 't', '-m', 'x', '-k', '65536')).toMatch(/keepalive/);
    expect(pub('-t', 't', '-m', 'x', '-k', '5').keepalive).toBe(5);
    expect(err('pub', '-t', 't', '-m', 'x', '--repeat', '0')).toBe('Error: --repeat argument must be >0.');
    expect(err('pub', '-t', 't', '-m', 'x', '--repeat-delay', '-1')).toBe('Error: --repeat-delay argument must be >=0.0.');
    expect(err('pub', '-t', 't', '-l', '--repeat', '2')).toMatch(/--repeat can only be used/);
  });

  it('says which value is missing after a flag', () => {
    expect(err('pub', '-t')).toBe('Error: -t argument given but no topic specified.');
    expect(err('pub', '-t', 't', '-m')).toBe('Error: -m argument given but no message specified.');
    expect(err('pub', '-t', 't', '-m', 'x', '-h')).toBe('Error: -h argument given but no host specified.');
    expect(err('pub', '-t', 't', '-m', 'x', '--will-qos')).toBe('Error: --will-qos argument given but no will QoS specified.');
  });

  it('rejects unknown options, sub-only options and unsupported mosquitto options distinctly', () => {
    expect(err('pub', '-t', 't', '-m', 'x', '--frobnicate')).toBe("Error: Unknown option '--frobnicate'.");
    expect(err('pub', '-t', 't', '-m', 'x', '-v')).toBe("Error: Unknown option '-v'.");
    expect(err('pub', '-t', 't', '-m', 'x', '-C', '1')).toBe("Error: Unknown option '-C'.");
    expect(err('pub', '-t', 't', '-m', 'x', '--proxy', 'socks5h://x')).toBe("Error: Option '--proxy' is not supported by dormouse pub.");
  });

  it('chooses the protocol version: 311 default, 5 by name or implied by -D', () => {
    for (const v of ['mqttv311', '311']) expect(pub('-t', 't', '-m', 'x', '-V', v).protocolVersion).toBe(4);
    for (const v of ['mqttv5', '5']) expect(pub('-t', 't', '-m', 'x', '-V', v).protocolVersion).toBe(5);
    expect(err('pub', '-t', 't', '-m', 'x', '-V', 'mqttv31')).toMatch(/not supported by dormouse/);
    expect(err('pub', '-t', 't', '-m', 'x', '-V', '6')).toBe('Error: Invalid protocol version argument given.');
    const o = pub('-t', 't', '-m', 'x', '-D', 'publish', 'message-expiry-interval', '60');
    expect(o.protocolVersion).toBe(5);
    expect(o.properties).toEqual([{ command: 'publish', name: 'message-expiry-interval', value: 60 }]);
    expect(err('pub', '-V', '311', '-t', 't', '-m', 'x', '-D', 'publish', 'content-type', 'a')).toBe('Error: -D argument given, but MQTT version is not v5.0.');
  });

  it('parses -D properties by type and checks where each is allowed', () => {
    const o = pub('-V', '5', '-t', 't', '-m', 'x',
      '-D', 'publish', 'user-property', 'k', 'v',
      '-D', 'publish', 'content-type', 'text/plain',
      '-D', 'connect', 'receive-maximum', '10',
      '-D', 'publish', 'correlation-data', 'abc',
      '-D', 'disconnect', 'reason-string', 'bye');
    expect(o.properties).toEqual([
      { command: 'publish', name: 'user-property', value: ['k', 'v'] },
      { command: 'publish', name: 'content-type', value: 'text/plain' },
      { command: 'connect', name: 'receive-maximum', value: 10 },
      { command: 'publish', name: 'correlation-data', value: 'abc' },
      { command: 'disconnect', name: 'reason-string', value: 'bye' },
    ]);
    expect(err('pub', '-t', 't', '-m', 'x', '-D', 'connect', 'topic-alias', '1')).toBe('Error: topic-alias property not allowed for connect in --property argument.');
    expect(err('pub', '-t', 't', '-m', 'x', '-D', 'conect', 'topic-alias', '1')).toMatch(/Invalid command 'conect'/);
    expect(err('pub', '-t', 't', '-m', 'x', '-D', 'publish', 'no-such', '1')).toMatch(/Invalid property name 'no-such'/);
    expect(err('pub', '-t', 't', '-m', 'x', '-D', 'connect', 'receive-maximum', '70000')).toMatch(/Invalid value '70000' for receive-maximum/);
    expect(err('pub', '-t', 't', '-m', 'x', '-D', 'publish', 'payload-format-indicator', '256')).toMatch(/Invalid value/);
    expect(err('pub', '-t', 't', '-m', 'x', '-D', 'publish', 'user-property', 'k')).toMatch(/user-property needs a name and a value/);
    expect(err('pub', '-t', 't', '-m', 'x', '-D', 'publish')).toMatch(/not enough values/);
    expect(err('pub', '-t', 't', '-m', 'x', '-D', 'will', 'content-type', 'a')).toMatch(/no will topic/);
    expect(err('pub', '-t', 't', '-m', 'x', '-D', 'subscribe', 'subscription-identifier', '1')).toMatch(/not used by dormouse pub/);
  });

  it('sets the MQTT 5 session expiry from -x, -c or neither', () => {
    expect(pub('-V', '5', '-t', 't', '-m', 'x').sessionExpiryInterval).toBe(0);
    expect(pub('-V', '5', '-i', 'd', '-c', '-t', 't', '-m', 'x').sessionExpiryInterval).toBe(0xffffffff);
    expect(pub('-V', '5', '-x', '3600', '-t', 't', '-m', 'x').sessionExpiryInterval).toBe(3600);
    expect(pub('-V', '5', '-x', '-1', '-t', 't', '-m', 'x').sessionExpiryInterval).toBe(0xffffffff);
    expect(pub('-V', '5', '-x', '∞', '-t', 't', '-m', 'x').sessionExpiryInterval).toBe(0xffffffff);
    expect(pub('-V', '5', '-x', '0x10', '-t', 't', '-m', 'x').sessionExpiryInterval).toBe(16);
    expect(err('pub', '-V', '5', '-x', 'soon', '-t', 't', '-m', 'x')).toBe('Error: session-expiry-interval not a number.');
    expect(err('pub', '-V', '5', '-x', '4294967296', '-t', 't', '-m', 'x')).toBe('Error: session-expiry-interval out of range.');
    expect(err('pub', '-V', '5', '-x', '-2', '-t', 't', '-m', 'x')).toBe('Error: session-expiry-interval out of range.');
    expect(err('pub', '-x', '60', '-t', 't', '-m', 'x')).toBe('Error: -x argument given, but MQTT version is not v5.0.');
  });

  it('checks client id rules: -i xor -I, -c needs an id, password needs user in 3.1.1', () => {
    expect(pub('-I', 'sensor-', '-t', 't', '-m', 'x').clientIdPrefix).toBe('sensor-');
    expect(err('pub', '-i', 'a', '-I', 'b', '-t', 't', '-m', 'x')).toBe('Error: -i and -I argument cannot be used together.');
    expect(err('pub', '-I', 'b', '-i', 'a', '-t', 't', '-m', 'x')).toBe('Error: -i and -I argument cannot be used together.');
    expect(err('pub', '-c', '-t', 't', '-m', 'x')).toBe('Error: You must provide a client id if you are using the -c option.');
    expect(err('pub', '-c', '-i', '', '-t', 't', '-m', 'x')).toMatch(/must provide a client id/);
    expect(pub('-c', '-I', 'p', '-t', 't', '-m', 'x').cleanSession).toBe(false);
    expect(err('pub', '-P', 'secret', '-t', 't', '-m', 'x')).toMatch(/-P given without -u/);
    expect(pub('-V', '5', '-P', 'secret', '-t', 't', '-m', 'x').password).toBe('secret');
  });

  it('builds the will and refuses will parts without a will topic', () => {
    expect(pub('-t', 't', '-m', 'x', '--will-topic', 'dead/dev1').will).toEqual({ topic: 'dead/dev1', payload: '', qos: 0, retain: false });
    expect(pub('-t', 't', '-m', 'x', '--will-topic', 'w', '--will-payload', 'gone', '--will-qos', '1', '--will-retain').will)
      .toEqual({ topic: 'w', payload: 'gone', qos: 1, retain: true });
    expect(err('pub', '-t', 't', '-m', 'x', '--will-payload', 'gone')).toMatch(/no will topic given/);
    expect(err('pub', '-t', 't', '-m', 'x', '--will-retain')).toMatch(/no will topic given/);
    expect(err('pub', '-t', 't', '-m', 'x', '--will-topic', 'w/#')).toBe("Error: Invalid will topic 'w/#', does it contain '+' or '#'?");
    expect(err('pub', '-t', 't', '-m', 'x', '--will-topic', 'w', '--will-qos', '3')).toBe('Error: Invalid will QoS 3.');
  });

  it('turns TLS on with a CA (port 8883) and keeps --insecure and client certs', () => {
    const o = pub('-t', 't', '-m', 'x', '--cafile', 'ca.crt', '--cert', 'c.crt', '--key', 'c.key', '--insecure');
    expect(o).toMatchObject({ scheme: 'mqtts', port: 8883, url: 'mqtts://localhost:8883', tls: { cafile: 'ca.crt', certfile: 'c.crt', keyfile: 'c.key', insecure: true } });
    expect(pub('-t', 't', '-m', 'x', '--capath', '/etc/ssl/certs', '-p', '8884').url).toBe('mqtts://localhost:8884');
    expect(pub('-t', 't', '-m', 'x', '--tls-use-os-certs', '-h', 'b.example').url).toBe('mqtts://b.example:8883');
    // --insecure alone does not turn TLS on (as mosquitto).
    expect(pub('-t', 't', '-m', 'x', '--insecure').scheme).toBe('mqtt');
    expect(err('pub', '-t', 't', '-m', 'x', '--cert', 'c.crt')).toBe('Error: Both certfile and keyfile must be provided if one of them is set.');
    expect(err('pub', '-t', 't', '-m', 'x', '--key', 'c.key')).toMatch(/Both certfile and keyfile/);
  });

  it('uses WebSockets with --ws (path /mqtt) and brackets IPv6 hosts', () => {
    expect(pub('-t', 't', '-m', 'x', '--ws', '-p', '9001').url).toBe('ws://localhost:9001/mqtt');
    expect(pub('-t', 't', '-m', 'x', '--ws', '--cafile', 'ca').url).toBe('wss://localhost:8883/mqtt');
    expect(pub('-t', 't', '-m', 'x', '-h', '::1').url).toBe('mqtt://[::1]:1883');
  });

  it('reads -L URLs with credentials, port and topic', () => {
    expect(pub('-L', 'mqtt://user:pa:ss@broker:1884/a/b', '-m', 'x')).toMatchObject({
      url: 'mqtt://broker:1884', username: 'user', password: 'pa:ss', topic: 'a/b',
    });
    expect(pub('-L', 'mqtts://broker/t', '-m', 'x')).toMatchObject({ url: 'mqtts://broker:8883', tls: { useOsCerts: true } });
    expect(pub('-L', 'ws://broker/t', '-m', 'x').url).toBe('ws://broker:1883/mqtt');
    expect(pub('-L', 'mqtt://[::1]:1999/t', '-m', 'x').url).toBe('mqtt://[::1]:1999');
    expect(pub('-L', 'mqtt://u@h/t', '-m', 'x')).toMatchObject({ username: 'u', password: undefined });
    expect(err('pub', '-L', 'http://h/t', '-m', 'x')).toBe('Error: Unsupported URL scheme.');
    expect(err('pub', '-L', 'mqtt://h', '-m', 'x')).toBe('Error: Invalid URL for -L argument specified - topic missing.');
    expect(err('pub', '-L', 'mqtt://h:99999/t', '-m', 'x')).toBe('Error: Invalid port given: 99999');
    expect(err('pub', '-L', 'mqtt://h/t', '-t', 'u', '-m', 'x')).toBe('Error: Duplicate topic argument given.');
  });

  it('answers --help and --version with text and exit code 1, as mosquitto_pub does', () => {
    const h = parseCliArgs('pub', ['-t', 't', '--help', '--bogus']);
    expect(h).toEqual({ kind: 'info', text: usage('pub'), exitCode: ExitCode.Usage });
    expect(usage('pub')).toMatch(/^dormouse pub is/);
    expect(usage('pub')).toContain('--session-file');
    const v = parseCliArgs('pub', ['--version']);
    expect(v.kind).toBe('info');
    expect(v.kind === 'info' && v.text).toMatch(/dormouse pub version \d+\.\d+\.\d+/);
  });
});

describe('dormouse sub arguments', () => {
  it('applies mosquitto_sub defaults and takes several -t filters with wildcards', () => {
    const o = sub('-t', 'a/+/c', '-t', '#', '-t', 'x/#');
    expect(o).toMatchObject({
      command: 'sub', topics: ['a/+/c', '#', 'x/#'], qos: 0, verbose: false, noEol: false, noRetained: false,
      filterOut: [], unsubscribe: [], exitAfterSubscribe: false, retainedOnly: false, removeRetained: false,
      url: 'mqtt://localhost:1883', protocolVersion: 4,
    });
    expect(o.count).toBeUndefined();
    expect(o.timeoutSec).toBeUndefined();
  });

  it('reads the sub-only options', () => {
    const o = sub('-t', 's/#', '-T', 's/noise', '-T', 's/+/debug', '-U', 'old/#', '-q', '1', '-C', '5', '-W', '10',
      '-v', '-N', '-R', '-E', '--remove-retained', '--session-file', 'state/sub', '-i', 'listener', '-c');
    expect(o).toMatchObject({
      filterOut: ['s/noise', 's/+/debug'], unsubscribe: ['old/#'], qos: 1, count: 5, timeoutSec: 10, verbose: true,
      noEol: true, noRetained: true, exitAfterSubscribe: true, removeRetained: true, sessionFile: 'state/sub',
      clientId: 'listener', cleanSession: false,
    });
    expect(sub('-t', 'x', '--retained-only').retainedOnly).toBe(true);
  });

  it('validates filters [MQTT-4.7.1-2] [MQTT-4.7.1-3]', () => {
    for (const bad of ['a/#/b', 'a#', 'a/b+', '+a', '']) {
      expect(err('sub', '-t', bad)).toBe(`Error: Invalid subscription topic '${bad}', are all '+' and '#' wildcards correct?`);
    }
    expect(err('sub', '-t', 'a', '-T', 'a/#/b')).toBe("Error: Invalid filter topic 'a/#/b', are all '+' and '#' wildcards correct?");
    expect(err('sub', '-U', 'a+')).toBe("Error: Invalid unsubscribe topic 'a+', are all '+' and '#' wildcards correct?");
    expect(sub('-t', '+').topics).toEqual(['+']);
    expect(sub('-t', '/').topics).toEqual(['/']);
  });

  it('needs -t or -U, and checks -C, -W and conflicting flags', () => {
    expect(err('sub')).toBe('Error: You must specify a topic to subscribe to.');
    expect(sub('-U', 'a/b').unsubscribe).toEqual(['a/b']);
    expect(err('sub', '-t', 'a', '-C', '0')).toBe('Error: Invalid message count "0".');
    expect(err('sub', '-t', 'a', '-W', '0')).toBe('Error: Invalid timeout "0".');
    expect(err('sub', '-t', 'a', '-W')).toBe('Error: -W argument given but no timeout specified.');
    expect(err('sub', '-t', 'a', '-R', '--retained-only')).toMatch(/cannot be used together/);
  });

  it('rejects pub-only options and unsupported sub formatting options', () => {
    expect(err('sub', '-t', 'a', '-m', 'x')).toBe("Error: Unknown option '-m'.");
    expect(err('sub', '-t', 'a', '-r')).toBe("Error: Unknown option '-r'.");
    expect(err('sub', '-t', 'a', '--repeat', '2')).toBe("Error: Unknown option '--repeat'.");
    expect(err('sub', '-t', 'a', '-F', '%t')).toBe("Error: Option '-F' is not supported by dormouse sub.");
    expect(err('sub', '-t', 'a', '--pretty')).toMatch(/not supported/);
  });

  it('takes -L with a wildcard topic (# is a wildcard there, not a URL fragment) and more -t', () => {
    const o = sub('-L', 'mqtt://h:1999/sensors/#', '-t', 'alerts/+');
    expect(o).toMatchObject({ url: 'mqtt://h:1999', topics: ['sensors/#', 'alerts/+'] });
  });

  it('subscription properties are allowed, publish ones are not', () => {
    expect(sub('-t', 'a', '-D', 'subscribe', 'subscription-identifier', '7').properties)
      .toEqual([{ command: 'subscribe', name: 'subscription-identifier', value: 7 }]);
    expect(err('sub', '-t', 'a', '-D', 'subscribe', 'subscription-identifier', '0')).toMatch(/Invalid value '0'/);
    expect(err('sub', '-t', 'a', '-D', 'publish', 'content-type', 'x')).toMatch(/not used by dormouse sub/);
  });

  it('--help shows the sub usage', () => {
    const h = parseCliArgs('sub', ['--help']);
    expect(h.kind === 'info' && h.text).toMatch(/^dormouse sub is/);
    expect(usage('sub')).toContain('-W : exit with code 27');
  });
});

describe('dormouse sub --guard-replays', () => {
  it('turns the replay guard on (off by default); pub does not take it', () => {
    expect(sub('-t', 'a').guardReplays).toBe(false);
    expect(sub('-t', 'a', '--guard-replays').guardReplays).toBe(true);
    expect(usage('sub')).toContain('--guard-replays');
    expect(parseCliArgs('pub', ['-t', 'a', '-m', 'x', '--guard-replays']).kind).toBe('error');
  });
});
