// Moddable `Resource` (documentation/base/base.md): read-only data from the manifest's "data"/"resources".
declare module 'Resource' {
  export default class Resource extends ArrayBuffer {
    constructor(path: string);
    static exists(path: string): boolean;
  }
}
