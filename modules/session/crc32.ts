// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), the checksum of
// zlib and PNG, so a snapshot can be checked with any standard tool.

function makeTable(): Uint32Array {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
}

// Built once at module load; on Moddable the preloaded module keeps it in flash.
const TABLE = makeTable();

export function crc32(bytes: Uint8Array, start: number, end: number, previous = 0): number {
  // `previous` continues a CRC over several ranges: crc32(b, 2, 4, crc32(a, 0, 9)).
  let c = (previous ^ 0xffffffff) >>> 0;
  for (let i = start; i < end; i++) c = TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
