import { AWLWWMap, type Delta, type Diff, decodeDelta, encodeDelta } from '@nact-horde/crdt'
import type { Transport } from '@nact-horde/transport'
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

/** Ms deltas wait to be gossiped together: one publication per batch, not one per write. */
const GOSSIP_DELAY = 10
/** Sync rounds with one peer per pass at most (each round is one request). */
const MAX_SYNC_ROUNDS = 16

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
}

/**
 * Owns the replicated map: local writes (gossiped in batches), joins of remote state (each
 * admitted first), and anti-entropy with peers. Typed reads of the records live here too, so
 * no other part reads raw map values.
 */
export class Replicator {
  readonly map = new AWLWWMap<unknown>()
  private gossipOut: Uint8Array[] = []
  private gossipTimer: NodeJS.Timeout | undefined
  private readonly syncing = new Set<string>()
  private stopped = false
  /** Where each child is placed (tombstones excluded), and how many per node: kept as keys change, so counts cost O(1). */
  private readonly placed = new Map<string, string>()
  private readonly perNode = new Map<string, number>()
  private firstSync: { version: number; bytes: number } | undefined

  constructor(private readonly c: ReplicatorComponents) {}

  /** Children placed in all and per node (no walk of the map). */
  placementCounts(): { total: number; perNode: Record<string, number> } {
    return { total: this.placed.size, perNode: Object.fromEntries(this.perNode) }
  }

  private changed(key: string): void {
    if (key.startsWith(CHILD)) {
      const id = key.slice(CHILD.length)
      const now = this.placement(id)?.node
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

  /** Every concurrent record of child `id` (usually one). */
  childSiblings(id: string): ChildRecord[] {
    const out: ChildRecord[] = []
    for (const v of this.map.siblings(CHILD + id)) {
      const r = readChild(v)
      if (r !== undefined) out.push(r)
    }
    return out
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
    const out: MemberRecord[] = []
    for (const v of this.map.siblings(MEMBER + nodeId)) {
      const r = readMember(v)
      if (r !== undefined) out.push(r)
    }
    return out
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

  /** Writes locally, queues the delta for gossip, and returns it encoded (for callers that hand it on). */
  write(key: string, value: unknown): Uint8Array {
    const bytes = this.publish(this.map.set(key, value))
    this.changed(key)
    return bytes
  }

  remove(key: string): void {
    if (!this.map.has(key)) return
    this.publish(this.map.delete(key))
    this.changed(key)
  }

  private publish(delta: Delta<unknown>): Uint8Array {
    const bytes = encodeDelta(delta)
    if (this.stopped) return bytes
    this.c.counters.deltaBytesSent += bytes.length
    this.gossipOut.push(bytes)
    this.gossipTimer ??= setTimeout(() => this.flushGossip(), GOSSIP_DELAY)
    return bytes
  }

  private flushGossip(): void {
    this.gossipTimer = undefined
    const out = this.gossipOut
    this.gossipOut = []
    if (this.stopped) return
    for (const bytes of out) {
      try {
        this.c.transport.publish(this.c.topic, bytes)
      } catch (err) {
        // Gossip is best effort; anti-entropy delivers what it could not.
        log('publish failed: %s', (err as Error).message)
      }
    }
  }

  // ——— remote state ———

  /**
   * Joins an encoded delta from `from` if `from` is admitted; returns whether it was.
   * Malformed bytes are dropped and counted.
   */
  joinFrom(from: string, bytes: Uint8Array): boolean {
    if (this.stopped || !this.c.admits(from)) return false
    try {
      // Deltas come from their writer (gossip, a start's reply, a replicated write): the link
      // to `from` learns it has them, so anti-entropy does not send them back.
      this.react(this.map.joinFrom(from, decodeDelta(bytes)))
      return true
    } catch (err) {
      this.c.counters.deltasDropped++
      log('dropped a malformed delta from %s: %s', from, (err as Error).message)
      return false
    }
  }

  /** Gossip handler. */
  onGossip(bytes: Uint8Array, from: string): void {
    if (this.stopped) return
    this.c.counters.deltaBytesReceived += bytes.length
    this.joinFrom(from, bytes)
  }

  /** Anti-entropy request handler: one message in, one out. */
  onSync(bytes: Uint8Array, from: string): Uint8Array {
    if (this.stopped || !this.c.admits(from)) return new Uint8Array(0)
    const link = this.map.link(from)
    this.c.counters.syncRounds++
    this.c.counters.syncBytesReceived += bytes.length
    if (bytes.length > 0) this.react(link.receive(bytes))
    const reply = link.generate() ?? new Uint8Array(0)
    this.c.counters.syncBytesSent += reply.length
    return reply
  }

  /** Runs the sync protocol with `peer` until both sides have nothing to say (bounded). */
  async syncWith(peer: string, isUp: (peer: string) => boolean): Promise<void> {
    if (this.syncing.has(peer) || this.stopped || !this.c.admits(peer)) return
    this.syncing.add(peer)
    try {
      for (let round = 0; round < MAX_SYNC_ROUNDS && isUp(peer); round++) {
        const link = this.map.link(peer)
        const msg = link.generate()
        if (msg === null) return
        this.c.counters.syncRounds++
        this.c.counters.syncBytesSent += msg.length
        const reply = await this.c.transport.request(peer, this.c.syncProtocol, msg, {
          timeout: this.c.requestTimeout,
        })
        this.c.counters.syncBytesReceived += reply.length
        // The reply passes the same admission as everything else (the member list may have changed).
        if (this.stopped || !this.c.admits(peer)) return
        if (reply.length > 0) this.react(link.receive(reply))
        else if (link.idle) return
      }
    } catch (err) {
      log('sync with %s failed: %s', peer, (err as Error).message)
    } finally {
      this.syncing.delete(peer)
    }
  }

  // ——— collection (membership/collection.ts) ———

  /** Re-issues the live writes of replica id `id` under this replica's (same values), and gossips them. */
  rebase(id: string): void {
    const delta = this.map.rebase(id)
    if (delta.keys.size === 0) return
    this.publish(delta)
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
  }

  private react(diffs: Diff<unknown>[]): void {
    for (const d of diffs) this.changed(d.key)
  }

  /** Sends what is queued for gossip now, then stops gossiping and answering. */
  stop(): void {
    if (this.gossipTimer !== undefined) {
      clearTimeout(this.gossipTimer)
      this.flushGossip()
    }
    this.stopped = true
  }
}
