// UTF-8 for MQTT strings (MQTT 5.0 / 3.1.1, 1.5.4), written straight into and
// read straight out of Uint8Arrays: TextEncoder/TextDecoder are not globals on
// Moddable, and encoding in place allocates nothing.

/**
 * Bytes needed to encode `s` as an MQTT UTF-8 string, or -1 if it cannot be
 * one: a lone surrogate (ill-formed, [MQTT-1.5.4-1]) or U+0000 ([MQTT-1.5.4-2]).
 */
export function utf8Length(s: string): number {
  const n = s.length;
  let bytes = n;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) {
      if (c === 0) return -1;
    } else if (c < 0x800) {
      bytes += 1;
    } else if (c < 0xd800 || c > 0xdfff) {
      bytes += 2;
    } else if (c < 0xdc00 && i + 1 < n) {
      const d = s.charCodeAt(i + 1);
      if (d < 0xdc00 || d > 0xdfff) return -1;
      i++;
      bytes += 2; // 4 bytes for 2 UTF-16 units
    } else {
      return -1;
    }
  }
  return bytes;
}

/**
 * Writes `s` as UTF-8 at `offset` and returns the offset after it. The caller
 * has checked the string with utf8Length and made room: nothing is checked here.
 */
export function utf8Write(s: string, buf: Uint8Array, offset: number): number {
  const n = s.length;
  let o = offset;
  for (let i = 0; i < n; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) {
      buf[o++] = c;
    } else if (c < 0x800) {
      buf[o++] = 0xc0 | (c >> 6);
      buf[o++] = 0x80 | (c & 0x3f);
    } else if (c < 0xd800 || c > 0xdfff) {
      buf[o++] = 0xe0 | (c >> 12);
      buf[o++] = 0x80 | ((c >> 6) & 0x3f);
      buf[o++] = 0x80 | (c & 0x3f);
    } else {
      c = 0x10000 + ((c - 0xd800) << 10) + (s.charCodeAt(++i) - 0xdc00);
      buf[o++] = 0xf0 | (c >> 18);
      buf[o++] = 0x80 | ((c >> 12) & 0x3f);
      buf[o++] = 0x80 | ((c >> 6) & 0x3f);
      buf[o++] = 0x80 | (c & 0x3f);
    }
  }
  return o;
}

/** Result of utf8Check. */
export const enum Utf8Status {
  Ascii = 0, // valid, every byte < 0x80
  Valid = 1, // valid, with multi-byte sequences
  IllFormed = -1, // [MQTT-1.5.4-1]
  Null = -2, // [MQTT-1.5.4-2]
}

/**
 * Validates bytes [start, end) as an MQTT UTF-8 string without allocating:
 * well-formed per Unicode (no overlongs, no surrogates, nothing above U+10FFFF)
 * and no U+0000.
 */
export function utf8Check(b: Uint8Array, start: number, end: number): Utf8Status {
  let i = start;
  // ASCII fast path.
  while (i < end) {
    const c = b[i];
    if (c >= 0x80) break;
    if (c === 0) return Utf8Status.Null;
    i++;
  }
  if (i === end) return Utf8Status.Ascii;
  while (i < end) {
    const c = b[i];
    if (c < 0x80) {
      if (c === 0) return Utf8Status.Null;
      i++;
    } else if (c < 0xc2) {
      return Utf8Status.IllFormed; // continuation byte or overlong 2-byte lead
    } else if (c < 0xe0) {
      if (i + 1 >= end || (b[i + 1] & 0xc0) !== 0x80) return Utf8Status.IllFormed;
      i += 2;
    } else if (c < 0xf0) {
      if (i + 2 >= end) return Utf8Status.IllFormed;
      const c1 = b[i + 1];
      if ((c1 & 0xc0) !== 0x80 || (b[i + 2] & 0xc0) !== 0x80) return Utf8Status.IllFormed;
      if (c === 0xe0 && c1 < 0xa0) return Utf8Status.IllFormed; // overlong
      if (c === 0xed && c1 >= 0xa0) return Utf8Status.IllFormed; // surrogate U+D800..U+DFFF
      i += 3;
    } else if (c < 0xf5) {
      if (i + 3 >= end) return Utf8Status.IllFormed;
      const c1 = b[i + 1];
      if ((c1 & 0xc0) !== 0x80 || (b[i + 2] & 0xc0) !== 0x80 || (b[i + 3] & 0xc0) !== 0x80) return Utf8Status.IllFormed;
      if (c === 0xf0 && c1 < 0x90) return Utf8Status.IllFormed; // overlong
      if (c === 0xf4 && c1 >= 0x90) return Utf8Status.IllFormed; // above U+10FFFF
      i += 4;
    } else {
      return Utf8Status.IllFormed;
    }
  }
  return Utf8Status.Valid;
}

/**
 * Decodes bytes [start, end) that utf8Check has accepted. Allocates only the
 * resulting string.
 */
export function utf8Read(b: Uint8Array, start: number, end: number): string {
  let s = '';
  let i = start;
  while (i < end) {
    const c = b[i];
    if (c < 0x80) {
      // Runs of ASCII in one call: fewer intermediate strings.
      let j = i + 1;
      while (j < end && j - i < 16 && b[j] < 0x80) j++;
      switch (j - i) {
        case 1: s += String.fromCharCode(c); break;
        case 2: s += String.fromCharCode(c, b[i + 1]); break;
        case 3: s += String.fromCharCode(c, b[i + 1], b[i + 2]); break;
        case 4: s += String.fromCharCode(c, b[i + 1], b[i + 2], b[i + 3]); break;
        default:
          for (let k = i; k < j; k += 4) {
            const r = j - k;
            if (r >= 4) s += String.fromCharCode(b[k], b[k + 1], b[k + 2], b[k + 3]);
            else if (r === 3) s += String.fromCharCode(b[k], b[k + 1], b[k + 2]);
            else if (r === 2) s += String.fromCharCode(b[k], b[k + 1]);
            else s += String.fromCharCode(b[k]);
          }
      }
      i = j;
    } else if (c < 0xe0) {
      s += String.fromCharCode(((c & 0x1f) << 6) | (b[i + 1] & 0x3f));
      i += 2;
    } else if (c < 0xf0) {
      s += String.fromCharCode(((c & 0x0f) << 12) | ((b[i + 1] & 0x3f) << 6) | (b[i + 2] & 0x3f));
      i += 3;
    } else {
      const cp = (((c & 0x07) << 18) | ((b[i + 1] & 0x3f) << 12) | ((b[i + 2] & 0x3f) << 6) | (b[i + 3] & 0x3f)) - 0x10000;
      s += String.fromCharCode(0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff));
      i += 4;
    }
  }
  return s;
}

/**
 * Validates and decodes bytes [start, end); returns null if they are not an
 * MQTT UTF-8 string (see utf8Check for which rule failed).
 */
export function utf8Decode(b: Uint8Array, start: number, end: number): string | null {
  return utf8Check(b, start, end) < 0 ? null : utf8Read(b, start, end);
}
