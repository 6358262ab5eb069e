import type { Transport } from '@nact-horde/transport'
import createDebug from 'debug'
import type { Counters } from '../observability/counters.js'
import {
  CONFIG_MEMBERS,
  MEMBER,
  type MemberRecord,
  SUSPICION,
  type SuspicionRecord,
} from '../state/records.js'
import type { Replicator } from '../state/replicator.js'
import { isWinningCoalition, type Suspects } from './downing.js'
import { computeView, type MembershipView } from './view.js'

const log = createDebug('horde:membership')

/** Ms late a check must be to count as a stall of the event loop. */
const STALL_LATENESS = 200

/**
 * A join grace extended while the mesh keeps forming ends at the latest this many join graces
 * after the member was first heard of (30 s at the default 3 s): a member this node cannot
 * reach is suspected in the end even while others keep joining.
 */
export const MAX_GRACE_FACTOR = 10

/** What membership needs from the rest of the horde. */
export interface MembershipComponents {
  transport: Transport
  replicator: Replicator
  counters: Counters
  /** The explicit member list from the options, or 'auto'. */
  members: readonly string[] | 'auto'
  failureTimeout: number
  joinGrace: number
  deadMemberTimeout: number
  /** Something that membership depends on changed: re-examine the children the view change concerns. */
  changed(): void
  /**
   * The event loop was blocked for at least the failure timeout: every peer's silence check
   * has expired for this node meanwhile. Called synchronously when the stall is noticed: by the
   * loop monitor's timer, or by {@link Membership.checkLag} before the first input read after it
   * is acted on.
   */
  longStall(ms: number): void
}

/**
 * This node's side of membership: which peers the transport has up, which members it suspects
 * (and replicates as its vote), whether its own view is stale, and the grace of members not
 * reached yet. Reads ({@link Membership.view}) have no side effects; timers are set only when
 * something is learnt (a peer event, a new member record, a stall).
 */
export class Membership {
  private readonly up = new Set<string>()
  /** Peers this node has been connected to at least once. */
  private readonly seenUp = new Set<string>()
  /** How each peer was lost last: its connections closed, or it fell silent. */
  private readonly lostAs = new Map<string, 'closed' | 'silent'>()
  /** Member ids with an `m/` key (kept as keys change, so views need not scan the map). */
  private readonly known = new Set<string>()
  /**
   * Members never reached, within their join grace (cleared by timers), with when this node
   * heard of them: a timer of an earlier grace of the same member ends nothing.
   */
  private readonly inGrace = new Map<string, number>()
  /**
   * When this node last reached a member it had never reached before (Date.now()): a mesh
   * still forming. A join grace lasts until `joinGrace` after it (see keyChanged). A peer
   * counts once it is both reached and a member (its `m/` record known), whichever came last:
   * a client that connects without joining (the status CLI) extends no grace.
   */
  private lastFirstReach = Number.NEGATIVE_INFINITY
  private readonly timers = new Set<NodeJS.Timeout>()
  /** When each member was first seen dead (for reaping). */
  private readonly deadSince = new Map<string, number>()
  private staleUntil = 0
  /** When the last stall began (wake time − its length). */
  private stallStart = 0
  /** When each peer last closed its connection to this node. */
  private readonly closedAt = new Map<string, number>()
  private monitor: NodeJS.Timeout | undefined
  private lastTick = 0
  private tick = 0
  private shuttingDown = false
  private stopped = false
  /** What this node last wrote under `s/<self>`. */
  private published = ''
  /**
   * The last view computed, and whether this node was stale then. Everything a view reads
   * changes through this class (peers up and down, grace timers, stalls, shutting down) or
   * through a member, suspicion or member-list key (`keyChanged`), and each of those drops it;
   * only staleness also changes with time, so a cached view serves while it is the same. A view
   * costs O(members) (~0.1 ms at 24 members), and every batch of changes asks for one on every
   * node: without the cache, a start cost the cluster O(members²).
   */
  private cached: { view: MembershipView; stale: boolean } | undefined

  constructor(private readonly c: MembershipComponents) {}

  start(): void {
    const t = this.c.transport
    for (const p of t.peers()) this.peerUp(p)
    // The event loop monitor: a timer that fires late means the process was blocked (a long
    // GC, a VM stall, SIGSTOP), and what it believes about its peers is stale.
    this.tick = Math.max(20, Math.min(250, Math.floor(this.c.failureTimeout / 4)))
    this.lastTick = Date.now()
    this.monitor = setInterval(() => this.onTick(), this.tick)
    this.monitor.unref()
  }

  stop(): void {
    this.stopped = true
    clearInterval(this.monitor)
    for (const t of this.timers) clearTimeout(t)
    this.timers.clear()
  }

  /** This node is leaving: it stops voting and stops counting itself in. */
  setShuttingDown(): void {
    this.shuttingDown = true
    this.cached = undefined
  }

  get isShuttingDown(): boolean {
    return this.shuttingDown
  }

  isUp(peer: string): boolean {
    return this.up.has(peer)
  }

  upPeers(): string[] {
    return [...this.up]
  }

  /** True while this node re-validates its view after a stall. */
  get stale(): boolean {
    return Date.now() < this.staleUntil
  }

  // ——— what the transport tells ———

  peerUp(nodeId: string): void {
    this.checkLag()
    if (this.stopped || this.up.has(nodeId)) return
    this.up.add(nodeId)
    if (!this.seenUp.has(nodeId) && this.known.has(nodeId)) this.lastFirstReach = Date.now()
    this.seenUp.add(nodeId)
    this.lostAs.delete(nodeId)
    this.inGrace.delete(nodeId)
    this.cached = undefined
    this.c.changed()
  }

  peerDown(nodeId: string, closed: boolean): void {
    this.checkLag()
    if (!this.up.delete(nodeId)) return
    this.lostAs.set(nodeId, closed ? 'closed' : 'silent')
    if (closed) this.closedAt.set(nodeId, Date.now())
    this.cached = undefined
    this.c.replicator.forget(nodeId)
    this.c.changed()
  }

  /**
   * The process was blocked for `ms`: distrust the view until peers had a fresh failure timeout.
   * `silenced`: the transport says so — its liveness signals stopped for that long, so peers
   * that judge silence saw this node fall silent (a loop merely busy on the memory network, or
   * noticed only by this node's own monitor, silenced nothing).
   */
  stalled(ms: number, silenced = false): void {
    // A stall shorter than half the failure timeout cannot have made a live peer look dead
    // here, nor this node look dead to its peers: a loaded machine's short lags are no reason
    // to stop acting.
    if (ms < this.c.failureTimeout / 2) return
    const until = Date.now() + this.c.failureTimeout
    if (until <= this.staleUntil) {
      // Already noticed (by this node's own monitor): the transport may still say it was silenced.
      if (silenced && ms >= this.c.failureTimeout) this.c.longStall(ms)
      return
    }
    this.c.counters.stalls++
    log('event loop was blocked for %d ms: re-validating the view until %d', ms, until)
    if (Date.now() >= this.staleUntil) this.stallStart = Date.now() - ms
    this.staleUntil = until
    this.cached = undefined
    this.later(this.c.failureTimeout + 1, () => this.c.changed())
    if (silenced && ms >= this.c.failureTimeout) this.c.longStall(ms)
    this.c.changed()
  }

  private onTick(): void {
    const now = Date.now()
    const late = now - this.lastTick - this.tick
    this.lastTick = now
    if (late > STALL_LATENESS) this.stalled(late)
  }

  /**
   * The same check as the timer's, made before this node acts on anything it reads: a process
   * that wakes from a stop handles the input queued meanwhile (I/O) before its timers, so the
   * timer alone would notice the stall only after acting on that input.
   */
  checkLag(): void {
    if (this.monitor === undefined || this.stopped) return
    // Only a stall counts here, so an on-time check does not move the timer's reference point.
    if (Date.now() - this.lastTick - this.tick > STALL_LATENESS) this.onTick()
  }

  /** Member ids with an `m/` key. */
  memberIds(): ReadonlySet<string> {
    return this.known
  }

  /** A key of the map changed: note new members (and start their join grace), forget collected ones. */
  keyChanged(key: string): void {
    this.checkLag()
    if (key.startsWith(MEMBER) || key.startsWith(SUSPICION) || key === CONFIG_MEMBERS) this.cached = undefined
    if (!key.startsWith(MEMBER)) return
    const nodeId = key.slice(MEMBER.length)
    if (!this.c.replicator.map.has(key)) {
      // Collected (membership/collection.ts): if it comes back, it joins as new.
      if (!this.known.delete(nodeId)) return
      this.inGrace.delete(nodeId)
      this.deadSince.delete(nodeId)
      if (!this.up.has(nodeId)) {
        this.seenUp.delete(nodeId)
        this.lostAs.delete(nodeId)
        this.closedAt.delete(nodeId)
      }
      return
    }
    if (this.known.has(nodeId)) return
    this.known.add(nodeId)
    // Reached before its record came: it is a member reached for the first time now.
    if (this.seenUp.has(nodeId) && nodeId !== this.c.transport.nodeId) this.lastFirstReach = Date.now()
    if (nodeId !== this.c.transport.nodeId && !this.seenUp.has(nodeId) && !this.up.has(nodeId)) {
      // A member known from the map but never connected to — this node just started, or the
      // member just joined and its record came before its connection — is not suspected
      // until its join grace ends: `joinGrace` after this node heard of it, and no sooner
      // than `joinGrace` after this node last reached a member it had never reached, up to
      // MAX_GRACE_FACTOR join graces in all. While connections keep coming up, the mesh is
      // still forming (on a loaded host, 24 nodes took 20–40 s to mesh): the members not
      // reached yet are late, not lost, and suspecting them had each node write a new vote
      // at every connection, and had members voted down that had never failed.
      const heardAt = Date.now()
      this.inGrace.set(nodeId, heardAt)
      this.later(this.c.joinGrace, () => this.graceEnds(nodeId, heardAt))
    }
  }

  private graceEnds(nodeId: string, heardAt: number): void {
    if (this.inGrace.get(nodeId) !== heardAt) return
    const until = Math.min(
      this.lastFirstReach + this.c.joinGrace,
      heardAt + MAX_GRACE_FACTOR * this.c.joinGrace,
    )
    const wait = until - Date.now()
    if (wait > 0) {
      this.later(wait, () => this.graceEnds(nodeId, heardAt))
      return
    }
    this.inGrace.delete(nodeId)
    this.cached = undefined
    this.c.changed()
  }

  private later(ms: number, fn: () => void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer)
      if (!this.stopped) fn()
    }, ms)
    timer.unref()
    this.timers.add(timer)
  }

  // ——— the view ———

  private configured(): readonly string[] | 'auto' {
    return this.c.replicator.memberList() ?? this.c.members
  }

  /** The members this node suspects now. */
  private suspects(configured: readonly string[] | 'auto'): Record<string, 'closed' | 'silent'> {
    const self = this.c.transport.nodeId
    const out: Record<string, 'closed' | 'silent'> = {}
    const candidates = configured === 'auto' ? this.known : configured
    for (const m of candidates) {
      if (m === self || this.up.has(m) || this.inGrace.has(m)) continue
      if (configured === 'auto' && this.c.replicator.member(m)?.status === 'left') continue
      if (!this.seenUp.has(m) && configured !== 'auto' && this.c.replicator.member(m) === undefined) {
        // Listed but never heard of: it has not started yet. Not a suspect before its grace.
        continue
      }
      out[m] = this.lostAs.get(m) ?? 'silent'
    }
    return out
  }

  /**
   * After a stall longer than the failure timeout: the peers that hung up on this node while
   * it was frozen form a winning coalition — they could agree that it is down, and have most
   * likely failed its children over already. Its own copies must not run on beside theirs
   * while it catches up. (A cluster frozen as a whole hangs up on nobody: nothing stops.)
   */
  presumedDown(view: MembershipView): boolean {
    if (!this.stale) return false
    const closers = [...this.closedAt].filter(([, at]) => at >= this.stallStart).map(([p]) => p)
    return closers.length > 0 && isWinningCoalition(closers, view.electorate)
  }

  /** This node's view now (no side effects). */
  view(): MembershipView {
    const stale = this.stale
    if (this.cached?.stale === stale) return this.cached.view
    const view = this.freshView(stale)
    this.cached = { view, stale }
    return view
  }

  private freshView(stale: boolean): MembershipView {
    const r = this.c.replicator
    const configured = this.configured()
    const records = new Map<string, MemberRecord>()
    const suspicions = new Map<string, Suspects>()
    for (const nodeId of this.known) {
      const rec = r.member(nodeId)
      if (rec !== undefined) records.set(nodeId, rec)
      const s = r.suspicion(nodeId)
      if (s !== undefined) suspicions.set(nodeId, s.suspects)
    }
    if (configured !== 'auto') {
      for (const nodeId of configured) {
        const s = r.suspicion(nodeId)
        if (s !== undefined) suspicions.set(nodeId, s.suspects)
      }
    }
    return computeView({
      self: this.c.transport.nodeId,
      shuttingDown: this.shuttingDown,
      configured,
      records,
      suspicions,
      up: this.up,
      suspects: this.votes(configured),
      inGrace: this.inGrace,
      stale,
    })
  }

  /**
   * This node's vote: what it suspects, except that a stale node adds no new suspicion (it
   * only withdraws), since what it believes may be the product of its own stall.
   */
  private votes(configured: readonly string[] | 'auto'): Suspects {
    const now = this.suspects(configured)
    if (!this.stale || this.shuttingDown) return this.shuttingDown ? {} : now
    const before = this.c.replicator.suspicion(this.c.transport.nodeId)?.suspects ?? {}
    const out: Record<string, 'closed' | 'silent'> = {}
    for (const [m, kind] of Object.entries(now)) if (before[m] !== undefined) out[m] = kind
    return out
  }

  /**
   * Brings what the map says of this node in line with the view: its vote (`s/<self>`) and
   * its member record (re-announced if it was reaped while cut off). Called by the reconciler.
   */
  publish(view: MembershipView): void {
    if (this.stopped) return
    const self = this.c.transport.nodeId
    const suspects = this.votes(this.configured())
    const key = JSON.stringify(Object.entries(suspects).sort())
    if (key !== this.published || (this.c.replicator.suspicion(self) === undefined && key !== '[]')) {
      this.published = key
      this.c.replicator.write(SUSPICION + self, { suspects } satisfies SuspicionRecord)
    }
    // Re-announce this node if the map says otherwise (it was reaped while cut off) — unless it
    // is leaving, or was removed from an explicit member list.
    // Also when the record names an older replica id of this process (it renewed its id), or
    // has a concurrent record beside it (an earlier process of this node id, whose replica id
    // can be collected once no record names it).
    const rec = this.c.replicator.member(self)
    if (
      view.selfMember &&
      (rec?.status !== 'alive' ||
        rec.replica !== this.c.replicator.map.replicaId ||
        this.c.replicator.memberSiblings(self).length > 1)
    ) {
      this.announce('alive')
    }
    for (const m of view.members) {
      if (m.status === 'dead') {
        if (!this.deadSince.has(m.nodeId)) this.deadSince.set(m.nodeId, Date.now())
      } else this.deadSince.delete(m.nodeId)
    }
  }

  /** Announces this node's own status. */
  announce(status: MemberRecord['status']): void {
    this.c.replicator.write(MEMBER + this.c.transport.nodeId, {
      status,
      addresses: this.c.transport.addresses,
      replica: this.c.replicator.map.replicaId,
    } satisfies MemberRecord)
  }

  /**
   * With `members: 'auto'` the members are the nodes that run the horde: one down for longer
   * than `deadMemberTimeout` has left. The coordinator records that (only while it can act),
   * so a quorum is not held hostage by nodes that crashed and never came back. A node wrongly
   * marked re-announces itself when it is back.
   */
  reap(view: MembershipView): void {
    if (this.configured() !== 'auto' || !view.canAct || view.coordinator !== this.c.transport.nodeId) return
    const now = Date.now()
    for (const [nodeId, since] of this.deadSince) {
      if (now - since < this.c.deadMemberTimeout) continue
      this.deadSince.delete(nodeId)
      const rec = this.c.replicator.member(nodeId)
      if (rec === undefined || rec.status === 'left' || !view.down.has(nodeId)) continue
      log('member %s down for %d ms: marking it as left', nodeId, now - since)
      this.c.replicator.write(MEMBER + nodeId, {
        ...rec,
        status: 'left',
        reaped: true,
      } satisfies MemberRecord)
    }
  }
}
