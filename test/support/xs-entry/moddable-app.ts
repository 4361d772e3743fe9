// Runs the Moddable example app (hosts/moddable/examples/sensor/main.ts) for a number of wakes
// on the virtual clock, and reports what the broker saw.
import main from '../../../hosts/moddable/examples/sensor/main.js';
import { timers, broker, packets, traces, readings, wifiLog, preference, lookups, flash } from './moddable/world.js';
import * as world from './moddable/world.js';

export function runWakes(n: number): unknown {
  const perWake: string[][] = [];
  let start = 0;
  main();
  for (let guard = 0; guard < 100_000 && world.sleeps < n; guard++) {
    const before = world.sleeps;
    // Jump to the next timer that is due (the sleep between wakes is minutes).
    let next = Infinity;
    for (const t of timers.live) next = Math.min(next, t.due);
    if (next === Infinity) break;
    timers.advance(Math.max(0, next - timers.now));
    if (world.sleeps !== before) {
      perWake.push(packets.slice(start));
      start = packets.length;
    }
  }
  return { sleeps: world.sleeps, perWake, traces: traces.slice(), readings: readings.slice(), connects: broker.stats.connects, now: timers.now, joins: wifiLog.joins.slice(), nvsSets: preference.sets, lookups: lookups.slice(), flashWritten: flash.written, flashErased: flash.erased };
}

(globalThis as { runWakes?: typeof runWakes }).runWakes = runWakes;
