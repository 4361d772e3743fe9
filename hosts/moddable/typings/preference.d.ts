// Moddable `preference` (documentation/files/files.md, class Preference).
// ESP32: NVS, domain and key at most 15 characters, values at most 4000 bytes;
// an ArrayBuffer is stored as a blob and read back as a new ArrayBuffer.
// lin: a JSON file.
declare module 'preference' {
  const Preference: {
    set(domain: string, key: string, value: string | number | boolean | ArrayBuffer): void;
    get(domain: string, key: string): string | number | boolean | ArrayBuffer | undefined;
    delete(domain: string, key: string): void;
    keys(domain: string): string[];
  };
  export default Preference;
}
