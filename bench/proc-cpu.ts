// CPU time of another process (the broker), read from /proc (Linux). The
// benchmarks sample it around a measured window to say how busy mosquitto was.

import { readdirSync, readFileSync } from 'node:fs';

/**
 * User + system CPU of process `pid` in ms: from /proc/PID/sched
 * (se.sum_exec_runtime, microsecond precision) where the kernel provides it,
 * else from /proc/PID/stat (clock ticks of 10 ms); NaN where neither exists.
 */
export function processCpuMs(pid: number | null): number {
  if (pid === null) return NaN;
  try {
    const m = /se\.sum_exec_runtime\s*:\s*([\d.]+)/.exec(readFileSync(`/proc/${pid}/sched`, 'utf8'));
    if (m) return Number(m[1]);
  } catch { /* no sched file: fall back to ticks */ }
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // utime, stime in clock ticks (USER_HZ 100)
  } catch {
    return NaN;
  }
}

/** The process id of the mosquitto started with `dir`/mosquitto.conf, found in /proc (sim/brokers.ts does not expose it), or null. */
export function mosquittoPid(m: { dir: string }): number | null {
  const conf = `${m.dir}/mosquitto.conf`;
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0').includes(conf)) return Number(d);
    } catch { /* gone */ }
  }
  return null;
}
