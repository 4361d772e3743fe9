// Moddable `mc/config`: the manifest's "config" object, overridden by
// `name=value` arguments of mcconfig (those arrive as strings).
declare module 'mc/config' {
  const config: { readonly [name: string]: unknown };
  export default config;
}
