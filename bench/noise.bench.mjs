// X25519 in noise handshakes: @chainsafe/libp2p-noise's Node crypto (both keys imported from DER
// for every exchange) against the transport's (packages/transport/src/noise-crypto.ts: private
// key objects kept from key generation, peer keys imported from JWK). µs per key pair and per
// exchange, and what one side of a handshake pays (one key pair, three exchanges), in one run.
// `node bench/run.mjs noise` (after `npx turbo run build`). Every figure printed and recorded
// in RESULTS.md comes from this run.
import { loadavg } from 'node:os'
import { defaultCrypto } from '@chainsafe/libp2p-noise/crypto'
import { fastX25519 } from '@nact-horde/transport'
import { machine, recordSection, table } from './lib/results.mjs'

const N = 2000
const REPS = 5
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1]

/** Median µs per call of `fn` over REPS runs of N calls. */
function perCall(fn) {
  const runs = []
  for (let r = 0; r < REPS; r++) {
    const t0 = performance.now()
    for (let i = 0; i < N; i++) fn(i)
    runs.push(((performance.now() - t0) / N) * 1000)
  }
  return median(runs)
}

const fast = fastX25519(defaultCrypto)
const peers = Array.from({ length: 64 }, () => defaultCrypto.generateX25519KeyPair())
const ours = fast.generateX25519KeyPair()
// The same shared key either way, or the figures compare different things.
for (const p of peers) {
  const a = Buffer.from(defaultCrypto.generateX25519SharedKey(ours.privateKey, p.publicKey))
  const b = Buffer.from(fast.generateX25519SharedKey(ours.privateKey, p.publicKey))
  if (!a.equals(b)) throw new Error('the two X25519 paths disagree')
}
const loadBefore = loadavg()[0]
const rows = []
const results = {}
for (const [name, c] of [
  ['noise (DER imports)', defaultCrypto],
  ['transport (kept keys, JWK)', fast],
]) {
  const own = c.generateX25519KeyPair()
  const keygen = perCall(() => c.generateX25519KeyPair())
  const exchange = perCall((i) =>
    c.generateX25519SharedKey(own.privateKey, peers[i % peers.length].publicKey),
  )
  results[name] = { keygen, exchange, side: keygen + 3 * exchange }
  rows.push([
    name,
    `${keygen.toFixed(1)} µs`,
    `${exchange.toFixed(1)} µs`,
    `${(keygen + 3 * exchange).toFixed(0)} µs`,
  ])
}
const [a, b] = Object.values(results)
const md = [
  '## noise X25519',
  '',
  `Machine: ${machine()}. ${N} calls × ${REPS} runs each, median µs per call; a handshake side = one key pair + three exchanges (noise XX). Both paths checked to give the same shared keys. Load average (1 min) ${loadBefore.toFixed(2)} → ${loadavg()[0].toFixed(2)}.`,
  '',
  table(['crypto', 'key pair', 'exchange', 'one side of a handshake'], rows),
  '',
  `- exchange: ${(a.exchange / b.exchange).toFixed(1)}× faster; a connection's two sides: ${((2 * (a.side - b.side)) / 1000).toFixed(2)} ms of CPU less.`,
].join('\n')
console.log(md)
recordSection('noise', md)
