import { AWLWWMap, type Delta, type Diff, decodeDelta, encodeDelta, mergeDeltas } from '@nact-horde/crdt'
import { MessageTooLargeError, type Transport } from '@nact-horde/transport'
import createDebug from 'debug'
import type { Counters } from '../observability/counters.js'
import {
  CHILD,
  type ChildRecord,
  CONFIG_MEMBERS,
  livePlacement,
  MEMBER,
  type MemberRecord,
  readChild,
  readMember,
  readMemberList,
  readSuspicion,
  resolveChild,
  SUSPICION,
  type SuspicionRecord,
} from './records.js'

const log = createDebug('horde:replicator')

/**
 * Gossip of child records leaves at most once per window (membership writes have a fixed
 * window of their own: see Replicator.publish). A write made when none left in the last window
 * goes at once (the next turn, with the other writes of its turn); later ones wait for the
 * window to end and go together. Under a stream of writes every peer then receives one frame
 * per window, not one per write: per write, the work every receiver does for a frame is shared
 * by all the writes in it.
 *
 * The window grows with the peers up ({@link gossipWindow}). A flush costs one frame per peer
 * at both ends (a socket write, a wakeup, decryption, the muxer) at the relay, or at a node
 * that sends to every peer itself; a node that sends its writes to the relay sends one frame,
 * but the relay receives one from every writer. With a fixed window, the frames per second a
 * relay sends and receives, and every member receives, grew with the cluster: with 10 nodes,
 * the cluster's CPU per start fell by about a quarter against a fixed 50 ms window
 * (bench/RESULTS.md, "whole-cluster CPU per start"). The price: under a stream of writes a
 * record reaches a third node up to two windows after it was written (2 × 230 ms at 24 nodes;
 * 2 × 50 ms up to 6 nodes); a write alone still goes at once, and the start's reply carries it
 * to the caller.
 */
export const GOSSIP_WINDOW = 50
/** The window grows by this many ms per peer past GOSSIP_WINDOW / GOSSIP_WINDOW_PER_PEER peers. */
export const GOSSIP_WINDOW_PER_PEER = 10
/** The longest window, ms (reached at 25 peers). */
export const GOSSIP_WINDOW_MAX = 250

/**
 * The gossip window of a node with `peers` peers up, ms: GOSSIP_WINDOW_PER_PEER per peer,
 * within [GOSSIP_WINDOW, GOSSIP_WINDOW_MAX]. A node then sends at most about one frame per
 * GOSSIP_WINDOW_PER_PEER ms for gossip under a stream of writes, whatever the cluster size
 * (up to 25 peers); small clusters keep the shortest window.
 */
export function gossipWindow(peers: number): number {
  return Math.min(GOSSIP_WINDOW_MAX, Math.max(GOSSIP_WINDOW, peers * GOSSIP_WINDOW_PER_PEER))
}

/**
 * Windows after the last change before a round audits a link: gossip (a window at the writer,
 * one at the relay) has delivered the writes of that moment by then. The window is the one
 * the cluster's size gives every node ({@link gossipWindow} of the round's peers), not this
 * node's: what a round waits for is other nodes' gossip.
 */
export const AUDIT_GRACE_WINDOWS = 5
/** While changes keep coming, a round audits a link at least once every this many rounds. */
const AUDIT_EVERY = 5
/**
 * A quiet node with a relay whose link to the relay needs no audit audits one of its other
 * changed links every this many rounds (see syncRound): a slow sweep, a bounded cost per node
 * and per second, for a node the relay cannot audit.
 */
export const SWEEP_EVERY = 25
/**
 * Sync rounds with one peer per pass at most (each round is one request), not counting rounds
 * that pulled writes from a peer ahead of this replica: a joiner pulls the whole state in one pass.
 */
const MAX_SYNC_ROUNDS = 16
/**
 * A replica pushes the writes a peer lacks, in the requests it sends on its own, only when
 * they all fit in this many bytes: enough for what gossip lost, while a peer far behind (a
 * joiner, a node back from a partition) pulls the bulk from one replica instead of receiving
 * it from every replica at once (replies carry it, in `maxSyncBytes` pieces).
 */
export const PUSH_BYTES = 64 * 1024
/**
 * Byte budget of one sync message. A joiner pulls the state in pieces of this size, one per
 * round trip. The piece bounds how long one generate() or receive() holds the event loop:
 * joining 256 KiB pieces was a joiner's longest stall, and 64 KiB pieces did not make the
 * join slower (it is bound by CPU, not round trips). The longest stalls during a join are
 * recorded by the join section of bench/scale.bench.mjs (bench/RESULTS.md, with the runs at
 * 256 KiB as notes).
 */
export const SYNC_CHUNK_BYTES = 64 * 1024

/**
 * Writes merged into one gossiped delta, about: a child record takes 100–250 bytes, so a
 * merged delta stays within SYNC_CHUNK_BYTES without being encoded twice to find out.
 */
const MERGE_WRITES = 256

/** The time one turn may spend joining received gossip, ms (see Replicator.drainInbox). */
const INBOX_BUDGET_MS = 15

/**
 * Calls `flush` at most once per window: at once (the next timer turn) when it did not run in
 * the last window, else when that window ends. The gossip of child records and the membership
 * writes are each paced by one.
 */
class Paced {
  private timer: NodeJS.Timeout | undefined
  /** When `flush` last ran, or was taken over by a caller (performance.now()). */
  private last = Number.NEGATIVE_INFINITY

  constructor(private readonly flush: () => void) {}

  /** Schedules `flush` for the end of the current window of `window` ms, unless one is pending. */
  schedule(window: number): void {
    if (this.timer !== undefined) return
    this.timer = setTimeout(
      () => {
        this.taken()
        this.flush()
      },
      Math.max(0, this.last + window - performance.now()),
    )
  }

  /**
   * Cancels a pending flush, and counts it as run now: the caller sends what it would have sent
   * (its own way). False when none was pending.
   */
  take(): boolean {
    if (this.timer === undefined) return false
    clearTimeout(this.timer)
    this.taken()
    return true
  }

  private taken(): void {
    this.timer = undefined
    this.last = performance.now()
  }
}

/** What the replicator needs from the rest of the horde. */
export interface ReplicatorComponents {
  transport: Transport
  counters: Counters
  /** Topic of delta gossip, and protocol of anti-entropy requests. */
  topic: string
  syncProtocol: string
  requestTimeout: number
  /**
   * Whether remote state from `from` may be joined. The one admission check: gossip, sync
   * requests and replies, start replies and replicated writes all pass through it.
   */
  admits(from: string): boolean
  /** Called after the map changed under `key` (a local write or a join). */
  changed(key: string): void
  /**
   * The peer that forwards this node's gossip to every peer (see {@link Replicator.onRelay}),
   * or undefined when this node sends it to every peer itself.
   */
  relay(): string | undefined
}

/**
 * Owns the replicated map: local writes (gossiped in batches), joins of remote state (each
 * admitted first), and anti-entropy with peers. Typed reads of the records live here too, so
 * no other part reads raw map values.
 */
export class Replicator {
  /**
   * `siblingDiffs`: the supervisor resolves a child's concurrent records its own way (tombstone,
   * then epoch: resolveChild), not by the map's winner, so a record that joins as a losing
   * sibling can still change where the child runs — every join that changes a key is reported.
   */
  readonly map = new AWLWWMap<unknown>({ maxSyncBytes: SYNC_CHUNK_BYTES, siblingDiffs: true })
  /** This node's own child-record writes, to gossip in the next window (through the relay, if any). */
  private gossipOut: Delta<unknown>[] = []
  /** The writes of peers this node relays: to every peer in the next window. */
  private directOut: Delta<unknown>[] = []
  /** This node's membership writes: to every peer, in their own window (see publish). */
  private urgentOut: Delta<unknown>[] = []
  private readonly urgent = new Paced(() => this.flushUrgent())
  /** Relayed deltas that cannot be merged with others (they carry context ranges): sent as they came. */
  private directBytes: Uint8Array[] = []
  private readonly gossip = new Paced(() => this.flushGossip())
  /** The pass running with each peer. */
  private readonly syncing = new Map<string, Promise<void>>()
  /** The peer this replica pulls a bulk of writes from; passes with other peers wait their turn. */
  private feeder: string | undefined
  /** Set after the first pass that caught this replica up: until then passes run one at a time (see syncWith). */
  private synced = false
  /** Where the next periodic round starts in the list of peers (round robin). */
  private cursor = 0
  /** Peers whose passes ended without agreement: how many in a row, and rounds still to skip. */
  private readonly backoff = new Map<string, { failures: number; skip: number }>()
  /** Where the next audit of a settled link starts looking in the list of peers. */
  private auditCursor = 0
  /** Rounds without an audit while writes kept coming (see syncRound). */
  private busyRounds = 0
  /** Quiet rounds with a relay whose link needed no audit, since the last sweep (see syncRound). */
  private sweepRounds = 0
  /** Where the next sweep starts looking in the list of peers: each node starts at its own place. */
  private sweepCursor = Math.floor(Math.random() * 1024)
  /** When the map last changed (performance.now()). */
  private lastChange = Number.NEGATIVE_INFINITY
  private stopped = false
  /** Where each child is placed (tombstones excluded), and how many per node: kept as keys change, so counts cost O(1). */
  private readonly placed = new Map<string, string>()
  private readonly perNode = new Map<string, number>()
  private firstSync: { version: number; bytes: number } | undefined
  /** Gossip and relayed deltas received, not joined yet (see drainInbox); taken from `inboxHead` on. */
  private inbox: ({ bytes: Uint8Array; from: string; relayed: boolean } | undefined)[] = []
  private inboxHead = 0
  private draining = false
  /** Called once the inbox is empty (see inboxJoined). */
  private inboxWaiters: (() => void)[] = []

  constructor(private readonly c: ReplicatorComponents) {}

  /** Children placed in all and per node (no walk of the map). */
  placementCounts(): { total: number; perNode: Record<string, number> } {
    return { total: this.placed.size, perNode: Object.fromEntries(this.perNode) }
  }

  /**
   * The map changed under `key`. `written`: this replica just wrote that value there, so it is
   * the key's one live value (a local write supersedes every write the replica holds).
   */
  private changed(key: string, written?: { value: unknown }): void {
    this.lastChange = performance.now()
    if (key.startsWith(CHILD)) {
      const id = key.slice(CHILD.length)
      let now: string | undefined
      if (written === undefined) now = this.placement(id)?.node
      else {
        const rec = readChild(written.value)
        now = livePlacement(rec === undefined ? [] : [rec])?.node
      }
      const was = this.placed.get(id)
      if (now !== was) {
        if (was !== undefined) {
          const n = (this.perNode.get(was) ?? 1) - 1
          if (n === 0) this.perNode.delete(was)
          else this.perNode.set(was, n)
        }
        if (now === undefined) this.placed.delete(id)
        else {
          this.placed.set(id, now)
          this.perNode.set(now, (this.perNode.get(now) ?? 0) + 1)
        }
      }
    }
    this.c.changed(key)
  }

  // ——— typed reads ———

  /** Every concurrent value under `key` that `read` accepts (usually one). */
  private siblingsOf<T>(key: string, read: (v: unknown) => T | undefined): T[] {
    const out: T[] = []
    for (const v of this.map.siblings(key)) {
      const r = read(v)
      if (r !== undefined) out.push(r)
    }
    return out
  }

  /** Every concurrent record of child `id` (usually one). */
  childSiblings(id: string): ChildRecord[] {
    return this.siblingsOf(CHILD + id, readChild)
  }

  /** The record of `id` every replica acts on, tombstones included (see resolveChild). */
  childRecord(id: string): ChildRecord | undefined {
    return resolveChild(this.childSiblings(id))
  }

  /** Where `id` runs, or undefined if it is unknown or terminated. */
  placement(id: string): ChildRecord | undefined {
    return livePlacement(this.childSiblings(id))
  }

  /** Ids of every child key (tombstones included). */
  *childIds(): IterableIterator<string> {
    for (const k of this.map.keys()) if (k.startsWith(CHILD)) yield k.slice(CHILD.length)
  }

  member(nodeId: string): MemberRecord | undefined {
    return readMember(this.map.get(MEMBER + nodeId))
  }

  /** Every concurrent record of member `nodeId` (usually one). */
  memberSiblings(nodeId: string): MemberRecord[] {
    return this.siblingsOf(MEMBER + nodeId, readMember)
  }

  /** The nodes children are placed on (tombstones excluded), O(nodes). */
  placedNodes(): string[] {
    return [...this.perNode.keys()]
  }

  /** Ids of the children placed on any of `nodes` (tombstones excluded), lazily: one walk of the placements. */
  *idsPlacedOn(nodes: ReadonlySet<string>): IterableIterator<string> {
    if (nodes.size === 0) return
    for (const [id, node] of this.placed) if (nodes.has(node)) yield id
  }

  /** The node child `id` is placed on (its live placement: undefined if unknown or a tombstone), O(1). */
  placedNode(id: string): string | undefined {
    return this.placed.get(id)
  }

  /** Children placed on `nodeId` (tombstones excluded), O(1). */
  placedOn(nodeId: string): number {
    return this.perNode.get(nodeId) ?? 0
  }

  suspicion(nodeId: string): SuspicionRecord | undefined {
    return readSuspicion(this.map.get(SUSPICION + nodeId))
  }

  memberList(): string[] | undefined {
    return readMemberList(this.map.get(CONFIG_MEMBERS))
  }

  // ——— local writes ———

  /** Writes locally, queues the delta for gossip, and returns it (for callers that hand it on). */
  write(key: string, value: unknown): Delta<unknown> {
    const delta = this.map.set(key, value)
    this.publish(delta, key.startsWith(CHILD))
    this.changed(key, { value })
    return delta
  }

  remove(key: string): void {
    if (!this.map.has(key)) return
    this.publish(this.map.delete(key), key.startsWith(CHILD))
    this.changed(key)
  }

  /**
   * Queues a local write for gossip. Gossip goes to every peer: every link assumes its peer
   * gets it (see syncRound), and what gossip loses is found by the audits. `relayed`: the write
   * may go through the relay — child records, the bulk of the writes; they wait for the
   * window, and the writes of a window leave merged, about 256 writes a delta (see
   * flushGossip). Membership writes (members, votes, collection decisions and the rebases they
   * make, the member list) go to every peer from here: they are few, and they must not wait on,
   * or be lost with, a coordinator that is failing — nor wait for a window that grows with the
   * cluster (a vote held back is a node downed later). They have a window of their own, fixed
   * at GOSSIP_WINDOW: a mesh forming rewrites votes as connections come up, and those of a
   * window leave merged.
   */
  private publish(delta: Delta<unknown>, relayed: boolean): void {
    if (this.stopped) return
    this.map.broadcast(delta)
    if (relayed) {
      this.gossipOut.push(delta)
      this.scheduleGossip()
      return
    }
    this.urgentOut.push(delta)
    this.urgent.schedule(GOSSIP_WINDOW)
  }

  /**
   * Sends the membership writes of their window to every peer — and, first, the writes still
   * waiting for the gossip window, to every peer too (not through the relay): a membership
   * write never overtakes this node's earlier writes. A node's `left` record makes its peers
   * refuse what it sends after; a child's tombstone it wrote just before must not arrive later.
   */
  private flushUrgent(): void {
    const out = this.urgentOut
    this.urgentOut = []
    if (this.stopped) return
    if (this.gossip.take()) this.flushGossip(true)
    this.sendMerged(this.c.topic, out)
  }

  private scheduleGossip(): void {
    this.gossip.schedule(gossipWindow(this.c.transport.peers().length))
  }

  /** The topic only `node` subscribes to: gossip it relays (see {@link Replicator.onRelay}). */
  relayTopic(node: string): string {
    return `${this.c.topic}/relay/${node}`
  }

  /**
   * Sends what the window gathered: the writes of peers this node relays to every peer, and
   * its own writes to its relay (or, with none, or `direct`, to every peer). The writes going
   * to one topic leave merged (see sendMerged): each receiver decodes and joins a few messages
   * per window, not one per write — per write, most of that work is the same for a write
   * alone as for a hundred together.
   */
  private flushGossip(direct = false): void {
    const own = this.gossipOut
    const others = this.directOut
    const asTheyCame = this.directBytes
    this.gossipOut = []
    this.directOut = []
    this.directBytes = []
    if (this.stopped) return
    const relay = direct ? undefined : this.c.relay()
    // One refused as too large (this node publishes less than it accepts): anti-entropy delivers it.
    for (const bytes of asTheyCame) if (!this.send(this.c.topic, bytes)) this.map.wakeLinks()
    if (relay === undefined) this.sendMerged(this.c.topic, others.concat(own))
    else {
      this.sendMerged(this.c.topic, others)
      this.sendMerged(this.relayTopic(relay), own)
    }
  }

  /**
   * Sends `deltas` to `topic` merged, about {@link MERGE_WRITES} writes per delta (a delta of
   * more writes goes alone); a merged delta over SYNC_CHUNK_BYTES (large values: handoff
   * states), or over what the transport publishes, is sent as halves instead.
   */
  private sendMerged(topic: string, deltas: Delta<unknown>[]): void {
    let group: Delta<unknown>[] = []
    let writes = 0
    for (const d of deltas) {
      if (writes > 0 && writes + d.keys.size > MERGE_WRITES) {
        this.sendPiece(topic, group)
        group = []
        writes = 0
      }
      group.push(d)
      writes += d.keys.size
    }
    if (group.length > 0) this.sendPiece(topic, group)
  }

  private sendPiece(topic: string, deltas: Delta<unknown>[]): void {
    const bytes = encodeDelta(mergeDeltas(deltas))
    if ((deltas.length === 1 || bytes.length <= SYNC_CHUNK_BYTES) && this.send(topic, bytes)) return
    if (deltas.length === 1) {
      // Too large for the transport to publish: anti-entropy delivers it (every link audits).
      this.map.wakeLinks()
      return
    }
    const half = deltas.length >> 1
    this.sendPiece(topic, deltas.slice(0, half))
    this.sendPiece(topic, deltas.slice(half))
  }

  /** Publishes `bytes`; false (nothing sent) if the transport refuses them as too large. */
  private send(topic: string, bytes: Uint8Array): boolean {
    try {
      this.c.transport.publish(topic, bytes)
      this.c.counters.deltaBytesSent += bytes.length
    } catch (err) {
      log('publish failed: %s', (err as Error).message)
      // Halves of a merged delta may fit: the caller tries them before giving up.
      if (err instanceof MessageTooLargeError) return false
      // Gossip is best effort; anti-entropy delivers what it could not: the writes were
      // declared broadcast, so every link is audited now rather than in turn.
      this.map.wakeLinks()
    }
    return true
  }

  // ——— remote state ———

  /**
   * Joins an encoded delta from `from` if `from` is admitted; returns it if it was (undefined
   * otherwise). Malformed bytes are dropped and counted.
   */
  joinFrom(from: string, bytes: Uint8Array): Delta<unknown> | undefined {
    if (this.stopped || !this.c.admits(from)) return undefined
    return this.joinAdmitted(from, bytes)
  }

  /** {@link Replicator.joinFrom} of bytes `from` was admitted to send when they arrived. */
  private joinAdmitted(from: string, bytes: Uint8Array): Delta<unknown> | undefined {
    if (this.stopped) return undefined
    try {
      // Deltas come from their writer (gossip, a start's reply, a replicated write) or from the
      // relay, which joined them before it forwarded them: either way `from` holds them, and
      // its link learns so (anti-entropy does not send them back). They were sent to every
      // peer, so every link assumes its peer got them (see syncRound).
      const delta = decodeDelta(bytes)
      const diffs = this.map.joinFrom(from, delta)
      this.map.broadcast(delta, from)
      this.react(diffs)
      return delta
    } catch (err) {
      this.c.counters.deltasDropped++
      log('dropped a malformed delta from %s: %s', from, (err as Error).message)
      return undefined
    }
  }

  /** Gossip handler: the delta is joined from the inbox (see drainInbox), if `from` is admitted now. */
  onGossip(bytes: Uint8Array, from: string): void {
    if (this.stopped || !this.c.admits(from)) return
    this.c.counters.deltaBytesReceived += bytes.length
    this.enqueue(bytes, from, false)
  }

  private enqueue(bytes: Uint8Array, from: string, relayed: boolean): void {
    this.inbox.push({ bytes, from, relayed })
    if (this.draining) return
    this.draining = true
    setImmediate(() => this.drainInbox())
  }

  /**
   * Joins received gossip in arrival order, for at most INBOX_BUDGET_MS per turn. A transport
   * read can hand over many frames at once — a coordinator's failover writes, queued while this
   * node was busy — and joining them all in that one callback was a survivor's longest stall
   * in a failover at 100k children. The rest waits a turn, so timers and replies run between
   * slices.
   */
  private drainInbox(budget = INBOX_BUDGET_MS): void {
    this.draining = false
    const until = performance.now() + budget
    const inbox = this.inbox
    while (this.inboxHead < inbox.length && !this.stopped) {
      const m = inbox[this.inboxHead]!
      inbox[this.inboxHead++] = undefined
      if (m.relayed) this.relayNow(m.bytes, m.from)
      else this.joinAdmitted(m.from, m.bytes)
      if (performance.now() > until) break
    }
    if (this.stopped || this.inboxHead === inbox.length) {
      this.inbox = []
      this.inboxHead = 0
      const waiters = this.inboxWaiters
      this.inboxWaiters = []
      for (const w of waiters) w()
      return
    }
    // A backlog that never empties must not keep every frame it ever held.
    if (this.inboxHead > 1024 && this.inboxHead > inbox.length / 2) {
      this.inbox = inbox.slice(this.inboxHead)
      this.inboxHead = 0
    }
    this.draining = true
    setImmediate(() => this.drainInbox())
  }

  /**
   * Resolves once no received gossip waits in the inbox. A sync message is read after it: gossip
   * still queued would make the peer's report show this replica behind on writes it already
   * holds, and the pass would pull them a second time.
   */
  private inboxJoined(): Promise<void> {
    if (this.inboxHead === this.inbox.length || this.stopped) return Promise.resolve()
    return new Promise((resolve) => this.inboxWaiters.push(resolve))
  }

  /**
   * Relay handler: a write of `from`'s own, sent to this node alone (its relay, see
   * `relayTopic`). Joined like gossip, then sent to every peer with this node's next window.
   * A relay batches the writes of every writer: each peer receives one frame per window from
   * it, however many nodes wrote — where gossip from each writer costs every peer a frame per
   * writer. A write is relayed once, never forwarded to another relay. The relayed writes of a
   * window leave merged with this node's own (see flushGossip).
   */
  onRelay(bytes: Uint8Array, from: string): void {
    if (this.stopped || !this.c.admits(from)) return
    this.c.counters.deltaBytesReceived += bytes.length
    this.enqueue(bytes, from, true)
  }

  private relayNow(bytes: Uint8Array, from: string): void {
    const delta = this.joinAdmitted(from, bytes)
    if (delta === undefined) return
    this.c.counters.deltasRelayed += delta.keys.size
    // Small deltas (a writer's few writes of a window) are merged with the others; a large one
    // (a busy writer's window, already merged) or one carrying ranges goes on as it came.
    if (
      delta.ranges.size === 0 &&
      delta.keys.size <= MERGE_WRITES / 4 &&
      bytes.length <= SYNC_CHUNK_BYTES / 4
    )
      this.directOut.push(delta)
    else this.directBytes.push(bytes)
    this.scheduleGossip()
  }

  /** Anti-entropy request handler: one message in, one out. */
  async onSync(bytes: Uint8Array, from: string): Promise<Uint8Array> {
    if (this.stopped || !this.c.admits(from)) return new Uint8Array(0)
    await this.inboxJoined()
    if (this.stopped) return new Uint8Array(0)
    const link = this.map.link(from)
    this.c.counters.syncRounds++
    this.c.counters.syncBytesReceived += bytes.length
    if (bytes.length > 0) this.react(link.receive(bytes))
    const reply = link.generate() ?? new Uint8Array(0)
    this.c.counters.syncBytesSent += reply.length
    return reply
  }

  /**
   * One periodic anti-entropy round: a pass with at most `fanout` of `peers` whose links are
   * not settled, taken in turn (round robin), or, when there is none, an audit of one link
   * that changed since it was last checked, also in turn. So a round costs the same whatever
   * the cluster size and the write rate.
   *
   * A link is settled once the two replicas agreed, while nothing is owed, the peer is not
   * ahead and no repair is queued (SyncLink.settled): the changes since do not unsettle it.
   * Every write is gossiped to every peer by its writer, and every link assumes its peer got
   * it (`map.broadcast`), so the writes gossip delivers cost no round — not at the writer,
   * and not at the replicas that received them, nor the writes still on their way when a round
   * runs (a link whose peer lacks only those is settled). One gossip lost is found by an audit:
   * an exchange on a settled link that is not idle, one round trip when both are equal, after
   * which any replica holding the write repairs the one without it — at once if the map was
   * quiet, else at the link's next audit (the first may have seen it on its way). Rounds audit
   * one link each once the map was quiet for AUDIT_GRACE_WINDOWS gossip windows, and one every
   * AUDIT_EVERY rounds while it keeps changing: every link that changed is audited within
   * `peers.length` such rounds (a lost write waits for the first audit of a link between a
   * replica holding it and one without it).
   *
   * Once the map is quiet, a node with a relay (ReplicatorComponents.relay) audits its link to
   * the relay alone, and the relay audits every link that changed: about 2n audits at once
   * after a burst, where every node auditing each of its changed links cost n(n-1)/2 (276 at
   * 24 nodes) within n rounds (the scale bench, 24 nodes, exchanges in the 5–8 s after a burst
   * of 500 starts: 281–295 auditing every link, 62–84 through the relay, 106 with the sweep
   * below). Every write reaches the relay: by the gossip its writer sends there, or, lost, by
   * the writer's quiet audit of the relay, which pushes it. A node that lacks a write pulls it
   * in its own audit of the relay (if its map changed since it last agreed with the relay), or
   * the relay pushes it in its audit of that link, within `peers.length` of its rounds once
   * its map is quiet (a write lost on its way to the relay so takes one hop more than when its
   * writer audited every link). Amid writes the audits still take every changed link in turn:
   * the relay holds the writes in flight first, so an audit of it then finds the auditor behind
   * on writes gossip is about to deliver, and pulls them. That rests on the relay auditing
   * every node: a node that lacks a write and whose own map did not change since has no
   * changed link to audit, and the relay may be unable to audit it (a link that fails from the
   * relay's side only, a relay that does not list or admit it, two nodes that each take the
   * other for the relay while a coordinator hands over). So a quiet node whose link to the
   * relay needs no audit still audits one other changed link every SWEEP_EVERY such rounds,
   * in an order of its own: a slow sweep, in which the holders of such a write reach the node
   * without it within SWEEP_EVERY × peers.length quiet rounds. The sweep goes on until every
   * link that changed was audited: after one burst and a long quiet spell it still audits
   * each such link once, as before, but at one exchange per node every SWEEP_EVERY rounds
   * rather than one a round: the saving is in the rate, and, where bursts come more often
   * than a sweep takes, in the count too. The relay
   * itself, a node that sees none alive, and a node whose last pass with the relay failed
   * (see `ready`) audit every link that changed.
   *
   * Passes with peers that are not admitted or keep
   * failing are skipped for a while (see `ready`), so a link that cannot settle holds back
   * neither. A link audited with nothing changed since is idle and costs nothing. Resolves when
   * the passes are over.
   */
  async syncRound(peers: readonly string[], fanout: number, isUp: (peer: string) => boolean): Promise<void> {
    if (this.stopped || peers.length === 0) return
    const n = peers.length
    const passes: Promise<void>[] = []
    for (let i = 0; i < n && passes.length < fanout; i++) {
      const peer = peers[(this.cursor + i) % n]!
      if (this.map.link(peer).settled || !this.ready(peer)) continue
      passes.push(this.syncWith(peer, isUp))
    }
    this.cursor = (this.cursor + Math.max(1, fanout)) % n
    // An audit only when no other pass runs: one that finds this replica behind pulls, and two
    // passes pulling at once would fetch the same first piece twice. And only once the writes
    // of the last moments had the time to arrive by gossip, or every AUDIT_EVERY rounds while
    // writes keep coming: an audit amid writes in flight finds differences that gossip is
    // about to remove, and costs a second exchange to settle them.
    const quiet = performance.now() - this.lastChange >= AUDIT_GRACE_WINDOWS * gossipWindow(n)
    const audit =
      passes.length === 0 && this.syncing.size === 0 && (quiet || ++this.busyRounds >= AUDIT_EVERY)
    const turn = audit ? this.auditTurn(peers, quiet) : undefined
    const cursor = turn?.sweep ? this.sweepCursor : this.auditCursor
    for (let i = 0; i < n && turn !== undefined; i++) {
      const peer = peers[(cursor + i) % n]!
      if (!turn.may(peer)) continue
      const link = this.map.link(peer)
      // An idle link needs no audit: nothing changed since both sides agreed.
      if (!link.settled || link.idle || !this.ready(peer)) continue
      if (turn.sweep) this.sweepCursor = (cursor + i + 1) % n
      else this.auditCursor = (cursor + i + 1) % n
      this.busyRounds = 0
      this.c.counters.syncAudits++
      // Quiet: what this node broadcast has had the time to land, so a write the peer still
      // lacks was lost, and this audit repairs it. Amid writes, a write the peer lacks may be
      // on its way: sent only if the next audit finds it lacking still (see SyncLink.wake).
      link.wake({ expireAssumptions: quiet })
      passes.push(this.syncWith(peer, isUp))
      break
    }
    await Promise.all(passes)
  }

  /**
   * Which peers a round's audit may take, and in whose order (see syncRound's comment); undefined
   * when this round audits none. Once the map is quiet, a node with a relay audits its link to
   * the relay alone; without one, while passes with it fail, and amid writes, every link that
   * changed, in turn (`auditCursor`). The sweep's turn: a quiet node whose link to the relay
   * needs no audit audits one other changed link every SWEEP_EVERY such rounds, in an order of
   * its own (`sweepCursor`) that audits of the relay do not restart.
   */
  private auditTurn(
    peers: readonly string[],
    quiet: boolean,
  ): { may: (peer: string) => boolean; sweep: boolean } | undefined {
    const hub = quiet ? this.auditHub(peers) : undefined
    if (hub === undefined) return { may: () => true, sweep: false }
    if (!this.map.link(hub).idle) return { may: (peer) => peer === hub, sweep: false }
    if (++this.sweepRounds < SWEEP_EVERY) return undefined
    this.sweepRounds = 0
    return { may: (peer) => peer !== hub, sweep: true }
  }

  /**
   * The peer this node's audits go to, if they go to one peer only: its relay (the node every
   * writer sends its child records to, and that forwards them to every peer; see
   * ReplicatorComponents.relay), while that is one of `peers`, admitted, and its last pass
   * ended in agreement. Undefined for the relay itself, for a node without one, and while the
   * relay cannot be synced with (then every link is audited).
   */
  private auditHub(peers: readonly string[]): string | undefined {
    const hub = this.c.relay()
    if (hub === undefined || !peers.includes(hub) || !this.c.admits(hub) || this.backoff.has(hub))
      return undefined
    return hub
  }

  /**
   * Whether a round may start a pass with `peer`: it is admitted, and not backing off. A peer
   * whose passes keep ending without agreement (it does not answer: a one-way link, a horde
   * stopped on a transport still up, a peer that does not admit this node) is skipped for 1, 2,
   * 4, then 8 rounds after each such pass: a link that cannot settle must not hold back the
   * others' passes, nor the audits, which wait for a round without passes.
   */
  private ready(peer: string): boolean {
    if (!this.c.admits(peer)) return false
    const b = this.backoff.get(peer)
    if (b === undefined) return true
    if (b.skip > 0) {
      b.skip--
      return false
    }
    return true
  }

  /** Records how a pass with `peer` ended, for {@link Replicator.ready}. */
  private passEnded(peer: string, agreed: boolean): void {
    if (agreed) {
      this.backoff.delete(peer)
      return
    }
    const b = this.backoff.get(peer) ?? { failures: 0, skip: 0 }
    b.failures++
    b.skip = Math.min(8, 2 ** (b.failures - 1))
    this.backoff.set(peer, b)
  }

  /**
   * Runs the sync protocol with `peer` until a round moves nothing new.
   *
   * What gossip delivered is not sent again (the link's report and assumptions), and in the
   * requests it sends on its own this replica pushes what the peer lacks only when it is small
   * ({@link PUSH_BYTES}): a peer far behind pulls instead. This replica pulls too: while the
   * peer's reports show writes it lacks, it keeps asking that peer (the feeder). Only one pass
   * pulls at a time: passes with other peers are skipped while one feeds this replica, and a
   * pass that finds another one already feeding stops pulling — they would return the same
   * writes. A replica that has not yet completed a pass that caught it up (a joiner) runs one
   * pass at a time for the same reason, so a joiner's state comes from one peer, once.
   *
   * `push: true` (a stop, a terminate, a member-list change: this node's latest writes must
   * reach the peer before it goes on) skips those gates, sends everything the peer lacks, and
   * waits for a pass already running with the peer first.
   */
  async syncWith(peer: string, isUp: (peer: string) => boolean, push = false): Promise<void> {
    if (this.stopped || !this.c.admits(peer)) return
    const running = this.syncing.get(peer)
    if (running !== undefined) {
      if (!push) return
      await running
      if (this.stopped) return
    }
    if (!push) {
      if (this.feeder !== undefined && this.feeder !== peer) return
      if (!this.synced) {
        if (this.syncing.size > 0) return
        this.feeder = peer
      }
    }
    const pass = this.pass(peer, isUp, push)
    this.syncing.set(peer, pass)
    try {
      await pass
      // Agreement: the link is settled, or (a joiner still pulling) the peer answered with writes.
      const link = this.map.link(peer)
      this.passEnded(peer, link.settled || link.behind)
    } finally {
      if (this.syncing.get(peer) === pass) this.syncing.delete(peer)
      if (this.feeder === peer) this.feeder = undefined
    }
  }

  private async pass(peer: string, isUp: (peer: string) => boolean, push: boolean): Promise<void> {
    const options = push ? {} : { pushBytes: PUSH_BYTES }
    let exchanged = false
    // A push is for this node's latest writes, which it broadcast: the peer is assumed to have
    // them, and they would be sent only after a second report lacking them — too late.
    if (push) this.map.link(peer).wake({ expireAssumptions: true })
    try {
      for (let round = 0; round < MAX_SYNC_ROUNDS && isUp(peer); round++) {
        const link = this.map.link(peer)
        const sent = link.stats.itemsSent
        const received = link.stats.itemsReceived
        const msg = link.generate(options)
        if (msg === null) break
        this.c.counters.syncRounds++
        this.c.counters.syncBytesSent += msg.length
        const reply = await this.c.transport.request(peer, this.c.syncProtocol, msg, {
          timeout: this.c.requestTimeout,
        })
        exchanged = true
        this.c.counters.syncBytesReceived += reply.length
        await this.inboxJoined()
        // The reply passes the same admission as everything else (the member list may have changed).
        if (this.stopped || !this.c.admits(peer)) return
        if (reply.length > 0) this.react(link.receive(reply))
        const pulled = link.stats.itemsReceived > received
        if (link.behind && pulled && !push) {
          // Another pass already feeds this replica: leave the bulk to it.
          if (this.feeder !== undefined && this.feeder !== peer) break
          // The peer is ahead and feeding this replica: keep pulling, without a round limit.
          this.feeder = peer
          round--
          continue
        }
        if (this.feeder === peer) this.feeder = undefined
        if (!pulled && link.stats.itemsSent === sent && !link.hasToSend(options)) break
      }
      // Caught up with a peer: from now on passes with several peers may run at once.
      if (exchanged && !this.map.link(peer).behind) this.synced = true
    } catch (err) {
      log('sync with %s failed: %s', peer, (err as Error).message)
    }
  }

  // ——— collection (membership/collection.ts) ———

  /** Re-issues the live writes of replica id `id` under this replica's (same values), and gossips them. */
  rebase(id: string): void {
    const delta = this.map.rebase(id)
    if (delta.keys.size === 0) return
    this.publish(delta, false)
    for (const key of delta.keys.keys()) this.changed(key)
  }

  /** This replica's own id was retired by the others: continue under a new one. */
  renewReplica(): void {
    this.map.renewReplicaId()
  }

  /** The size of the first message a new sync link sends (this replica's context and root), bytes. */
  firstSyncBytes(): number {
    if (this.firstSync === undefined || this.firstSync.version !== this.map.version) {
      const probe = '\u0000probe'
      const bytes = this.map.link(probe).generate()?.length ?? 0
      this.map.unlink(probe)
      this.firstSync = { version: this.map.version, bytes }
    }
    return this.firstSync.bytes
  }

  /** The peer left: drop its sync state. */
  forget(peer: string): void {
    this.map.unlink(peer)
    this.backoff.delete(peer)
  }

  private react(diffs: Diff<unknown>[]): void {
    for (const d of diffs) this.changed(d.key)
  }

  /** Sends what is queued for gossip now, then stops gossiping and answering. */
  stop(): void {
    // What was received is joined (and what this node relays, forwarded) before it goes.
    if (!this.stopped) this.drainInbox(Number.POSITIVE_INFINITY)
    // The last writes go to every peer: the relay may not forward them before this node is gone.
    if (this.gossip.take()) this.flushGossip(true)
    if (this.urgent.take()) this.flushUrgent()
    this.stopped = true
  }
}
