/**
 * Which dots a replica has seen: per replica id, a sorted list of disjoint, non-adjacent,
 * inclusive counter intervals, flat as `[lo, hi, lo, hi, …]`. A gap-free history is one
 * interval (a version vector entry); dots seen out of order are further intervals (the
 * "dot cloud"), merged away as the gaps fill. Intervals keep hostile or huge ranges O(1) in
 * memory.
 */
export class CausalContext {
  private readonly byReplica = new Map<string, number[]>()

  get replicas(): IterableIterator<string> {
    return this.byReplica.keys()
  }

  /** Number of replica ids with at least one dot here. */
  get replicaCount(): number {
    return this.byReplica.size
  }

  /** Forgets every dot of `replica` (it was retired). Returns true when it had any. */
  delete(replica: string): boolean {
    return this.byReplica.delete(replica)
  }

  intervals(replica: string): readonly number[] | undefined {
    return this.byReplica.get(replica)
  }

  entries(): IterableIterator<[string, readonly number[]]> {
    return this.byReplica.entries()
  }

  /** Highest counter seen from `replica` (0 when none). */
  max(replica: string): number {
    const iv = this.byReplica.get(replica)
    return iv === undefined || iv.length === 0 ? 0 : iv[iv.length - 1]!
  }

  has(replica: string, counter: number): boolean {
    const iv = this.byReplica.get(replica)
    if (iv === undefined) return false
    // Fast path: most lookups hit the first (version-vector) interval.
    if (counter >= iv[0]! && counter <= iv[1]!) return true
    let lo = 0
    let hi = iv.length / 2 - 1
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1
      if (counter < iv[2 * mid]!) hi = mid - 1
      else if (counter > iv[2 * mid + 1]!) lo = mid + 1
      else return true
    }
    return false
  }

  /** Adds one dot. Returns true when it was new. */
  add(replica: string, counter: number): boolean {
    const iv = this.byReplica.get(replica)
    if (iv !== undefined && iv.length > 0) {
      const last = iv.length - 1
      if (iv[last] === counter - 1) {
        iv[last] = counter
        return true
      }
      if (counter > iv[last]! + 1) {
        iv.push(counter, counter)
        return true
      }
    }
    return this.addInterval(replica, counter, counter)
  }

  /** Adds every dot in `[lo, hi]` (none when `hi < lo`). Returns true when any was new. */
  addInterval(replica: string, lo: number, hi: number): boolean {
    if (hi < lo) return false
    const iv = this.byReplica.get(replica)
    if (iv === undefined) {
      this.byReplica.set(replica, [lo, hi])
      return true
    }
    // Fast path: past the last interval (a writer's counters run on), adjacent or not.
    const last = iv.length - 1
    if (last > 0 && lo > iv[last]!) {
      if (lo === iv[last]! + 1) iv[last] = hi
      else iv.push(lo, hi)
      return true
    }
    // Find the first interval whose hi >= lo - 1 (it may merge with the new one).
    let a = 0
    let b = iv.length / 2 - 1
    while (a <= b) {
      const mid = (a + b) >>> 1
      if (iv[2 * mid + 1]! < lo - 1) a = mid + 1
      else b = mid - 1
    }
    const i = a
    let j = i
    let newLo = lo
    let newHi = hi
    while (j < iv.length / 2 && iv[2 * j]! <= hi + 1) {
      newLo = Math.min(newLo, iv[2 * j]!)
      newHi = Math.max(newHi, iv[2 * j + 1]!)
      j++
    }
    if (j === i + 1 && iv[2 * i] === newLo && iv[2 * i + 1] === newHi) return false
    iv.splice(2 * i, 2 * (j - i), newLo, newHi)
    return true
  }

  /** Adds everything in `other`. Returns true when anything was new. */
  merge(other: CausalContext | ReadonlyMap<string, readonly number[]>): boolean {
    let changed = false
    const it = other instanceof CausalContext ? other.byReplica : other
    for (const [replica, iv] of it) {
      for (let k = 0; k < iv.length; k += 2) {
        if (this.addInterval(replica, iv[k]!, iv[k + 1]!)) changed = true
      }
    }
    return changed
  }

  /** The dots of this context that `other` has not seen, as intervals per replica. */
  minus(other: CausalContext): Map<string, number[]> {
    const out = new Map<string, number[]>()
    for (const [replica, mine] of this.byReplica) {
      const theirs = other.byReplica.get(replica)
      const diff = theirs === undefined ? mine.slice() : subtract(mine, theirs)
      if (diff.length > 0) out.set(replica, diff)
    }
    return out
  }

  equals(other: CausalContext): boolean {
    if (this.byReplica.size !== other.byReplica.size) return false
    for (const [replica, mine] of this.byReplica) {
      const theirs = other.byReplica.get(replica)
      if (theirs === undefined || theirs.length !== mine.length) return false
      for (let k = 0; k < mine.length; k++) if (mine[k] !== theirs[k]) return false
    }
    return true
  }

  clone(): CausalContext {
    const c = new CausalContext()
    for (const [replica, iv] of this.byReplica) c.byReplica.set(replica, iv.slice())
    return c
  }

  /** A copy of the intervals, for shipping. */
  toRanges(): Map<string, number[]> {
    const out = new Map<string, number[]>()
    for (const [replica, iv] of this.byReplica) out.set(replica, iv.slice())
    return out
  }

  static fromRanges(ranges: ReadonlyMap<string, readonly number[]>): CausalContext {
    const c = new CausalContext()
    c.merge(ranges)
    return c
  }
}

/** a \ b for sorted disjoint flat interval lists. */
function subtract(a: readonly number[], b: readonly number[]): number[] {
  const out: number[] = []
  let j = 0
  for (let i = 0; i < a.length; i += 2) {
    let lo = a[i]!
    const hi = a[i + 1]!
    while (j < b.length && b[j + 1]! < lo) j += 2
    let k = j
    while (lo <= hi && k < b.length && b[k]! <= hi) {
      if (b[k]! > lo) out.push(lo, b[k]! - 1)
      lo = Math.max(lo, b[k + 1]! + 1)
      k += 2
    }
    if (lo <= hi) out.push(lo, hi)
  }
  return out
}
