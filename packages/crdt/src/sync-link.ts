import type { AWLWWMap } from './aw-lww-map.js'
import { CausalContext } from './causal-context.js'
import {
  decodeDots,
  decodeKey,
  decodeKeys,
  decodeRanges,
  decodeReplicas,
  encodeKeys,
  encodeRanges,
  KIND_SYNC,
  pack,
  ReplicaTable,
  unpackMessage,
  WIRE_VERSION,
} from './codec.js'
import { MAX_LEVEL } from './digest-tree.js'
import { DecodeError } from './errors.js'
import type { Delta, Diff, Dot, KeyDelta } from './types.js'

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
}

/**
 * Anti-entropy with one peer: a pull-based exchange of small messages that leaves both
 * replicas equal, whatever deltas were lost before, in bytes and time that follow the size
 * of the difference.
 *
 * Every message carries the sender's causal context and the root of its digest tree, so
 * each side knows what the other has seen:
 * 1. writes the peer has not seen go to it, with the context intervals they came from
 *    (context is never wider than the writes it ships);
 * 2. once both have seen the same writes, any remaining difference is a write that is live
 *    on one side and superseded on the other; the sides descend their digest trees
 *    (16-ary, by key hash) to the few keys that differ and exchange the superseded dots;
 * 3. a message with `eq` says "we are equal as far as I know"; a side that receives it and
 *    agrees falls silent, and `generate()` returns null until something changes.
 *
 * Nothing relies on a message arriving: a side that is not sure both are equal keeps
 * answering `generate()` with a fresh message (a resend), and each message is complete in
 * itself, so a lost one costs a round, never a stuck link. There is no per-peer history to
 * keep or garbage-collect: what a peer lacks is computed from the two replicas' states.
 */
export class SyncLink<V> {
  private peerContext: CausalContext | undefined
  private peerRoot: [number, number] | undefined
  private owe = false
  private quietAt = -1
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
  }

  /** @internal Use `map.link(peer)`. */
  constructor(
    private readonly map: AWLWWMap<V>,
    /** The peer's replica id. */
    readonly peer: string,
  ) {}

  /** True when, as far as this side knows, both replicas are equal and nothing is owed. */
  get idle(): boolean {
    return !this.owe && this.quietAt === this.map.version && !this.hasPending()
  }

  /** The next message for the peer, or null when there is nothing to say. */
  generate(): Uint8Array | null {
    if (this.idle) return null
    const m = this.map
    const root = m.tree.root()
    const eq = this.equalToPeer()
    const table = new ReplicaTable()

    let keys: Map<string, KeyDelta<V>> = new Map()
    let ranges: Map<string, number[]> = new Map()
    if (this.peerContext !== undefined) {
      const missing = m.context.minus(this.peerContext)
      if (missing.size > 0) {
        const d: Delta<V> = m.deltaFor(missing)
        keys = d.keys as Map<string, KeyDelta<V>>
        ranges = missing
      }
    }
    for (const [key, dots] of this.pendingDead) {
      const kd = keys.get(key)
      keys.set(key, { entries: kd?.entries ?? [], dead: dots })
    }

    // Children hashes go as raw bytes, 16 × 8 per node: half the size of MessagePack ints.
    const nodes: unknown[] = []
    for (const [level, prefix] of this.pendingNodes) {
      const hashes = new Uint8Array(FANOUT * 8)
      const view = new DataView(hashes.buffer)
      for (let i = 0; i < FANOUT; i++) {
        const [h1, h2] = m.tree.hash(level + 1, prefix * FANOUT + i)
        view.setUint32(8 * i, h1)
        view.setUint32(8 * i + 4, h2)
      }
      nodes.push(level, prefix, hashes)
    }
    const listings: unknown[] = []
    for (const [level, prefix] of this.pendingListings) {
      const part: unknown[] = [level, prefix]
      for (const rec of m.tree.itemsUnderIfFew(level, prefix, Number.POSITIVE_INFINITY) ?? []) {
        const dots: number[] = []
        for (const e of rec.entries) dots.push(table.ref(e.r), e.c)
        part.push(rec.key, dots)
      }
      listings.push(part)
    }

    const ctx = encodeRanges(m.context.toRanges(), table)
    const encodedKeys = encodeKeys(keys, table)
    const encodedRanges = encodeRanges(ranges, table)
    const bytes = pack([
      WIRE_VERSION,
      KIND_SYNC,
      table.ids,
      ctx,
      root[0],
      root[1],
      eq ? 1 : 0,
      encodedKeys,
      encodedRanges,
      nodes,
      listings,
    ])

    this.pendingNodes = []
    this.pendingListings = []
    this.pendingDead = new Map()
    this.owe = false
    if (eq) this.quietAt = m.version
    this.stats.messagesSent++
    this.stats.bytesSent += bytes.length
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
    const m = this.map
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
    if (this.equalToPeer()) {
      if (msg.eq) {
        this.quietAt = m.version
        this.owe = false
      } else {
        this.owe = true
      }
    } else {
      this.owe = true
      // Both have seen the same writes yet differ: some write is superseded on one side
      // only. Find it by comparing the digest trees, starting below the root.
      if (!this.hasPending() && m.context.equals(msg.context)) this.pendingNodes.push([0, 0])
    }
    return diffs
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
