import { CausalContext } from './causal-context.js'
import { MAX_KEY_LENGTH } from './codec.js'
import { DigestTree, type TreeItem } from './digest-tree.js'
import { DotIndex } from './dot-index.js'
import { InvalidArgumentError } from './errors.js'
import { dotHash1, dotHash2, fmix, fnv1a } from './hash.js'
import { assertMaxDrift, compareWrites, DEFAULT_MAX_CLOCK_DRIFT, HybridClock } from './hybrid-clock.js'
import { KeyTable } from './key-table.js'
import { dotsOf, SyncLink } from './sync-link.js'
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
  /**
   * How far ahead of this replica's wall clock, in ms, a joined write's timestamp may be for
   * the replica's hybrid clock to move to it. A write further ahead is still stored and read
   * like any other (every replica keeps the timestamp it was written with, so all read the
   * same winner); only this replica's later writes do not inherit its time. Counted in
   * {@link AWLWWMap.stats}. A non-negative number; `Infinity` adopts every timestamp.
   * @default 60_000 ({@link DEFAULT_MAX_CLOCK_DRIFT})
   */
  maxClockDrift?: number
  /**
   * Byte budget of one anti-entropy message (`link(peer).generate()`). What a peer lacks
   * beyond it follows in later messages, each carrying only the causal context of the writes
   * it ships. A message is larger only when its fixed part (this replica's causal context and
   * digest root) plus one item (one write with its value, one tree listing) is: that item
   * then goes alone, counted in `SyncLinkStats.oversized`. An integer of at least
   * {@link MIN_SYNC_BYTES}; keep it below what the transport accepts in one message.
   * @default 1_048_576 ({@link DEFAULT_MAX_SYNC_BYTES}, 1 MiB)
   */
  maxSyncBytes?: number
  /**
   * Whether `join` also reports a key whose live writes changed while its winning value did
   * not — a concurrent write that loses joins as a sibling, a sibling is superseded, an equal
   * value is rewritten — as an `add` with the (unchanged) winner. For an application that
   * reads {@link AWLWWMap.siblings} and resolves them its own way: without it, such a join
   * reports nothing, though what `siblings(key)` returns changed. @default false
   */
  siblingDiffs?: boolean
}

/** Default {@link AWLWWMapOptions.maxSyncBytes}: 1 MiB. */
export const DEFAULT_MAX_SYNC_BYTES = 1 << 20
/** Smallest accepted {@link AWLWWMapOptions.maxSyncBytes}. */
export const MIN_SYNC_BYTES = 64

/** Counters of one replica, for metrics (see {@link AWLWWMap.stats}). */
export interface AWLWWMapStats {
  /**
   * Joined writes whose timestamp was more than `maxClockDrift` ms ahead of this replica's
   * wall clock: stored, but the replica's clock did not move to their time. Non-zero means
   * some replica's wall clock runs fast (or a peer sent a forged timestamp).
   */
  timestampsNotAdopted: number
  /**
   * Replica ids in this replica's causal context: every sync message carries one context
   * entry per id, so this is what {@link AWLWWMap.retire} keeps bounded.
   */
  replicaIds: number
  /** Replica ids retired and not yet forgotten ({@link AWLWWMap.retiredIds}). */
  retired: number
  /**
   * Joined items of retired replica ids that were ignored: live entries, superseded dots and
   * context intervals (see {@link AWLWWMap.retire}). Non-zero while some replica has not
   * retired an id yet; it stops growing once all have.
   */
  retiredIgnored: number
}

interface KeyRecord<V> extends TreeItem {
  readonly key: string
  /**
   * Live writes. Never changed in place, only replaced: deltas, `state()` and other replicas
   * share these arrays instead of copying one per key.
   */
  entries: readonly Entry<V>[]
}

const EMPTY_RANGES: ReadonlyMap<string, readonly number[]> = new Map()
const NO_DOTS: readonly Dot[] = []
const NO_ENTRIES: readonly Entry<never>[] = []

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
  private id: string
  private counter = 0
  private readonly hlc: HybridClock
  private readonly records = new Map<string, KeyRecord<V>>()
  /** @internal */ readonly context = new CausalContext()
  /** @internal */ readonly tree = new DigestTree<KeyRecord<V>>()
  private readonly index = new DotIndex()
  private readonly links = new Map<string, SyncLink<V>>()
  private readonly replicaHashes = new Map<string, number>()
  private readonly interned = new Map<string, string>()
  /** Replica ids whose dots are ignored (see `retire`). */
  private readonly retired = new Set<string>()
  private retiredIgnored = 0
  /** @internal Bumped on every state change; links use it to know when they are done. */
  version = 0
  /** Byte budget of one sync message (see {@link AWLWWMapOptions.maxSyncBytes}). */
  readonly maxSyncBytes: number
  private readonly siblingDiffs: boolean

  constructor(options: AWLWWMapOptions = {}) {
    const id = options.replicaId ?? randomReplicaId()
    if (typeof id !== 'string' || id.length === 0 || id.length > 64) {
      throw new InvalidArgumentError('replicaId must be a non-empty string of at most 64 characters')
    }
    this.id = id
    const maxClockDrift =
      options.maxClockDrift === undefined ? DEFAULT_MAX_CLOCK_DRIFT : options.maxClockDrift
    assertMaxDrift(maxClockDrift, 'maxClockDrift')
    this.hlc = new HybridClock(options.clock ?? Date, maxClockDrift)
    const budget = options.maxSyncBytes ?? DEFAULT_MAX_SYNC_BYTES
    if (typeof budget !== 'number' || !Number.isSafeInteger(budget) || budget < MIN_SYNC_BYTES) {
      throw new InvalidArgumentError(
        `maxSyncBytes must be an integer of at least ${MIN_SYNC_BYTES} (bytes per sync message), got ${String(budget)}`,
      )
    }
    this.maxSyncBytes = budget
    this.siblingDiffs = options.siblingDiffs === true
  }

  /**
   * This replica's id: the one its writes are made under. New for every process start, and
   * after {@link AWLWWMap.renewReplicaId}.
   */
  get replicaId(): string {
    return this.id
  }

  /** A snapshot of this replica's counters. */
  stats(): AWLWWMapStats {
    return {
      timestampsNotAdopted: this.hlc.timestampsNotAdopted,
      replicaIds: this.context.replicaCount,
      retired: this.retired.size,
      retiredIgnored: this.retiredIgnored,
    }
  }

  /** Number of keys with a value. */
  get size(): number {
    return this.records.size
  }

  /** The winning value of `key`, or undefined when it has none. */
  get(key: string): V | undefined {
    const rec = this.records.get(key)
    return rec === undefined ? undefined : winner(rec.entries).value
  }

  /** Whether `key` has a value. */
  has(key: string): boolean {
    return this.records.has(key)
  }

  /** The keys that have a value. */
  *keys(): IterableIterator<string> {
    yield* this.records.keys()
  }

  /** `[key, winning value]` pairs. */
  *entries(): IterableIterator<[string, V]> {
    for (const [key, rec] of this.records) yield [key, winner(rec.entries).value]
  }

  /** A snapshot of the map as a plain `Map` of winning values. */
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
    // Nearly every key has one live write: no sorting, one array.
    if (rec.entries.length === 1) return [rec.entries[0]!.value]
    const w = winner(rec.entries)
    return [w.value, ...rec.entries.filter((e) => e !== w).map((e) => e.value)]
  }

  /** Writes `value` under `key`, superseding every write to `key` this replica has seen. */
  set(key: string, value: V): Delta<V> {
    assertKey(key)
    assertValue(value)
    const hlc = this.hlc
    hlc.advance()
    const r = this.id
    const c = ++this.counter
    this.context.add(r, c)
    const entry: Entry<V> = { r, c, wall: hlc.lastWall, logical: hlc.lastLogical, value }
    // One array for the record and the delta (entry arrays are never changed in place).
    const entries = [entry]
    const rec = this.records.get(key)
    let dead = NO_DOTS
    if (rec === undefined) {
      this.insertRecord(key, entries)
    } else {
      const old = rec.entries
      dead = old.length === 1 ? [dotOf(old[0]!)] : old.map(dotOf)
      rec.entries = entries
      this.rehash(rec)
      for (const e of old) this.forgetDot(e)
    }
    this.index.add(r, c, key)
    this.version++
    return { keys: new KeyTable([key], [{ entries, dead }]), ranges: EMPTY_RANGES }
  }

  /** Removes `key`: supersedes every write to it this replica has seen (a concurrent write wins). */
  delete(key: string): Delta<V> {
    assertKey(key)
    const rec = this.records.get(key)
    if (rec === undefined) return { keys: new KeyTable([], []), ranges: EMPTY_RANGES }
    const dead = rec.entries.map(dotOf)
    this.deleteRecord(rec)
    this.version++
    return { keys: new KeyTable([key], [{ entries: NO_ENTRIES, dead }]), ranges: EMPTY_RANGES }
  }

  /**
   * Merges a delta (or a whole state) into this replica. Idempotent, commutative and
   * associative. Returns the visible changes it caused: an `add` with the key's new winning
   * value, or a `remove`; nothing when no read would differ — with
   * {@link AWLWWMapOptions.siblingDiffs}, an `add` for every key whose live writes changed.
   */
  join(delta: Delta<V>): Diff<V>[] {
    // Each touched record with its winning write before the join (undefined for a record
    // this join creates), in first-touch order, to report what visibly changed. Two arrays,
    // not a Map keyed by key: a full-state join touches every key once, and only records that
    // existed before can be touched twice (those are deduplicated by `seen`).
    const touched: KeyRecord<V>[] = []
    const touchedOld: (Entry<V> | undefined)[] = []
    let seen: Set<string> | undefined
    const noteExisting = (rec: KeyRecord<V>): void => {
      if (seen === undefined) seen = new Set()
      else if (seen.has(rec.key)) return
      seen.add(rec.key)
      touched.push(rec)
      touchedOld.push(winner(rec.entries))
    }
    let changed = false
    const dirty = new Set<KeyRecord<V>>()
    // A replica with no keys (one bootstrapping from a peer's state) need not look each
    // delta key up: nothing below creates a record before the last loop, and a delta names
    // each key once.
    const wasEmpty = this.records.size === 0
    // Delta keys are walked with forEach: for the KeyTables this package builds it is an
    // index loop, with no iterator or [key, value] pair allocated per key.
    const keys = delta.keys

    // Writes the delta names as superseded, scoped to their key.
    if (!wasEmpty) {
      keys.forEach((kd, key) => {
        if (kd.dead.length === 0) return
        const rec = this.records.get(key)
        if (rec === undefined) return
        for (const d of kd.dead) {
          const i = rec.entries.findIndex((e) => e.c === d.c && e.r === d.r)
          if (i < 0) continue
          noteExisting(rec)
          const e = rec.entries[i]!
          rec.entries = without(rec.entries, i)
          this.forgetDot(e)
          dirty.add(rec)
          changed = true
        }
      })
    }

    // Every live write inside the delta's ranges that the delta does not carry is superseded.
    if (delta.ranges.size > 0 && !wasEmpty) {
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
            noteExisting(rec)
            const e = rec.entries[i]!
            rec.entries = without(rec.entries, i)
            dirty.add(rec)
            changed = true
            removed.push(e)
          })
        }
      }
      for (const e of removed) this.forgetDot(e)
    }

    // Writes this replica has never seen.
    let lastId: string | undefined
    let lastInterned = ''
    keys.forEach((kd, key) => {
      const es = kd.entries
      const dead = kd.dead
      let rec: KeyRecord<V> | undefined
      let looked = wasEmpty
      let created = false
      for (let k = 0; k < es.length; k++) {
        const e = es[k]!
        if (this.context.has(e.r, e.c)) continue
        if (dead.length > 0 && dead.some((d) => d.c === e.c && d.r === e.r)) continue
        if (this.retired.size > 0 && this.retired.has(e.r)) {
          this.retiredIgnored++
          continue
        }
        // Share one string per replica id across all entries, whatever message brought them;
        // entries mostly come in runs from one replica, so remember the last one.
        if (e.r !== lastId) {
          lastId = e.r
          lastInterned = this.intern(e.r)
        }
        const r = lastInterned
        const entry = e as { r: string } & Entry<V>
        entry.r = r
        this.context.add(r, e.c)
        // A write too far ahead is kept with its own timestamp (so every replica orders it
        // the same way); the clock just does not move to it (counted there).
        this.hlc.observe(e.wall, e.logical)
        if (!looked) {
          rec = this.records.get(key)
          looked = true
        }
        if (rec === undefined) {
          // A lone new write keeps the delta's array: entry arrays are never changed in place.
          rec = this.insertRecord(key, es.length === 1 ? es : [entry])
          touched.push(rec)
          touchedOld.push(undefined)
          created = true
        } else {
          if (!created) noteExisting(rec)
          rec.entries = appended(rec.entries, entry)
          dirty.add(rec)
        }
        this.index.add(r, e.c, key)
        changed = true
      }
    })

    for (const rec of dirty) {
      if (rec.entries.length === 0) this.deleteRecord(rec)
      else this.rehash(rec)
    }

    // The delta's context: superseded dots and ranges.
    const retired = this.retired
    keys.forEach((kd) => {
      for (const d of kd.dead) {
        if (retired.size > 0 && retired.has(d.r)) this.retiredIgnored++
        else if (this.context.add(this.intern(d.r), d.c)) changed = true
      }
    })
    for (const [r, iv] of delta.ranges) {
      if (retired.size > 0 && retired.has(r)) {
        this.retiredIgnored += iv.length / 2
        continue
      }
      const ri = this.intern(r)
      for (let k = 0; k < iv.length; k += 2)
        if (this.context.addInterval(ri, iv[k]!, iv[k + 1]!)) changed = true
    }

    if (changed) this.version++
    const diffs: Diff<V>[] = []
    for (let k = 0; k < touched.length; k++) {
      const rec = touched[k]!
      const old = touchedOld[k]
      // A record left without entries was deleted by this join (and none is created after).
      if (rec.entries.length === 0) {
        if (old !== undefined) diffs.push({ type: 'remove', key: rec.key })
        continue
      }
      const now = winner(rec.entries)
      // A touched record's live writes changed; whether a read of its winner did:
      if (this.siblingDiffs || old === undefined || (old !== now && !valuesEqual(old.value, now.value))) {
        diffs.push({ type: 'add', key: rec.key, value: now.value })
      }
    }
    return diffs
  }

  /**
   * Joins a delta that replica `peer` sent (gossip of its own writes, or any delta it built
   * from its own state), and records on the link to `peer`, if there is one, that `peer` has
   * seen every dot of it: anti-entropy will not send those writes back to it
   * (see {@link SyncLink.observe}). If the link was idle before, the join does not wake it:
   * a write `peer` made itself is no news to `peer`. Same result as {@link join} otherwise.
   *
   * Only pass deltas `peer` produced from its own replica: a delta it merely relayed may hold
   * writes it has not joined, which this link would then hold back from it for up to two
   * rounds of its reports.
   */
  joinFrom(peer: string, delta: Delta<V>): Diff<V>[] {
    const l = this.links.get(peer)
    const wasIdle = l?.idle === true
    const diffs = this.join(delta)
    if (l !== undefined) {
      l.observe(delta)
      if (wasIdle) l.stayQuiet()
    }
    return diffs
  }

  /**
   * Records that `delta` reaches every linked peer by a broadcast: a local write the caller
   * sends every peer itself, or a delta a peer sent every peer that way. Every link assumes
   * its peer has it ({@link SyncLink.observe}), so a peer's report that arrives before the
   * broadcast does is not answered with it. The assumption is checked like any other: if two
   * of the peer's reports still lack a dot, it is sent after all. `except`: a peer whose link
   * already observed it (the sender, after {@link AWLWWMap.joinFrom}).
   */
  broadcast(delta: Delta<V>, except?: string): void {
    // The delta's dots are gathered once, as intervals, and each link merges those: adding
    // every dot to every link cost each replica O(peers × dots) per delta, a cluster O(n²).
    let dots: CausalContext | undefined
    for (const [peer, l] of this.links) {
      if (peer === except) continue
      dots ??= dotsOf(delta)
      l.observeDots(dots)
    }
  }

  /**
   * Wakes every link ({@link SyncLink.wake}) for a broadcast that could not be sent after all:
   * what it carried is not on its way, so the assumptions expire.
   */
  wakeLinks(): void {
    for (const l of this.links.values()) l.wake({ expireAssumptions: true })
  }

  // ——— compaction: retiring the replica ids of processes that are gone ———

  /** The replica ids this replica's causal context holds dots of (its own included, once it wrote). */
  replicaIds(): string[] {
    return [...this.context.replicas]
  }

  /** Number of live writes (winning or not) of replica `replicaId` in this replica. */
  liveCount(replicaId: string): number {
    let n = 0
    this.liveWrites(replicaId, 0, Number.MAX_SAFE_INTEGER, () => {
      n++
      return true
    })
    return n
  }

  /**
   * Re-issues every live write of replica `replicaId` under this replica's id: same key, same
   * value, same timestamp, a new dot, superseding only that write (its siblings stay). No read
   * changes — the same value wins by the same timestamp (only an exact timestamp tie with a
   * concurrent write of another value may be ordered differently, as ties go by replica id) —
   * and a concurrent newer write still wins over it. A write that already has a twin (a live
   * write of the same value and timestamp by another replica, e.g. another replica's rebase) is
   * superseded without a new one. Returns the delta to broadcast; after it, `replicaId` holds
   * no live write here and can be {@link AWLWWMap.retire | retired}. Throws
   * InvalidArgumentError for this replica's own id.
   */
  rebase(replicaId: string): Delta<V> {
    if (replicaId === this.id) throw new InvalidArgumentError('a replica cannot rebase its own writes')
    const found: [string, Entry<V>][] = []
    this.liveWrites(replicaId, 0, Number.MAX_SAFE_INTEGER, (e, key) => {
      found.push([key, e])
      return true
    })
    const out = new Map<string, { entries: Entry<V>[]; dead: Dot[] }>()
    for (const [key, e] of found) {
      const rec = this.records.get(key)!
      const twin = rec.entries.some(
        (x) =>
          x !== e &&
          x.r !== replicaId &&
          x.wall === e.wall &&
          x.logical === e.logical &&
          valuesEqual(x.value, e.value),
      )
      let kd = out.get(key)
      if (kd === undefined) out.set(key, (kd = { entries: [], dead: [] }))
      kd.dead.push(dotOf(e))
      const i = rec.entries.indexOf(e)
      if (twin) {
        rec.entries = without(rec.entries, i)
      } else {
        const c = ++this.counter
        this.context.add(this.id, c)
        const n: Entry<V> = { r: this.id, c, wall: e.wall, logical: e.logical, value: e.value }
        const next = rec.entries.slice()
        next[i] = n
        rec.entries = next
        this.index.add(this.id, c, key)
        kd.entries.push(n)
      }
      this.rehash(rec)
      this.forgetDot(e)
    }
    if (found.length > 0) this.version++
    return { keys: out, ranges: EMPTY_RANGES }
  }

  /**
   * Retires replica id `replicaId` — a process that is gone, whose writes every replica has
   * superseded or {@link AWLWWMap.rebase | rebased} — so the causal context, and every sync
   * message, stops carrying it. Its dots leave the context and every link's kept state, and
   * from now on every entry, superseded dot and context interval of `replicaId` that a `join`,
   * `joinFrom` or `link(peer).receive` brings is ignored (counted in `stats().retiredIgnored`):
   * the id can never re-enter this replica. Every replica must retire the same ids (the
   * application decides which, e.g. through a key of the map) for their contexts to be equal
   * again; meanwhile links keep syncing. Returns false, and changes nothing, while this replica
   * holds a live write of `replicaId`, and for this replica's own id; true once it is retired.
   */
  retire(replicaId: string): boolean {
    if (replicaId === this.id) return false
    if (this.retired.has(replicaId)) return true
    if (this.liveCount(replicaId) > 0) return false
    this.retired.add(replicaId)
    this.context.delete(replicaId)
    this.index.drop(replicaId)
    this.interned.delete(replicaId)
    this.replicaHashes.delete(replicaId)
    for (const l of this.links.values()) l.forgetReplica(replicaId)
    // Contexts changed: links must compare again.
    this.version++
    return true
  }

  /** The retired replica ids not yet forgotten (see {@link AWLWWMap.forgetRetired}). */
  retiredIds(): string[] {
    return [...this.retired]
  }

  /**
   * Forgets that `replicaId` was retired, so the retired set stays bounded: from then on its
   * dots are accepted again. Call it once no replica can still send them (every replica has
   * retired it). Returns whether it was retired.
   */
  forgetRetired(replicaId: string): boolean {
    return this.retired.delete(replicaId)
  }

  /**
   * Continues under a new random replica id (the old one's live writes stay until rebased).
   * For a replica whose own id the others retired while it was cut off: their joins ignore its
   * writes under that id, so it renews, then {@link AWLWWMap.rebase | rebases} and retires its
   * old id. Returns the new id.
   */
  renewReplicaId(): string {
    this.id = randomReplicaId()
    this.counter = 0
    return this.id
  }

  /** @internal Drops the retired ids from a context a peer reported. */
  dropRetired(context: CausalContext): void {
    if (this.retired.size === 0) return
    for (const r of this.retired) context.delete(r)
  }

  /** The whole replica as one delta: every live write and everything this replica has seen. */
  state(): Delta<V> {
    const names: string[] = []
    const deltas: KeyDelta<V>[] = []
    // Entry arrays are never changed in place, so the state can share them.
    for (const [key, rec] of this.records) {
      names.push(key)
      deltas.push({ entries: rec.entries, dead: NO_DOTS })
    }
    return { keys: new KeyTable(names, deltas), ranges: this.context.toRanges() }
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

  /**
   * @internal Calls `visit` with every live write of replica `r` whose counter is in
   * `[lo, hi]`, in counter order, and its key; stops (returning false) when `visit` returns false.
   */
  liveWrites(r: string, lo: number, hi: number, visit: (e: Entry<V>, key: string) => boolean): boolean {
    return this.index.query(r, lo, hi, (c, key) => {
      const e = this.records.get(key)?.entries.find((x) => x.c === c && x.r === r)
      return e === undefined ? true : visit(e, key)
    })
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

  private insertRecord(key: string, entries: readonly Entry<V>[]): KeyRecord<V> {
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

/** A copy of `entries` without its i-th element (entry arrays are never changed in place). */
function without<V>(entries: readonly Entry<V>[], i: number): Entry<V>[] {
  const out = entries.slice()
  out.splice(i, 1)
  return out
}

function appended<V>(entries: readonly Entry<V>[], e: Entry<V>): Entry<V>[] {
  const out = entries.slice()
  out.push(e)
  return out
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
  // What every replica's decoder accepts: a longer key would make the delta carrying it, and
  // every write merged with it, undeliverable.
  if (key.length > MAX_KEY_LENGTH)
    throw new InvalidArgumentError(`map keys must be at most ${MAX_KEY_LENGTH} characters, got ${key.length}`)
}

function randomReplicaId(): string {
  const bytes = new Uint8Array(12)
  crypto.getRandomValues(bytes)
  return Buffer.from(bytes).toString('base64url')
}
