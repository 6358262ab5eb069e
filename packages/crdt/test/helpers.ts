import { type AWLWWMap, type Delta, decodeDelta, encodeDelta } from '@nact-horde/crdt'

/** A replica's full state in a canonical form, for equality checks between replicas. */
export function canonical<V>(m: AWLWWMap<V>): string {
  const s = m.state()
  const keys = [...s.keys.entries()]
    .map(
      ([k, kd]) => [k, [...kd.entries].sort((a, b) => (a.r < b.r ? -1 : a.r > b.r ? 1 : a.c - b.c))] as const,
    )
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  const ranges = [...s.ranges.entries()].sort(([a], [b]) => (a < b ? -1 : 1))
  return JSON.stringify({ keys, ranges }, (_k, v) => (v instanceof Uint8Array ? [...v] : v))
}

/** The visible content of a replica, keys sorted. */
export function visible<V>(m: AWLWWMap<V>): [string, V][] {
  return [...m.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
}

export interface SyncResult {
  rounds: number
  bytes: number
  messages: number
}

/**
 * Runs the sync protocol between two replicas, alternating turns, until both links return
 * null. `lose(i)` may drop the i-th message. Throws when it does not settle within maxRounds.
 */
export function syncPair<V>(
  a: AWLWWMap<V>,
  b: AWLWWMap<V>,
  opts: { maxRounds?: number; lose?: (i: number) => boolean } = {},
): SyncResult {
  const la = a.link(b.replicaId)
  const lb = b.link(a.replicaId)
  const max = opts.maxRounds ?? 200
  let bytes = 0
  let messages = 0
  for (let round = 1; round <= max; round++) {
    const m1 = la.generate()
    if (m1) {
      bytes += m1.length
      // Not `lose?.(messages++)`: an optional call skips its arguments, and nothing was counted.
      if (!opts.lose?.(messages)) lb.receive(m1)
      messages++
    }
    const m2 = lb.generate()
    if (m2) {
      bytes += m2.length
      if (!opts.lose?.(messages)) la.receive(m2)
      messages++
    }
    if (!m1 && !m2) return { rounds: round, bytes, messages }
  }
  throw new Error(`sync between ${a.replicaId} and ${b.replicaId} did not settle in ${max} rounds`)
}

/** Small seeded PRNG (mulberry32): the same seed gives the same run. */
export function prng(seed: number): () => number {
  let t = seed >>> 0
  return () => {
    t = (t + 0x6d2b79f5) >>> 0
    let x = Math.imul(t ^ (t >>> 15), 1 | t)
    x ^= x + Math.imul(x ^ (x >>> 7), 61 | x)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

/** The seed for randomized tests: `SEED=` replays a run; otherwise a fresh one, printed. */
export function testSeed(name: string): number {
  const fromEnv = process.env.SEED
  const seed = fromEnv !== undefined && fromEnv !== '' ? Number(fromEnv) : Math.floor(Math.random() * 2 ** 31)
  console.log(`${name}: SEED=${seed}`)
  return seed
}

/** A controllable wall clock. */
export class ManualClock {
  constructor(public t = 1_700_000_000_000) {}
  now(): number {
    return this.t
  }
}

/** Ships a delta through the wire format, as the network would. */
export function wire<V>(d: Delta<V>): Delta<V> {
  return decodeDelta<V>(encodeDelta(d))
}
