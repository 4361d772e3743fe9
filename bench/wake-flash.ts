// Flash written per wake by the Moddable host's session stores, and the NVS
// lifetime that implies.
//   node --import tsx bench/wake-flash.ts [--json] [--wakes N]
//
// Each store runs the same series of sensor wakes (hosts/moddable client and
// wake helper in the test ModelWorld: Wi-Fi, broker model, virtual clock),
// one QoS 1 reading of ~30 bytes a wake, and the flash model counts what NVS
// programs (test/hosts/moddable/fakes.ts FakeNvs, ESP-IDF NVS format v2:
// 32-byte entries; an integer is one entry, a blob a header entry + its data
// entries + a blob index entry; erasing an item rewrites one bitmap word).
//
// Stores compared (measured in the same run):
//   flash log       the default where a "dormouse" partition exists (flash-store.ts): RTC + every
//                   snapshot appended to a raw flash partition as a delta (16 KiB, two 8 KiB areas
//                   used in turn); the bytes are those handed to the partition's write(), counted
//                   by FakeFlash, which refuses a write that would set a bit (NOR flash)
//   flash log QoS 2 the same with QoS 2 readings
//   journal         DurableStore: RTC + an NVS journal, base rewritten every 24 entries (no partition)
//   journal QoS 2   the same with QoS 2 readings (each snapshot written through to NVS)
//   write-through   every snapshot to NVS (PreferredStore nvsEvery 0): nothing lost, the old durable option
//   mirror at sleep PreferredStore nvsEvery 1, the old default: loses the wake's reading at a cut
//
// Lifetime model: NVS writes its pages as a log and erases a 4 KiB page only
// when it is full and garbage-collected, so wear spreads over the partition:
// erases per page ≈ bytes written ÷ partition bytes. Lifetime (wakes) =
// 100,000 erase cycles × 24 KiB (Moddable's default `nvs` partition) ÷ bytes
// per wake; the page kept free for garbage collection and relocation copies
// are ignored (both shorten it by a small factor). For the flash log the wear
// is counted, not modelled: each of the partition's blocks is erased once per
// two area fills, so lifetime (wakes) = 100,000 × blocks ÷ blocks erased per wake.
import { ModelWorld } from '../test/hosts/moddable/model-world.js';
import { sensorWake } from '../test/hosts/moddable/sensor-wake.js';
import { RtcSnapshotStore, NvsSnapshotStore, PreferredStore } from '../hosts/moddable/stores.js';
import { RtcLayout, rtcRegion } from '../hosts/moddable/rtc-layout.js';
import type { ClientOptions } from '../hosts/moddable/client.js';

const CYCLES = 100_000;
const PARTITION = 24 * 1024;
const json = process.argv.includes('--json');
const wakesArg = process.argv.indexOf('--wakes');
const WAKES = wakesArg > 0 ? Number(process.argv[wakesArg + 1]) : 480;

const FLASH_PARTITION = 16 * 1024;
const FLASH_BLOCK = 4096;

interface Row {
  store: string;
  bytesPerWake: number;
  writesPerWake: number;
  /** Raw flash: blocks erased per wake (-1 for NVS, whose erases are modelled from bytes). */
  erasesPerWake: number;
  delivered: number;
  /** Raw flash: the median wake's bytes and writes, and the wakes that compacted (erased an area) with their median bytes. */
  split?: { medianBytes: number; medianWrites: number; compactions: number; compactionBytes: number };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

function series(name: string, qos: 1 | 2, store: (w: ModelWorld) => Partial<ClientOptions>, checkpoint?: (w: ModelWorld) => void, flash = false): Row {
  const world = new ModelWorld(11);
  if (flash) world.withFlash(FLASH_PARTITION, FLASH_BLOCK);
  const accepted: string[] = [];
  const steady = { bytes: [] as number[], writes: [] as number[] };
  const compacting: number[] = [];
  for (let n = 0; n < WAKES; n++) {
    const before = flash ? { b: world.flash.written, w: world.flash.writes, e: world.flash.erased } : null;
    const t = sensorWake(world, `{"n":${n},"t":${world.now}}`, qos, accepted, {}, store(world));
    if (t === 'cut') throw new Error('no cuts in the benchmark');
    checkpoint?.(world);
    if (before) {
      const b = world.flash.written - before.b;
      if (world.flash.erased > before.e) compacting.push(b);
      else { steady.bytes.push(b); steady.writes.push(world.flash.writes - before.w); }
    }
  }
  if (world.delivered.length < accepted.length) throw new Error(`${name}: ${accepted.length - world.delivered.length} readings not delivered`);
  if (flash) {
    if (world.nvs.sets !== 0) throw new Error(`${name}: the flash log wrote NVS`);
    const split = { medianBytes: median(steady.bytes), medianWrites: median(steady.writes), compactions: compacting.length, compactionBytes: compacting.length > 0 ? median(compacting) : 0 };
    return { store: name, bytesPerWake: world.flash.written / WAKES, writesPerWake: world.flash.writes / WAKES, erasesPerWake: world.flash.erased / WAKES, delivered: world.delivered.length, split };
  }
  return { store: name, bytesPerWake: world.nvs.bytes / WAKES, writesPerWake: (world.nvs.sets + world.nvs.deletes) / WAKES, erasesPerWake: -1, delivered: world.delivered.length };
}

/** The old PreferredStore over the same RTC range and NVS; its checkpoint runs once a wake, as main.ts did at sleep. */
function preferred(nvsEvery: number): { options: (w: ModelWorld) => Partial<ClientOptions>; checkpoint: (w: ModelWorld) => void } {
  let store: PreferredStore | null = null;
  return {
    options: (w) => {
      store = new PreferredStore(new RtcSnapshotStore(rtcRegion(w.rtc, RtcLayout.session)), new NvsSnapshotStore(w.nvs), { nvsEvery });
      return { store };
    },
    checkpoint: () => store?.checkpoint(),
  };
}

const writeThrough = preferred(0);
const mirror = preferred(1);
const rows: Row[] = [
  series('flash log', 1, () => ({}), undefined, true),
  series('flash log QoS 2', 2, () => ({}), undefined, true),
  series('journal', 1, () => ({})),
  series('journal QoS 2', 2, () => ({})),
  series('write-through', 1, writeThrough.options, writeThrough.checkpoint),
  series('mirror at sleep', 1, mirror.options, mirror.checkpoint),
];

const base = rows[0]!.bytesPerWake;
const perYear = (wakesPerMinute: number) => wakesPerMinute * 60 * 24 * 365;
const years = (r: Row, wakesPerMinute: number) =>
  r.erasesPerWake >= 0
    ? (CYCLES * (FLASH_PARTITION / FLASH_BLOCK)) / r.erasesPerWake / perYear(wakesPerMinute)
    : (CYCLES * PARTITION) / r.bytesPerWake / perYear(wakesPerMinute);
if (!json) {
  console.log(`flash per one-reading wake, ${WAKES} wakes each; lifetime: flash log ${CYCLES} cycles × ${FLASH_PARTITION / FLASH_BLOCK} blocks ÷ blocks erased per wake, NVS ${CYCLES} cycles × ${PARTITION} B ÷ bytes per wake\n`);
  console.log(`${'store'.padEnd(18)}${'B/wake'.padStart(9)}${'writes/wake'.padStart(13)}${'erases/wake'.padStart(13)}${'vs flash log'.padStart(14)}${'years @1/min'.padStart(14)}${'years @1/5min'.padStart(15)}`);
}
for (const r of rows) {
  const out = {
    bench: `wake-flash: ${r.store}`,
    value: Math.round(r.bytesPerWake * 10) / 10,
    unit: 'bytes/wake',
    writesPerWake: Math.round(r.writesPerWake * 100) / 100,
    erasesPerWake: r.erasesPerWake >= 0 ? Math.round(r.erasesPerWake * 1000) / 1000 : null,
    ...(r.split ? { wakeWithoutErase: { medianBytes: r.split.medianBytes, medianWrites: r.split.medianWrites }, compactionWakes: r.split.compactions, compactionWakeMedianBytes: r.split.compactionBytes } : {}),
    ratio: Math.round((r.bytesPerWake / base) * 100) / 100,
    yearsAtOnePerMinute: Math.round(years(r, 1) * 10) / 10,
    yearsAtOnePer5Minutes: Math.round(years(r, 1 / 5) * 10) / 10,
  };
  if (json) console.log(JSON.stringify(out));
  else
    console.log(
      `${r.store.padEnd(18)}${out.value.toFixed(1).padStart(9)}${out.writesPerWake.toFixed(2).padStart(13)}${(out.erasesPerWake === null ? '(NVS)' : out.erasesPerWake.toFixed(3)).padStart(13)}${(out.ratio.toFixed(2) + 'x').padStart(14)}` +
        `${out.yearsAtOnePerMinute.toFixed(1).padStart(14)}${out.yearsAtOnePer5Minutes.toFixed(1).padStart(15)}`,
    );
}
if (!json) {
  console.log('');
  for (const r of rows) {
    if (!r.split) continue;
    const x = r.split;
    console.log(`${r.store}: a wake without an erase writes ${x.medianBytes} B in ${x.medianWrites} writes (median); ${x.compactions} of ${WAKES} wakes compacted (erased an area), writing ${x.compactionBytes} B (median)`);
  }
}
