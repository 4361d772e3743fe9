import { describe, expect, it } from 'vitest';
import { Utf8Status, utf8Check, utf8Decode, utf8Length, utf8Write } from '../../modules/mqtt/utf8.js';

const enc = (s: string) => new Uint8Array(Buffer.from(s, 'utf8'));

describe('utf8', () => {
  const samples = ['', 'sensors/t1', 'é', 'ß€', '中文/topic', '😀', 'a𝄞b', '\u07ff\u0800\uffff', '\u{10ffff}', '\u0001\u007f'];
  it('length and write match Buffer for well-formed strings', () => {
    for (const s of samples) {
      expect(utf8Length(s)).toBe(Buffer.byteLength(s));
      const b = new Uint8Array(64);
      const end = utf8Write(s, b, 3);
      expect(Buffer.from(b.subarray(3, end)).toString('hex')).toBe(Buffer.from(s).toString('hex'));
    }
  });
  it('decode round-trips and reports ASCII', () => {
    for (const s of samples) expect(utf8Decode(enc(s), 0, enc(s).length)).toBe(s);
    expect(utf8Check(enc('abc'), 0, 3)).toBe(Utf8Status.Ascii);
    expect(utf8Check(enc('é'), 0, 2)).toBe(Utf8Status.Valid);
    const long = 'x'.repeat(100) + 'é' + 'y'.repeat(37);
    expect(utf8Decode(enc(long), 0, enc(long).length)).toBe(long);
  });
  it('[MQTT-1.5.4-2] U+0000 is rejected both ways', () => {
    expect(utf8Length('a\u0000')).toBe(-1);
    expect(utf8Check(new Uint8Array([0x61, 0x00]), 0, 2)).toBe(Utf8Status.Null);
  });
  it('[MQTT-1.5.4-1] lone surrogates cannot be encoded', () => {
    expect(utf8Length('\ud800')).toBe(-1);
    expect(utf8Length('\udc00x')).toBe(-1);
    expect(utf8Length('\ud800x')).toBe(-1);
  });
  it('[MQTT-1.5.4-1] ill-formed byte sequences are rejected', () => {
    const bad = [
      [0x80], // lone continuation
      [0xc0, 0xaf], // overlong '/'
      [0xc1, 0xbf], // overlong
      [0xe0, 0x80, 0xaf], // overlong 3-byte
      [0xed, 0xa0, 0x80], // U+D800 surrogate
      [0xed, 0xbf, 0xbf], // U+DFFF surrogate
      [0xf0, 0x80, 0x80, 0xaf], // overlong 4-byte
      [0xf4, 0x90, 0x80, 0x80], // above U+10FFFF
      [0xf5, 0x80, 0x80, 0x80],
      [0xff],
      [0xe2, 0x82], // truncated
      [0xc3, 0x41], // bad continuation
    ];
    for (const b of bad) expect(utf8Check(new Uint8Array(b), 0, b.length), b.join(',')).toBe(Utf8Status.IllFormed);
    expect(utf8Decode(new Uint8Array([0xc0, 0xaf]), 0, 2)).toBeNull();
  });
  it('agrees with the WHATWG decoder on random bytes (fatal mode)', () => {
    const td = new TextDecoder('utf-8', { fatal: true });
    let x = 12345;
    for (let i = 0; i < 20000; i++) {
      const n = 1 + (i % 6);
      const b = new Uint8Array(n);
      for (let j = 0; j < n; j++) {
        x = (Math.imul(x, 1103515245) + 12345) >>> 0;
        b[j] = (x >>> 16) & 0xff;
      }
      let want: string | null;
      try {
        want = td.decode(b);
      } catch {
        want = null;
      }
      if (want !== null && want.includes('\u0000')) want = null;
      if (want !== null && want.charCodeAt(0) === 0xfeff) continue; // TextDecoder strips a BOM
      expect(utf8Decode(b, 0, n), Array.from(b).join(',')).toBe(want);
    }
  });
});
