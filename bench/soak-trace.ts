// Packet tracing for the soak's child processes (SOAK_TRACE_DIR=DIR): one line
// per MQTT packet sent or received, with the wall clock (ms, comparable across
// processes and with the soak's timeline), so a duplicate can be followed
// packet by packet through the publisher, mosquitto's log (log_type all) and
// the subscriber:
//
//   WALL_MS TAG S|R TYPE id=ID d=DUP q=QOS [sp=SESSION_PRESENT rc=CODE] [PAYLOAD]
//
// S lines are logged when the core hands bytes to the transport (a SIGKILL
// right after may keep them from leaving the process); R lines when bytes arrive.

import { appendFileSync } from 'node:fs';
import { createRequire } from 'node:module';

interface TracePacket {
  cmd: string;
  messageId?: number;
  dup?: boolean;
  qos?: number;
  sessionPresent?: boolean;
  returnCode?: number;
  reasonCode?: number;
  payload?: Buffer;
}

/** A `trace` hook for connect(), writing to FILE; `extra` is appended to R lines (state after the packet, say). */
export function packetTracer(file: string, tag: string, version: 4 | 5): (dir: 'send' | 'receive', bytes: Uint8Array) => void {
  const mp = createRequire(import.meta.url)('mqtt-packet') as { parser: (o: { protocolVersion: number }) => NodeJS.EventEmitter & { parse(b: Buffer): number } };
  const make = (d: string) => {
    const p = mp.parser({ protocolVersion: version });
    p.on('packet', (x: TracePacket) => lines.push(fmt(d, x)));
    p.on('error', (e: Error) => lines.push(`${Date.now()} ${tag} ${d} PARSE-ERROR ${e.message}`));
    return p;
  };
  let lines: string[] = [];
  const fmt = (d: string, x: TracePacket): string => {
    let s = `${Date.now()} ${tag} ${d} ${x.cmd}`;
    if (x.messageId !== undefined) s += ` id=${x.messageId}`;
    if (x.cmd === 'publish') s += ` d=${x.dup ? 1 : 0} q=${x.qos ?? 0} [${x.payload ? x.payload.toString('utf8') : ''}]`;
    if (x.cmd === 'connack') s += ` sp=${x.sessionPresent ? 1 : 0} rc=${x.returnCode ?? x.reasonCode ?? 0}`;
    else if (x.reasonCode !== undefined && x.reasonCode !== 0) s += ` rc=${x.reasonCode}`;
    return s;
  };
  let send = make('S');
  let recv = make('R');
  return (dir, bytes) => {
    const b = Buffer.from(bytes);
    if (dir === 'send') {
      if ((b[0]! >> 4) === 1) {
        // CONNECT: a new connection, new parsers (a partial packet of the last one is gone).
        send = make('S');
        recv = make('R');
        lines.push(`${Date.now()} ${tag} --- new connection`);
      }
      send.parse(b);
    } else {
      recv.parse(b);
    }
    if (lines.length) {
      appendFileSync(file, lines.join('\n') + '\n');
      lines = [];
    }
  };
}
