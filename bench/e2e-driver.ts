// The publish loop both clients run in bench/e2e.ts: at most `window`
// publishes outstanding (sent and not yet called back), and at most `window`
// new ones per turn of the event loop, so a client whose callback fires at
// once (MQTT.js at QoS 0, ours through a resolved promise) cannot publish the
// whole run in one synchronous burst. Refills happen in setImmediate, which
// runs right after the I/O callbacks of the same loop turn: no added latency
// for acks that arrive together.

/** MQTT 5 sessions that outlive a connection need a Session Expiry Interval (the spec's default, 0, ends them at DISCONNECT). */
export const SESSION_EXPIRY_S = 3600;

export type PublishOne = (done: (err?: Error | null) => void) => void;

export function drive(n: number, window: number, publishOne: PublishOne): Promise<void> {
  return new Promise((resolve, reject) => {
    let started = 0;
    let completed = 0;
    let outstanding = 0;
    let scheduled = false;
    let failed = false;
    const done = (err?: Error | null): void => {
      if (failed) return;
      if (err) {
        failed = true;
        reject(err);
        return;
      }
      outstanding--;
      if (++completed === n) resolve();
      else if (!scheduled) {
        scheduled = true;
        setImmediate(pump);
      }
    };
    const pump = (): void => {
      scheduled = false;
      let budget = window;
      while (budget-- > 0 && outstanding < window && started < n) {
        started++;
        outstanding++;
        publishOne(done);
      }
    };
    if (n === 0) resolve();
    else pump();
  });
}
