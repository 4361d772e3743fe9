// Compile-time only (never built into an app): both implementations of
// dormouse/deepsleep must match its declaration.
import type * as Declared from 'dormouse/deepsleep';
import type * as Esp32 from '../deepsleep.js';
import type * as Lin from '../native/lin/deepsleep.js';

type Api = {
  sleep: typeof Declared.sleep;
  wakeCause: typeof Declared.wakeCause;
  rtcLength: typeof Declared.rtcLength;
  rtcRead: typeof Declared.rtcRead;
  rtcWrite: typeof Declared.rtcWrite;
};

export type Esp32Conforms = typeof Esp32 extends Api ? true : never;
export type LinConforms = typeof Lin extends Api ? true : never;
export const esp32Conforms: Esp32Conforms = true;
export const linConforms: LinConforms = true;
