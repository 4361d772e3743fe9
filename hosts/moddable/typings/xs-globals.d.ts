// Globals of the XS runtime that the host uses (XS in C: "Native";
// Moddable's debugging docs: trace).

/** Writes to the xsbug console / serial log. No newline is added. */
declare function trace(...items: (string | number | boolean)[]): void;

/** Names a C host function; xsc resolves the literal at build time. */
declare function native(name: string): (...args: any[]) => any;

/** XS: the bytes of an ArrayBuffer as a string (UTF-8). */
interface StringConstructor {
  fromArrayBuffer(buffer: ArrayBuffer): string;
}
