// Small, fast, deterministic hashes for the digest tree. Not cryptographic: they detect
// accidental divergence between honest replicas; 64 bits make a missed difference
// vanishingly unlikely.

/** FNV-1a over UTF-16 code units: the same on every replica and platform. */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h >>> 0
}

/** MurmurHash3's 32-bit finaliser: a good avalanche in five operations. */
export function fmix(h: number): number {
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

/** First half of a dot's 64-bit hash. Counters may exceed 2^32: both halves are mixed in. */
export function dotHash1(replicaHash: number, counter: number): number {
  return fmix(replicaHash ^ fmix((counter >>> 0) ^ 0x9e3779b9) ^ Math.floor(counter / 0x100000000))
}

export function dotHash2(replicaHash: number, counter: number): number {
  return fmix(
    Math.imul(replicaHash, 0x27d4eb2f) ^ fmix((counter >>> 0) + 0x165667b1) ^ (counter / 0x100000000),
  )
}
