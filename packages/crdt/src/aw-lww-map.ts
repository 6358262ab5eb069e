import { CausalContext } from './causal-context.js'
import { DigestTree, type TreeItem } from './digest-tree.js'
import { DotIndex } from './dot-index.js'
import { InvalidArgumentError } from './errors.js'
import { dotHash1, dotHash2, fmix, fnv1a } from './hash.js'
import { compareWrites, HybridClock } from './hybrid-clock.js'
import { SyncLink } from './sync-link.js'
import type { Clock, Delta, Diff, Dot, Entry, KeyDelta, Value } from './types.js'
import { assertValue, valuesEqual } from './value.js'

/** Options of {@link AWLWWMap}. */
export interface AWLWWMapOptions {
  /**
   * This replica's id. Must be new for every process start, so a restarted node can never
   * reuse a dot. @default a random 96-bit id
   */
  replicaId?: string
  /** Wall-clock source for timestamps. @default Date */
  clock?: Clock
}

interface KeyRecord<V> extends TreeItem {
  readonly key: string
  entries: Entry<V>[]
}

const EMPTY_RANGES: ReadonlyMap<string, readonly number[]> = new Map()
const NO_DOTS: Dot[] = []

/**
 * A delta-state add-wins last-writer-wins map (Almeida, Shoker & Baquero, "Delta State
 * Replicated Data Types", 2018), with an anti-entropy protocol whose cost follows the size
 * of the difference between two replicas, not the size of the map.
 *
 * @example
 * ```ts
 * const a = new AWLWWMap<number>({ replicaId: 'a' })
 * const b = new AWLWWMap<number>({ replicaId: 'b' })
 * b.join(decodeDelta(encodeDelta(a.set('x', 1))))   // → [{ type: 'add', key: 'x', value: 1 }]
 * ```
 */
export class AWLWWMap<V = Value> {
  readonly replicaId: string
  private counter = 0
  private readonly hlc: HybridClock
  private readonly records = new Map<string, KeyRecord<V>>()
  /** @internal */ readonly context = new CausalContext()
  /** @internal */ readonly tree = new DigestTree<KeyRecord<V>>()
  private readonly index = new DotIndex()
  private readonly links = new Map<string, SyncLink<V>>()
  private readonly replicaHashes = new Map<string, number>()
  private readonly interned = new Map<string, string>()
  /** @internal Bumped on every state change; links use it to know when they are done. */
  version = 0

  constructor(options: AWLWWMapOptions = {}) {
    const id = options.replicaId ?? randomReplicaId()
    if (typeof id !== 'string' || id.length === 0 || id.length > 64) {
      throw new InvalidArgumentError('replicaId must be a non-empty string of at most 64 characters')
    }
    this.replicaId = id
    this.hlc = new HybridClock(options.clock ?? Date)
  }

  get size(): number {
    return this.records.size
  }

  get(key: string): V | undefined {
    const rec = this.records.get(key)
    return rec === undefined ? undefined : winner(rec.entries).value
  }

  has(key: string): boolean {
    return this.records.has(key)
  }

  *keys(): IterableIterator<string> {
    yield* this.records.keys()
  }

  *entries(): IterableIterator<[string, V]> {
    for (const [key, rec] of this.records) yield [key, winner(rec.entries).value]
  }

  toMap(): Map<string, V> {
    return new Map(this.entries())
  }

  /**
   * Every live value of `key`, the winner first. More than one means concurrent writes that
   * no replica has yet superseded (e.g. both sides of a healed network partition wrote it):
   * `get` reads the winner; an application can use this to resolve the conflict its own way,
   * and a later `set` supersedes them all.
   */
  siblings(key: string): V[] {
    const rec = this.records.get(key)
    if (rec === undefined) return []
    const w = winner(rec.entries)
    return [w.value, ...rec.entries.filter((e) => e !== w).map((e) => e.value)]
  }

  /** Writes `value` under `key`, superseding every write to `key` this replica has seen. */
  set(key: string, value: V): Delta<V> {
    assertKey(key)
    assertValue(value)
    const ts = this.hlc.tick()
    const c = ++this.counter
    this.context.add(this.replicaId, c)
    const entry: Entry<V> = { r: this.replicaId, c, wall: ts.wall, logical: ts.logical, value }
    const rec = this.records.get(key)
    let dead: Dot[] = NO_DOTS
    if (rec === undefined) {
      this.insertRecord(key, [entry])
    } else {
      const old = rec.entries
      dead = old.length === 1 ? [dotOf(old[0]!)] : old.map(dotOf)
      rec.entries = [entry]
      this.rehash(rec)
      for (const e of old) this.forgetDot(e)
    }
    this.index.add(this.replicaId, c, key)
    this.version++
    const keys = new Map<string, KeyDelta<V>>()
    keys.set(key, { entries: [entry], dead })
    return { keys, ranges: EMPTY_RANGES }
  }

  /** Removes `key`: supersedes every write to it this replica has seen (a concurrent write wins). */
  delete(key: string): Delta<V> {
    assertKey(key)
    const rec = this.records.get(key)
    if (rec === undefined) return { keys: new Map(), ranges: EMPTY_RANGES }
    const dead = rec.entries.map(dotOf)
    this.deleteRecord(rec)
    this.version++
    const keys = new Map<string, KeyDelta<V>>()
    keys.set(key, { entries: [], dead })
    return { keys, ranges: EMPTY_RANGES }
  }

  /**
   * Merges a delta (or a whole state) into this replica. Idempotent, commutative and
   * associative. Returns the visible changes it caused: an `add` with the key's new winning
   * value, or a `remove`; nothing when no read would differ.
   */
  join(delta: Delta<V>): Diff<V>[] {
    // Each touched key's winning write before the join, to report what visibly changed.
    const before = new Map<string, Entry<V> | undefined>()
    let changed = false
    const dirty = new Set<KeyRecord<V>>()

    // Writes the delta names as superseded, scoped to their key.
    for (const [key, kd] of delta.keys) {
      if (kd.dead.length === 0) continue
      const rec = this.records.get(key)
      if (rec === undefined) continue
      for (const d of kd.dead) {
        const i = rec.entries.findIndex((e) => e.c === d.c && e.r === d.r)
        if (i < 0) continue
        if (!before.has(key)) before.set(key, rec === undefined ? undefined : winner(rec.entries))
        const [e] = rec.entries.splice(i, 1)
        this.forgetDot(e!)
        dirty.add(rec)
        changed = true
      }
    }

    // Every live write inside the delta's ranges that the delta does not carry is superseded.
    if (delta.ranges.size > 0) {
      let carried: Map<string, Set<number>> | undefined
      // Index columns are being iterated: forget dots only after the queries.
      const removed: Entry<V>[] = []
      for (const [r, iv] of delta.ranges) {
        for (let k = 0; k < iv.length; k += 2) {
          this.index.query(r, iv[k]!, iv[k + 1]!, (c, key) => {
            const rec = this.records.get(key)
            if (rec === undefined) return
            const i = rec.entries.findIndex((e) => e.c === c && e.r === r)
            if (i < 0) return
            carried ??= carriedDots(delta)
            if (carried.get(r)?.has(c)) return
            if (!before.has(key)) before.set(key, rec === undefined ? undefined : winner(rec.entries))
            const [e] = rec.entries.splice(i, 1)
            dirty.add(rec)
            changed = true
            removed.push(e!)
          })
        }
      }
      for (const e of removed) this.forgetDot(e)
    }

    // Writes this replica has never seen.
    for (const [key, kd] of delta.keys) {
      for (const e of kd.entries) {
        if (this.context.has(e.r, e.c)) continue
        if (kd.dead.length > 0 && kd.dead.some((d) => d.c === e.c && d.r === e.r)) continue
        // Share one string per replica id across all entries, whatever message brought them.
        const r = this.intern(e.r)
        const entry = e as { r: string } & Entry<V>
        entry.r = r
        this.context.add(r, e.c)
        this.hlc.observe(e.wall, e.logical)
        let rec = this.records.get(key)
        if (!before.has(key)) before.set(key, rec === undefined ? undefined : winner(rec.entries))
        if (rec === undefined) {
          rec = this.insertRecord(key, [entry])
        } else {
          rec.entries.push(entry)
          dirty.add(rec)
        }
        this.index.add(r, e.c, key)
        changed = true
      }
    }

    for (const rec of dirty) {
      if (rec.entries.length === 0) this.deleteRecord(rec)
      else this.rehash(rec)
    }

    // The delta's context: superseded dots and ranges.
    for (const kd of delta.keys.values()) {
      for (const d of kd.dead) if (this.context.add(this.intern(d.r), d.c)) changed = true
    }
    for (const [r, iv] of delta.ranges) {
      const ri = this.intern(r)
      for (let k = 0; k < iv.length; k += 2)
        if (this.context.addInterval(ri, iv[k]!, iv[k + 1]!)) changed = true
    }

    if (changed) this.version++
    const diffs: Diff<V>[] = []
    for (const [key, old] of before) {
      const rec = this.records.get(key)
      if (rec === undefined) {
        if (old !== undefined) diffs.push({ type: 'remove', key })
        continue
      }
      const now = winner(rec.entries)
      if (old === undefined || (old !== now && !valuesEqual(old.value, now.value))) {
        diffs.push({ type: 'add', key, value: now.value })
      }
    }
    return diffs
  }

  /** The whole replica as one delta: every live write and everything this replica has seen. */
  state(): Delta<V> {
    const keys = new Map<string, KeyDelta<V>>()
    for (const [key, rec] of this.records) keys.set(key, { entries: rec.entries.slice(), dead: [] })
    return { keys, ranges: this.context.toRanges() }
  }

  /** The anti-entropy state for peer `peer`: created on first use and kept until `unlink`. */
  link(peer: string): SyncLink<V> {
    let l = this.links.get(peer)
    if (l === undefined) {
      l = new SyncLink<V>(this, peer)
      this.links.set(peer, l)
    }
    return l
  }

  /** Drops the sync state kept for `peer` (it left the cluster). */
  unlink(peer: string): void {
    this.links.delete(peer)
  }

  // ——— internals used by SyncLink ———

  /** @internal The live writes inside `ranges`, grouped by key, with the ranges: what a peer lacks. */
  deltaFor(ranges: Map<string, number[]>): Delta<V> {
    const keys = new Map<string, KeyDelta<V>>()
    for (const [r, iv] of ranges) {
      for (let k = 0; k < iv.length; k += 2) {
        this.index.query(r, iv[k]!, iv[k + 1]!, (c, key) => {
          const rec = this.records.get(key)
          const e = rec?.entries.find((x) => x.c === c && x.r === r)
          if (e === undefined) return
          const kd = keys.get(key)
          if (kd === undefined) keys.set(key, { entries: [e], dead: [] })
          else (kd.entries as Entry<V>[]).push(e)
        })
      }
    }
    return { keys, ranges }
  }

  /** @internal Live entries of a key. */
  entriesOf(key: string): readonly Entry<V>[] | undefined {
    return this.records.get(key)?.entries
  }

  /**
   * @internal Applies a peer's complete listing of its live dots under a tree node: every
   * live write of ours under the node that the peer has seen but does not list is superseded
   * there. Returns the listed dots this replica knows to be superseded (the peer should drop them).
   */
  applyListing(
    level: number,
    prefix: number,
    listing: ReadonlyMap<string, readonly Dot[]>,
    peerContext: CausalContext,
  ): { diffs: Diff<V>[]; deadForPeer: Map<string, Dot[]> } {
    const dead = new Map<string, Dot[]>()
    const mine = this.tree.itemsUnderIfFew(level, prefix, Number.POSITIVE_INFINITY) ?? []
    for (const rec of mine) {
      const listed = listing.get(rec.key)
      const gone = rec.entries.filter(
        (e) => peerContext.has(e.r, e.c) && !listed?.some((d) => d.c === e.c && d.r === e.r),
      )
      if (gone.length > 0) dead.set(rec.key, gone.map(dotOf))
    }
    const deadForPeer = new Map<string, Dot[]>()
    for (const [key, dots] of listing) {
      const live = this.records.get(key)?.entries
      const known = dots.filter(
        (d) => this.context.has(d.r, d.c) && !live?.some((e) => e.c === d.c && e.r === d.r),
      )
      if (known.length > 0) deadForPeer.set(key, known)
    }
    const diffs =
      dead.size === 0
        ? []
        : this.join({
            keys: new Map([...dead].map(([k, d]) => [k, { entries: [], dead: d }])),
            ranges: EMPTY_RANGES,
          })
    return { diffs, deadForPeer }
  }

  private insertRecord(key: string, entries: Entry<V>[]): KeyRecord<V> {
    const rec: KeyRecord<V> = { key, kh: fnv1a(key), entries, h1: 0, h2: 0, pos: 0 }
    this.contentHash(rec)
    this.records.set(key, rec)
    this.tree.add(rec)
    return rec
  }

  private deleteRecord(rec: KeyRecord<V>): void {
    this.records.delete(rec.key)
    this.tree.remove(rec)
    for (const e of rec.entries) this.forgetDot(e)
    rec.entries = []
  }

  private rehash(rec: KeyRecord<V>): void {
    const o1 = rec.h1
    const o2 = rec.h2
    this.contentHash(rec)
    this.tree.rehash(rec, o1, o2)
  }

  private contentHash(rec: KeyRecord<V>): void {
    let x1 = rec.kh
    let x2 = ~rec.kh
    for (const e of rec.entries) {
      const rh = this.replicaHash(e.r)
      x1 ^= dotHash1(rh, e.c)
      x2 ^= dotHash2(rh, e.c)
    }
    rec.h1 = fmix(x1 ^ 0x5bd1e995)
    rec.h2 = fmix(x2 + 0x1b873593)
  }

  private forgetDot(e: Entry<V>): void {
    this.index.remove(e.r, this.isLive)
  }

  private readonly isLive = (r: string, c: number, key: string): boolean => {
    const rec = this.records.get(key)
    if (rec === undefined) return false
    for (const e of rec.entries) if (e.c === c && e.r === r) return true
    return false
  }

  private replicaHash(r: string): number {
    let h = this.replicaHashes.get(r)
    if (h === undefined) {
      h = fnv1a(r)
      this.replicaHashes.set(r, h)
    }
    return h
  }

  /** One string instance per replica id, however many deltas carried it. */
  private intern(r: string): string {
    let known = this.interned.get(r)
    if (known === undefined) {
      this.interned.set(r, r)
      known = r
    }
    return known
  }
}

function winner<V>(entries: readonly Entry<V>[]): Entry<V> {
  let w = entries[0]!
  for (let i = 1; i < entries.length; i++) {
    const e = entries[i]!
    if (compareWrites(e.wall, e.logical, e.r, w.wall, w.logical, w.r) > 0) w = e
  }
  return w
}

function dotOf(e: Dot): Dot {
  return { r: e.r, c: e.c }
}

function carriedDots<V>(delta: Delta<V>): Map<string, Set<number>> {
  const out = new Map<string, Set<number>>()
  for (const kd of delta.keys.values()) {
    for (const e of kd.entries) {
      let s = out.get(e.r)
      if (s === undefined) out.set(e.r, (s = new Set()))
      s.add(e.c)
    }
  }
  return out
}

function assertKey(key: unknown): asserts key is string {
  if (typeof key !== 'string') throw new InvalidArgumentError(`map keys must be strings, got ${typeof key}`)
}

function randomReplicaId(): string {
  const bytes = new Uint8Array(12)
  crypto.getRandomValues(bytes)
  return Buffer.from(bytes).toString('base64url')
}
