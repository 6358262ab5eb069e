/**
 * X25519 for noise with cheaper key imports. Noise's Node crypto imports both keys of every
 * Diffie-Hellman from DER (PKCS#8 / SPKI), and importing the private key (OpenSSL derives its
 * public half) costs far more than the exchange itself. A handshake makes three on each side:
 * bench/noise.bench.mjs measures 826 µs per exchange that way against 87 µs here, about 4.9 ms
 * of CPU per connection (bench/RESULTS.md, noise X25519). Here the private key objects made by key generation are
 * kept (weakly, by the raw key noise hands back) and the peer's public key is imported from
 * JWK (~25 µs). A private key this module did not make (none, in a handshake) is imported as
 * noise does. `generateX25519KeyPairFromSeed` (a static key given to noise, which the
 * transport never does) is noise's own. Same keys, same results: only the bookkeeping of Node's key objects changes.
 *
 * @module
 * @internal
 */
import {
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  type KeyObject,
} from 'node:crypto'
import type { ICryptoInterface } from '@chainsafe/libp2p-noise'

/** PKCS#8 header of a raw X25519 private key (as noise's own Node crypto uses). */
const PKCS8_PREFIX = Buffer.from([
  0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20,
])

type Bytes = Uint8Array | { subarray(): Uint8Array }

const raw = (b: Bytes): Uint8Array => (b instanceof Uint8Array ? b : b.subarray())

/** How many exchanges used a kept private key, and how many had to import one. */
export interface X25519Stats {
  kept: number
  imported: number
}

/** `base` (noise's default crypto) with X25519 key pairs and exchanges done as above. */
export function fastX25519(base: ICryptoInterface): ICryptoInterface & { x25519: X25519Stats } {
  const keys = new WeakMap<Uint8Array, KeyObject>()
  const x25519: X25519Stats = { kept: 0, imported: 0 }
  // noise calls these unbound (see its wrapCrypto): no `this` below.
  const generateX25519KeyPair = () => {
    const { privateKey } = generateKeyPairSync('x25519')
    const jwk = privateKey.export({ format: 'jwk' })
    const pair = {
      publicKey: new Uint8Array(Buffer.from(jwk.x!, 'base64url')),
      privateKey: new Uint8Array(Buffer.from(jwk.d!, 'base64url')),
    }
    keys.set(pair.privateKey, privateKey)
    return pair
  }
  const generateX25519SharedKey = (privateKey: Bytes, publicKey: Bytes): Uint8Array => {
    let priv = privateKey instanceof Uint8Array ? keys.get(privateKey) : undefined
    if (priv === undefined) {
      x25519.imported++
      const d = raw(privateKey)
      priv = createPrivateKey({
        key: Buffer.concat([PKCS8_PREFIX, d], PKCS8_PREFIX.length + d.length),
        type: 'pkcs8',
        format: 'der',
      })
    } else x25519.kept++
    const pub = createPublicKey({
      key: { kty: 'OKP', crv: 'X25519', x: Buffer.from(raw(publicKey)).toString('base64url') },
      format: 'jwk',
    })
    return diffieHellman({ privateKey: priv, publicKey: pub })
  }
  return { ...base, generateX25519KeyPair, generateX25519SharedKey, x25519 }
}
