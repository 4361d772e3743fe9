// SCRAM-SHA-256 (RFC 5802 / RFC 7677 messages, no channel binding) for the
// enhanced authentication tests: the client's side is what an application's
// hook computes, the server's side is the scripted broker's. node:crypto only.
import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';

const b64 = (b: Uint8Array | string) => Buffer.from(b).toString('base64');
const hmac = (key: Uint8Array, s: string) => createHmac('sha256', key).update(s).digest();
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest();
const xor = (a: Uint8Array, b: Uint8Array) => Buffer.from(a.map((x, k) => x ^ b[k]));

/** The client's side: what the application's hook computes. */
export function scramClient(user: string, password: string, cnonce: string) {
  const first = `n=${user},r=${cnonce}`;
  let authMessage = '';
  let salted: Buffer = Buffer.alloc(0);
  return {
    first: new TextEncoder().encode(`n,,${first}`),
    /** server-first -> client-final with the proof */
    final(serverFirst: Uint8Array): Uint8Array {
      const sf = Buffer.from(serverFirst).toString();
      const f = Object.fromEntries(sf.split(',').map((kv) => [kv[0], kv.slice(2)]));
      if (!f.r.startsWith(cnonce)) throw new Error('server nonce does not extend ours');
      salted = pbkdf2Sync(password, Buffer.from(f.s, 'base64'), Number(f.i), 32, 'sha256');
      const withoutProof = `c=${b64('n,,')},r=${f.r}`;
      authMessage = `${first},${sf},${withoutProof}`;
      const clientKey = hmac(salted, 'Client Key');
      const proof = xor(clientKey, hmac(sha(clientKey), authMessage));
      return new TextEncoder().encode(`${withoutProof},p=${b64(proof)}`);
    },
    /** server-final: is the server's signature right? */
    verify(serverFinal: Uint8Array): boolean {
      return Buffer.from(serverFinal).toString() === `v=${b64(hmac(hmac(salted, 'Server Key'), authMessage))}`;
    },
  };
}

/** The broker's side, scripted in the test with node:crypto. */
export function scramServer(password: string, salt: Buffer, iterations: number, snonce: string) {
  const salted = pbkdf2Sync(password, salt, iterations, 32, 'sha256');
  const storedKey = sha(hmac(salted, 'Client Key'));
  let clientFirstBare = '';
  let serverFirst = '';
  return {
    first(clientFirst: Uint8Array): Uint8Array {
      const s = Buffer.from(clientFirst).toString();
      clientFirstBare = s.slice(3);
      const cnonce = /r=([^,]+)/.exec(clientFirstBare)![1];
      serverFirst = `r=${cnonce}${snonce},s=${b64(salt)},i=${iterations}`;
      return new TextEncoder().encode(serverFirst);
    },
    /** client-final -> server-final, or null when the proof is wrong */
    final(clientFinal: Uint8Array): Uint8Array | null {
      const s = Buffer.from(clientFinal).toString();
      const withoutProof = s.slice(0, s.lastIndexOf(',p='));
      const proof = Buffer.from(s.slice(s.lastIndexOf(',p=') + 3), 'base64');
      const authMessage = `${clientFirstBare},${serverFirst},${withoutProof}`;
      const clientKey = xor(proof, hmac(storedKey, authMessage));
      if (!sha(clientKey).equals(storedKey)) return null;
      return new TextEncoder().encode(`v=${b64(hmac(hmac(salted, 'Server Key'), authMessage))}`);
    },
  };
}
