// The module `dormouse`: the Client of client.ts bound to Moddable's own
// modules, so an app writes `import Client from "dormouse"` (or
// `import { Client } from "dormouse"`) and constructs it as it would
// Moddable's `mqtt` Client. Include hosts/moddable/manifest_dormouse.json.
//
// TLS is opt-in (it brings Moddable's TLS stack into the build): include
// manifest_dormouse_tls.json and `import "dormouse/tls"` once.

import Timer from 'timer';
import Preference from 'preference';
import TCP from 'embedded:io/socket/tcp';
import Net from 'net';
import Flash from 'embedded:storage/flash';
import config from 'mc/config';
import { rtcLength, rtcRead, rtcWrite } from 'dormouse/deepsleep';
import { Client as Base, type ClientOptions, type ClientPlatform } from './client.js';
import type { FlashPartition } from './flash-store.js';

/** The label of the data partition the session log uses (native/partitions.csv). */
export const FLASH_PARTITION = 'dormouse';
const partitions = new Map<string, FlashPartition | null>(); // null: looked for, none

/**
 * The partition name for a client id. A device has one app and one
 * "dormouse" partition. On lin every app shares the simulated flash (files
 * in /tmp), so native/manifest.json sets `dormouseFlashPerClient` there and
 * each client id gets its own partition, "dormouse-" + FNV-1a of the id in
 * hex: two apps (or two runs with different ids) do not take each other's
 * session.
 */
export function flashPartitionName(id: string): string {
  if (!config.dormouseFlashPerClient) return FLASH_PARTITION;
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193) >>> 0;
  return `${FLASH_PARTITION}-${h.toString(16).padStart(8, '0')}`;
}

/** The partition for `id`, opened once; undefined when the partition table has none (the NVS journal is used). */
function flash(id: string): FlashPartition | undefined {
  const path = flashPartitionName(id);
  let partition = partitions.get(path);
  if (partition === undefined) {
    try {
      partition = Flash.open({ path, mode: 'r+' }) as unknown as FlashPartition;
    } catch {
      partition = null;
    }
    partitions.set(path, partition);
  }
  return partition ?? undefined;
}

/** What the bound Client uses; `dormouse/tls` adds TLS here. */
export const platform: ClientPlatform = {
  Timer: Timer as unknown as ClientPlatform['Timer'],
  TCP: TCP as unknown as ClientPlatform['TCP'],
  preference: Preference as unknown as ClientPlatform['preference'],
  flash,
  rtc: { byteLength: rtcLength(), read: rtcRead, write: rtcWrite },
  resolve(name, done) {
    Net.resolve(name, (_name, address) => done(address));
  },
  // On ESP32 Date.now() runs on through deep sleep (the RTC timer), so expiry kept in a session stays meaningful.
  clock: () => Date.now(),
  random: Math.random,
};

export class Client extends Base {
  constructor(options: ClientOptions) {
    super(options, platform);
  }
}

export default Client;
export type { ClientOptions, PublishFlags } from './client.js';
