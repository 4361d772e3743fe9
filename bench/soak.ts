// Fault soak against a real mosquitto: publisher processes killed at random,
// broker restarts, cuts, stalls and partitions at random handshake steps; then
// heal, drain, and count what was lost or duplicated. See bench/soak-run.ts.
//
//   npm run soak [-- --seed N --publishers K --messages N --rate R --minutes M
//                   --subscriber dormouse|mqttjs --subscriber-version 4|5 --json --keep
//                   --kill-mean-ms MS --broker-restarts N --partition-mean-ms MS --named-cut-mean-ms MS
//                   --no-proxy-faults --publisher-version 4|5 --max-inflight N --trace]
//   (a mean of 0 turns that fault off; --no-proxy-faults turns off the per-packet cuts and stalls;
//    --trace logs every packet: mosquitto log_type all and DIR/trace-*.log, see bench/soak-trace.ts)
//   npm run soak:quick        (a few thousand messages, under a minute)
//
// Exit status 1 if any accepted QoS 1/2 message was lost, any QoS 2 message
// was delivered twice, or a publisher crashed or never finished.

import { findMosquitto } from '../sim/brokers.js';
import { formatSoak, runSoak, type SoakOptions } from './soak-run.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const num = (name: string, fallback: number): number => {
  const v = arg(name);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) {
    console.error(`--${name} needs a number >= 0, got ${v}`);
    process.exit(2);
  }
  return n;
};

if (!findMosquitto()) {
  console.error('soak: mosquitto is not installed (apt-get install mosquitto)');
  process.exit(2);
}

const quick = process.argv.includes('--quick');
const seed = arg('seed') !== undefined ? Number(arg('seed')) >>> 0 : (Date.now() ^ (Math.random() * 0x100000000)) >>> 0;
const publishers = num('publishers', 4);
const total = num('messages', quick ? 4000 : 120_000);
const faultMinutes = num('minutes', quick ? 0.75 : 8);

const options: SoakOptions = {
  seed,
  publishers,
  messagesPerPublisher: Math.ceil(total / publishers),
  ratePerPublisher: num('rate', quick ? 150 : 80),
  faultSeconds: faultMinutes * 60,
  drainSeconds: quick ? 30 : 120,
  killMeanMs: num('kill-mean-ms', quick ? 1500 : 2500),
  brokerRestarts: num('broker-restarts', quick ? 2 : 6),
  partitionMeanMs: num('partition-mean-ms', quick ? 6000 : 20_000),
  namedCutMeanMs: num('named-cut-mean-ms', quick ? 700 : 1000),
  pubCutProbability: 0.0005,
  pubStallProbability: 0.00003,
  subCutProbability: 0.0002,
  subStallProbability: 0.00001,
  subscriberVersion: num('subscriber-version', 5) === 4 ? 4 : 5,
  subscriberClient: arg('subscriber') === 'mqttjs' ? 'mqttjs' : 'dormouse',
  log: (line) => console.log(line),
  progressMs: quick ? 5000 : 15_000,
  keepDir: process.argv.includes('--keep'),
  noProxyFaults: process.argv.includes('--no-proxy-faults'),
  publisherVersion: arg('publisher-version') === '4' ? 4 : arg('publisher-version') === '5' ? 5 : 'mixed',
  maxInflight: num('max-inflight', 32),
  trace: process.argv.includes('--trace'),
};

const result = await runSoak(options);
if (process.argv.includes('--json')) console.log(JSON.stringify(result, null, 2));
else console.log(formatSoak(result));
process.exitCode = result.ok ? 0 : 1;
