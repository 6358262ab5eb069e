import type { AWLWWMap } from './aw-lww-map.js'
import { CausalContext } from './causal-context.js'
import {
  decodeDots,
  decodeKey,
  decodeKeys,
  decodeRanges,
  decodeReplicas,
  dotSize,
  encodeKeys,
  encodeRanges,
  entrySize,
  KIND_SYNC,
  keyPartSize,
  numberSize,
  pack,
  ReplicaTable,
  stringSize,
  unpackMessage,
  WIRE_VERSION,
} from './codec.js'
import { MAX_LEVEL } from './digest-tree.js'
import { DecodeError } from './errors.js'
import type { Delta, Diff, Dot, Entry, KeyDelta } from './types.js'

/** A tree node holding at most this many keys is listed rather than split into children. */
const LIST_LIMIT = 16
const FANOUT = 16

/** Counters of one link, for metrics. */
export interface SyncLinkStats {
  /** Messages returned by `generate`. */
  messagesSent: number
  /** Messages taken by `receive`. */
  messagesReceived: number
  /** Bytes returned by `generate`. */
  bytesSent: number
  /** Bytes taken by `receive`. */
  bytesReceived: number
  /** Messages refused by `receive` because they did not decode. */
  rejected: number
  /**
   * Messages `generate` cut at the byte budget (`maxSyncBytes`): the rest of what the peer
   * lacks follows in later messages.
   */
  cut: number
  /**
   * Messages larger than the budget: their fixed part (context, root) plus a single item
   * (one write with a large value, one listing) did not fit, so that item went alone.
   */
  oversized: number
  /**
   * Items carried by messages returned by `generate`: live writes, superseded dots, context
   * intervals, tree nodes and listings. A message with none only reports the sender's state.
   */
  itemsSent: number
  /** Items carried by messages taken by `receive` (as {@link SyncLinkStats.itemsSent}). */
  itemsReceived: number
  /**
   * Messages that left out the writes the peer lacks because they exceeded the
   * {@link GenerateOptions.pushBytes} limit: the peer, far behind, pulls them.
   */
  pushesHeldBack: number
}

/** Options of {@link SyncLink.generate}. */
export interface GenerateOptions {
  /**
   * Push writes the peer lacks only when all of them fit in this many bytes; otherwise the
   * message carries none of them (only this replica's context and root, and any repair
   * queued by the tree descent). For messages a replica sends on its own initiative: a peer
   * missing a few writes gets them at once, while a peer far behind (a joiner, a node back
   * from a partition) is not sent the same bulk by every replica at the same time — it pulls
   * the bulk from one of them, whose replies (generated without this option) carry it in
   * `maxSyncBytes`-sized pieces. Unset: no limit (every message carries what the peer lacks,
   * up to the byte budget).
   */
  pushBytes?: number
}

/**
 * Anti-entropy with one peer: a pull-based exchange of small messages that leaves both
 * replicas equal, whatever deltas were lost before, in bytes and time that follow the size
 * of the difference.
 *
 * Every message carries the sender's causal context and the root of its digest tree, so
 * each side knows what the other has seen (a peer's context is its acknowledgement):
 * 1. writes the peer has not seen go to it, with the context intervals they came from
 *    (context is never wider than the writes it ships), at most `maxSyncBytes` per message;
 *    the rest follows in later messages;
 * 2. once both have seen the same writes, any remaining difference is a write that is live
 *    on one side and superseded on the other; the sides descend their digest trees
 *    (16-ary, by key hash) to the few keys that differ and exchange the superseded dots;
 * 3. a message with `eq` says "we are equal as far as I know"; a side that receives it and
 *    agrees falls silent, and `generate()` returns null until something changes.
 *
 * What gossip delivers is not sent again: a write goes to the peer only when this replica
 * already held it when the peer's latest message (its report) arrived and that report lacks
 * it — a write that arrived since is announced by the context alone, giving gossip the time
 * to deliver it — and not while the peer is assumed to have it (it was sent, or the peer
 * gossiped it: {@link SyncLink.observe}) and no second report has contradicted that.
 *
 * Nothing relies on a message arriving: a side that is not sure both are equal keeps
 * answering `generate()` with a fresh message (a resend), assumptions that reports do not
 * confirm expire after two of them, and each message is complete in itself, so a lost one
 * costs a round or two, never a stuck link. What a peer lacks is computed from the two
 * replicas' states; a link keeps only the peer's last report and a few intervals.
 */
export class SyncLink<V> {
  /** The peer's context as of its latest message (its report). */
  private peerContext: CausalContext | undefined
  private peerRoot: [number, number] | undefined
  /** This replica's context when the peer's latest report arrived. */
  private contextAtReport: CausalContext | undefined
  /** Dots the peer is assumed to have (sent to it, or gossiped by it) since its latest report. */
  private assumedNew = new CausalContext()
  /** Such dots from before the latest report that it did not confirm: dropped at the next one. */
  private assumedOld = new CausalContext()
  private owe = false
  private peerAhead = false
  private quietAt = -1
  /**
   * The peer's latest report lacked only writes it is assumed to have (sent to it, or
   * broadcast: on their way): agreement but for writes in flight (see {@link SyncLink.settled}).
   */
  private agreedInFlight = false
  /** Nodes whose 16 children's hashes go in the next message, as (level, prefix). */
  private pendingNodes: [number, number][] = []
  private pendingListings: [number, number][] = []
  private pendingDead = new Map<string, Dot[]>()
  /** Counters of this link. */
  readonly stats: SyncLinkStats = {
    messagesSent: 0,
    messagesReceived: 0,
    bytesSent: 0,
    bytesReceived: 0,
    rejected: 0,
    cut: 0,
    oversized: 0,
    itemsSent: 0,
    itemsReceived: 0,
    pushesHeldBack: 0,
  }

  /** @internal Use `map.link(peer)`. */
  constructor(
    private readonly map: AWLWWMap<V>,
    /** The peer's replica id. */
    readonly peer: string,
  ) {}

  /** True when, as far as this side knows, both replicas are equal and nothing is owed. */
  get idle(): boolean {
    return !this.owe && !this.ahead() && this.quietAt === this.map.version && !this.hasPending()
  }

  /**
   * True when the link needs no exchange for its own sake: the two replicas agreed at least
   * once since the link was created or woken — or the peer's latest report lacked only writes
   * it is assumed to have (sent to it, or broadcast: on their way) — nothing is owed to the
   * peer, the peer is not ahead, and no repair is queued. Changes since do not unsettle it — a
   * link can be settled without being {@link SyncLink.idle}. For a caller that broadcasts
   * every write ({@link AWLWWMap.broadcast}): it runs exchanges on the links that are not
   * settled, and audits the settled ones that are not idle now and then ({@link SyncLink.wake}),
   * which finds what the broadcast lost, and spends no exchange on what it delivered — nor on
   * writes still on their way while writes keep coming (replicas are then never equal at any
   * one moment).
   */
  get settled(): boolean {
    return (this.quietAt >= 0 || this.agreedInFlight) && !this.owe && !this.ahead() && !this.hasPending()
  }

  /**
   * Makes the link neither idle nor settled until its next exchange ends in agreement: an
   * audit. The exchange costs one round trip when both replicas are equal. A write the peer is
   * assumed to have (sent, broadcast) and that its report lacks is taken to be on its way, and
   * sent only if a second report lacks it too — the next audit, while writes keep coming.
   * `expireAssumptions`: no such write can still be on its way (the map has been quiet for
   * longer than a broadcast takes, or the broadcast failed): one report lacking it is enough,
   * and the audit repairs it in its second round trip.
   */
  wake(options: { expireAssumptions?: boolean } = {}): void {
    this.quietAt = -1
    this.agreedInFlight = false
    if (options.expireAssumptions === true) {
      this.assumedOld.merge(this.assumedNew)
      this.assumedNew = new CausalContext()
    }
  }

  /**
   * Records that the peer has seen every dot of `delta` (its live entries, its superseded
   * dots, its ranges) — e.g. a delta the peer gossiped, which it built from its own replica —
   * so `generate()` does not send those writes to it. An assumption, not a fact: if the
   * peer's next two reports still lack a dot, it is sent after all. `map.joinFrom(peer,
   * delta)` joins and observes in one call.
   */
  observe(delta: Delta<V>): void {
    addDots(this.assumedNew, delta)
  }

  /**
   * @internal {@link SyncLink.observe} of a delta whose dots were gathered once (`dotsOf`): a
   * broadcast is observed by every link, and a delta's dots are a few intervals (each writer's
   * counters run on), so each link merges those instead of adding every dot again.
   */
  observeDots(dots: CausalContext): void {
    this.assumedNew.merge(dots)
  }

  /**
   * True when the peer's latest report showed writes this replica had not seen once that
   * report was joined: the peer is ahead, and this replica should pull from it. A link that is
   * behind is never idle, so the side that lacks writes asks for them even when the side that
   * has them does not push (see {@link GenerateOptions.pushBytes}).
   */
  get behind(): boolean {
    return this.ahead()
  }

  /**
   * True when `generate(options)` would carry something beyond this replica's state: writes
   * the peer lacks (within `options.pushBytes`), or repairs queued by a tree descent.
   */
  hasToSend(options: GenerateOptions = {}): boolean {
    if (this.hasPending()) return true
    const lacking = this.lacking()
    return lacking.size > 0 && this.fits(lacking, options.pushBytes)
  }

  /** @internal A join the peer itself caused does not wake an idle link (see `map.joinFrom`). */
  stayQuiet(): void {
    this.quietAt = this.map.version
  }

  /**
   * The next message for the peer, or null when there is nothing to say. With
   * `options.pushBytes`, writes the peer lacks go only if all of them fit in that many bytes
   * (see {@link GenerateOptions}).
   */
  generate(options: GenerateOptions = {}): Uint8Array | null {
    if (this.idle) return null
    const m = this.map
    const root = m.tree.root()
    const eq = this.equalToPeer()
    const table = new ReplicaTable()
    const ctx = encodeRanges(m.context.toRanges(), table)
    const budget = new Budget(m.maxSyncBytes - fixedSize(table.ids, m.context))

    const keys = new Map<string, { entries: Entry<V>[]; dead: Dot[] }>()

    // Repairs found by the tree descent first: they are few and small.
    for (const [key, dots] of this.pendingDead) {
      let size = keyPartSize(key)
      for (const d of dots) size += dotSize(table.ref(d.r), d.c)
      if (!budget.take(size)) break
      keys.set(key, { entries: [], dead: dots.slice() })
      this.pendingDead.delete(key)
    }
    const listings: unknown[] = []
    while (this.pendingListings.length > 0) {
      const [level, prefix] = this.pendingListings[0]!
      const part: unknown[] = [level, prefix]
      let size = 5 + numberSize(level) + numberSize(prefix)
      for (const rec of m.tree.itemsUnderIfFew(level, prefix, Number.POSITIVE_INFINITY) ?? []) {
        const dots: number[] = []
        size += stringSize(rec.key) + 5
        for (const e of rec.entries) {
          const ref = table.ref(e.r)
          dots.push(ref, e.c)
          size += dotSize(ref, e.c)
        }
        part.push(rec.key, dots)
      }
      if (!budget.take(size)) break
      listings.push(part)
      this.pendingListings.shift()
    }
    // Children hashes go as raw bytes, 16 × 8 per node: half the size of MessagePack ints.
    const nodes: unknown[] = []
    while (this.pendingNodes.length > 0) {
      const [level, prefix] = this.pendingNodes[0]!
      if (!budget.take(NODE_SIZE)) break
      const hashes = new Uint8Array(FANOUT * 8)
      const view = new DataView(hashes.buffer)
      for (let i = 0; i < FANOUT; i++) {
        const [h1, h2] = m.tree.hash(level + 1, prefix * FANOUT + i)
        view.setUint32(8 * i, h1)
        view.setUint32(8 * i + 4, h2)
      }
      nodes.push(level, prefix, hashes)
      this.pendingNodes.shift()
    }

    // What the peer lacks: every live write inside the intervals sent, and the intervals cut
    // where the budget ran out, so the context shipped never covers a write left out.
    const ranges = new Map<string, number[]>()
    let lacking = this.lacking()
    if (lacking.size > 0 && !this.fits(lacking, options.pushBytes)) {
      this.stats.pushesHeldBack++
      lacking = NO_RANGES
    }
    let items = listings.length + nodes.length / 3
    for (const k of keys.values()) items += k.dead.length
    for (const [r, iv] of lacking) {
      if (budget.full) break
      const ref = table.ref(r)
      if (!budget.take(RANGE_PART_SIZE + numberSize(ref), false)) break
      const sent: number[] = []
      for (let k = 0; k < iv.length && !budget.full; k += 2) {
        const lo = iv[k]!
        const hi = iv[k + 1]!
        if (!budget.take(numberSize(lo) + numberSize(hi), false)) break
        let cutAt = hi
        m.liveWrites(r, lo, hi, (e, key) => {
          const known = keys.get(key)
          const size = entrySize(e, ref) + (known === undefined ? keyPartSize(key) : 0)
          if (!budget.take(size)) {
            cutAt = e.c - 1
            return false
          }
          if (known === undefined) keys.set(key, { entries: [e], dead: [] })
          else known.entries.push(e)
          items++
          return true
        })
        if (cutAt >= lo) {
          sent.push(lo, cutAt)
          items++
        }
        if (cutAt < hi) break
      }
      if (sent.length > 0) {
        ranges.set(r, sent)
        for (let k = 0; k < sent.length; k += 2) this.assumedNew.addInterval(r, sent[k]!, sent[k + 1]!)
      }
    }

    const bytes = pack([
      WIRE_VERSION,
      KIND_SYNC,
      table.ids,
      ctx,
      root[0],
      root[1],
      eq ? 1 : 0,
      encodeKeys(keys, table),
      encodeRanges(ranges, table),
      nodes,
      listings,
    ])

    this.owe = false
    if (eq) this.quietAt = m.version
    if (budget.full) this.stats.cut++
    if (bytes.length > m.maxSyncBytes) this.stats.oversized++
    this.stats.messagesSent++
    this.stats.bytesSent += bytes.length
    this.stats.itemsSent += items
    return bytes
  }

  /**
   * Applies a message from the peer. Returns the visible changes it caused. Throws
   * {@link DecodeError} on bytes that are not a valid message (the replica is untouched).
   */
  receive(bytes: Uint8Array): Diff<V>[] {
    let msg: SyncMessage<V>
    try {
      msg = decodeSync<V>(bytes)
    } catch (err) {
      this.stats.rejected++
      throw err
    }
    this.stats.messagesReceived++
    this.stats.bytesReceived += bytes.length
    let items = msg.listings.length + msg.nodes.length / FANOUT
    msg.keys.forEach((kd) => {
      items += kd.entries.length + kd.dead.length
    })
    for (const iv of msg.ranges.values()) items += iv.length / 2
    this.stats.itemsReceived += items
    const m = this.map
    m.dropRetired(msg.context)
    const diffs = m.join({ keys: msg.keys, ranges: msg.ranges })

    for (const l of msg.listings) {
      const r = m.applyListing(l.level, l.prefix, l.keys, msg.context)
      diffs.push(...r.diffs)
      for (const [key, dots] of r.deadForPeer) {
        const known = this.pendingDead.get(key)
        this.pendingDead.set(key, known === undefined ? dots : [...known, ...dots])
      }
    }

    for (const n of msg.nodes) {
      const [h1, h2] = m.tree.hash(n.level, n.prefix)
      if (h1 === n.h1 && h2 === n.h2) continue
      if (n.level >= MAX_LEVEL || m.tree.itemsUnderIfFew(n.level, n.prefix, LIST_LIMIT) !== undefined) {
        this.pendingListings.push([n.level, n.prefix])
      } else {
        this.pendingNodes.push([n.level, n.prefix])
      }
    }

    this.peerContext = msg.context
    this.peerRoot = msg.root
    this.peerAhead = msg.context.minus(m.context).size > 0
    this.contextAtReport = m.context.clone()
    // Assumptions this report confirms are facts now; those it does not get one more report.
    this.assumedOld = CausalContext.fromRanges(this.assumedNew.minus(msg.context))
    this.assumedNew = new CausalContext()
    this.agreedInFlight = false
    if (this.equalToPeer()) {
      if (msg.eq) {
        this.quietAt = m.version
        this.owe = false
      } else {
        this.owe = true
      }
    } else if (m.context.equals(msg.context)) {
      this.owe = true
      // Both have seen the same writes yet differ: some write is superseded on one side
      // only. Find it by comparing the digest trees, starting below the root.
      if (!this.hasPending()) this.pendingNodes.push([0, 0])
    } else if (!this.hasPending() && this.lacking().size === 0) {
      // The peer lacks only writes it is assumed to have, and whatever it has that this
      // replica lacks makes the link `behind` until it arrives: nothing to say for now. Not
      // idle, though: the two differ, so an audit still comes to this link.
      this.agreedInFlight = true
      this.owe = false
      this.quietAt = -1
    } else {
      this.owe = true
    }
    return diffs
  }

  /** @internal Forgets every dot of a retired replica id kept for this peer (see `map.retire`). */
  forgetReplica(r: string): void {
    this.peerContext?.delete(r)
    this.contextAtReport?.delete(r)
    this.assumedNew.delete(r)
    this.assumedOld.delete(r)
    for (const [key, dots] of this.pendingDead) {
      const kept = dots.filter((d) => d.r !== r)
      if (kept.length === 0) this.pendingDead.delete(key)
      else if (kept.length !== dots.length) this.pendingDead.set(key, kept)
    }
  }

  /**
   * The dots to send: those this replica held when the peer's latest report arrived and that
   * the report lacks, less those the peer is assumed to have. Empty before any report.
   */
  private lacking(): Map<string, number[]> {
    if (this.peerContext === undefined || this.contextAtReport === undefined) return NO_RANGES
    const missing = this.contextAtReport.minus(this.peerContext)
    if (missing.size === 0) return missing
    const assumed = this.assumedOld.clone()
    assumed.merge(this.assumedNew)
    return CausalContext.fromRanges(missing).minus(assumed)
  }

  /**
   * Whether the live writes inside `lacking` fit in `limit` bytes (always, without a limit).
   * Walks at most `limit` bytes' worth of writes.
   */
  private fits(lacking: Map<string, number[]>, limit: number | undefined): boolean {
    if (limit === undefined) return true
    let size = 0
    for (const [r, iv] of lacking) {
      size += RANGE_PART_SIZE + 5
      for (let k = 0; k < iv.length && size <= limit; k += 2) {
        size += numberSize(iv[k]!) + numberSize(iv[k + 1]!)
        this.map.liveWrites(r, iv[k]!, iv[k + 1]!, (e, key) => {
          size += entrySize(e, 0xffff) + keyPartSize(key)
          return size <= limit
        })
      }
      if (size > limit) return false
    }
    return true
  }

  /**
   * Whether the peer's latest report still shows writes this replica lacks: once they arrived
   * by other means (gossip), the link is no longer behind.
   */
  private ahead(): boolean {
    if (
      this.peerAhead &&
      this.peerContext !== undefined &&
      this.peerContext.minus(this.map.context).size === 0
    )
      this.peerAhead = false
    return this.peerAhead
  }

  private equalToPeer(): boolean {
    if (this.peerContext === undefined || this.peerRoot === undefined) return false
    const [r1, r2] = this.map.tree.root()
    return r1 === this.peerRoot[0] && r2 === this.peerRoot[1] && this.map.context.equals(this.peerContext)
  }

  private hasPending(): boolean {
    return this.pendingNodes.length > 0 || this.pendingListings.length > 0 || this.pendingDead.size > 0
  }
}

const NO_RANGES: Map<string, number[]> = new Map()
/** Upper bound of one node's bytes: level, prefix, and 16 × 8 bytes of hashes. */
const NODE_SIZE = 1 + 5 + 2 + FANOUT * 8
/** Upper bound of a range part's bytes beyond its replica ref and bounds: the array header. */
const RANGE_PART_SIZE = 5

/**
 * Upper bound of a sync message's bytes before any item: the envelope, the replica table, the
 * sender's context, the root, the flag and four empty array headers.
 */
function fixedSize(ids: readonly string[], context: CausalContext): number {
  let n = 1 + 1 + 1 + 5 // array header, version, kind, table header
  for (const id of ids) n += stringSize(id)
  n += 5 // context header
  let ref = 0
  for (const [, iv] of context.entries()) {
    n += 5 + numberSize(ref++)
    for (let k = 0; k < iv.length; k++) n += numberSize(iv[k]!)
  }
  return n + 5 + 5 + 1 + 4 * 5
}

/**
 * Bytes left for a message's items. The first item is always taken, whatever its size, so
 * every message makes progress; after that, only what fits.
 */
class Budget {
  private used = 0
  private any = false
  /** Set once an item did not fit: nothing more goes in this message. */
  full = false
  constructor(private readonly limit: number) {}

  fits(n: number): boolean {
    return !this.full && (!this.any || this.used + n <= this.limit)
  }

  /**
   * Takes `n` bytes if they fit. `item` false is for the headers around items (a replica's
   * range part, an interval's bounds): they do not count as the message's first item, so the
   * item they were opened for still goes however large it is.
   */
  take(n: number, item = true): boolean {
    if (!this.fits(n)) {
      this.full = true
      return false
    }
    this.used += n
    if (item) this.any = true
    return true
  }
}

interface SyncMessage<V> {
  context: CausalContext
  root: [number, number]
  eq: boolean
  keys: ReadonlyMap<string, KeyDelta<V>>
  ranges: Map<string, number[]>
  nodes: { level: number; prefix: number; h1: number; h2: number }[]
  listings: { level: number; prefix: number; keys: Map<string, Dot[]> }[]
}

function decodeSync<V>(bytes: Uint8Array): SyncMessage<V> {
  const msg = unpackMessage(bytes, KIND_SYNC)
  if (msg.length !== 11) throw new DecodeError(`a sync message has 11 fields, got ${msg.length}`)
  const replicas = decodeReplicas(msg[2])
  const context = CausalContext.fromRanges(decodeRanges(msg[3], replicas))
  const root: [number, number] = [u32(msg[4]), u32(msg[5])]
  if (msg[6] !== 0 && msg[6] !== 1) throw new DecodeError('eq flag must be 0 or 1')
  const keys = decodeKeys<V>(msg[7], replicas)
  const ranges = decodeRanges(msg[8], replicas)

  const flat = msg[9]
  if (!Array.isArray(flat) || flat.length % 3 !== 0)
    throw new DecodeError('nodes must be a flat array of 3-tuples')
  const nodes: SyncMessage<V>['nodes'] = []
  for (let i = 0; i < flat.length; i += 3) {
    const [level, prefix] = node(flat[i], flat[i + 1], 0, MAX_LEVEL - 1)
    const hashes = flat[i + 2]
    if (!(hashes instanceof Uint8Array) || hashes.length !== FANOUT * 8)
      throw new DecodeError('malformed node hashes')
    const view = new DataView(hashes.buffer, hashes.byteOffset, hashes.byteLength)
    for (let c = 0; c < FANOUT; c++) {
      nodes.push({
        level: level + 1,
        prefix: prefix * FANOUT + c,
        h1: view.getUint32(8 * c),
        h2: view.getUint32(8 * c + 4),
      })
    }
  }

  if (!Array.isArray(msg[10])) throw new DecodeError('listings must be an array')
  const listings: SyncMessage<V>['listings'] = []
  for (const part of msg[10]) {
    if (!Array.isArray(part) || part.length < 2 || part.length % 2 !== 0)
      throw new DecodeError('malformed listing')
    const [level, prefix] = node(part[0], part[1], 1, MAX_LEVEL)
    const lk = new Map<string, Dot[]>()
    for (let i = 2; i < part.length; i += 2) lk.set(decodeKey(part[i]), decodeDots(part[i + 1], replicas))
    listings.push({ level, prefix, keys: lk })
  }
  return { context, root, eq: msg[6] === 1, keys, ranges, nodes, listings }
}

function u32(v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffffffff)
    throw new DecodeError('hash must be a u32')
  return v
}

function node(level: unknown, prefix: unknown, minLevel: number, maxLevel: number): [number, number] {
  if (typeof level !== 'number' || !Number.isInteger(level) || level < minLevel || level > maxLevel) {
    throw new DecodeError('tree level out of range')
  }
  if (typeof prefix !== 'number' || !Number.isInteger(prefix) || prefix < 0 || prefix >= 16 ** level) {
    throw new DecodeError('tree node out of range')
  }
  return [level, prefix]
}

/** Adds every dot of `delta` (its live entries, its superseded dots, its ranges) to `to`. */
function addDots(to: CausalContext, delta: Delta<unknown>): void {
  delta.keys.forEach((kd) => {
    for (const e of kd.entries) to.add(e.r, e.c)
    for (const d of kd.dead) to.add(d.r, d.c)
  })
  if (delta.ranges.size > 0) to.merge(delta.ranges)
}

/** @internal Every dot of `delta`, as a context (for {@link SyncLink.observeDots}). */
export function dotsOf(delta: Delta<unknown>): CausalContext {
  const dots = new CausalContext()
  addDots(dots, delta)
  return dots
}
