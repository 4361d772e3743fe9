// mc/config for the flash stand-in under test: lin's file root is a test directory.
export default { file: { root: (globalThis as unknown as { __linRoot: string }).__linRoot } };
