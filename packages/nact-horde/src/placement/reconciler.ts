import { type Delta, encodeDelta } from '@nact-horde/crdt'
import createDebug from 'debug'
import { Packr } from 'msgpackr'
import type { ChildSpec } from '../behaviour.js'
import type { DistributionStrategy } from '../distribution/strategy.js'
import { AlreadyStartedError, NodeShuttingDownError, NotFoundError } from '../errors.js'
import type { DrainResult, LocalSupervisor } from '../local/local-supervisor.js'
import { isWinningCoalition } from '../membership/downing.js'
import type { Membership } from '../membership/membership.js'
import type { MembershipView } from '../membership/view.js'
import type { Counters } from '../observability/counters.js'
import type { Router } from '../routing.js'
import { CHILD, type ChildRecord, type ReplicatedSpec } from '../state/records.js'
import type { Replicator } from '../state/replicator.js'
import { type Action, decide, type PlacementContext } from './decide.js'

const log = createDebug('horde:reconciler')

/**
 * Children examined per turn of the event loop: a membership change at 100k children is
 * reconciled in slices, so no flush stalls the node for long (each slice ≈ a few ms).
 */
const SLICE = 2000

/**
 * Local starts begun per turn. Each runs its child's `init` in a nact message of its own, and
 * Node runs the messages queued in one turn back to back in the next — work that
 * TURN_BUDGET_MS, spent in this turn, does not see. The children past this wait a turn.
 */
const STARTS_PER_TURN = 250

/**
 * The time one turn may spend examining, ms: a slice of 2,000 writes (a failover's, at 100k
 * children) was one of a survivor's longest stalls in a profile. The ids past it wait a turn.
 */
const TURN_BUDGET_MS = 15

/** The events the reconciler raises (forwarded as horde events). */
export interface ReconcilerEvents {
  conflict(id: string, survivor: string): void
  startFailed(id: string, error: unknown): void
  membersChanged(view: MembershipView): void
  /** A flush ended (the view it used). */
  flushed(view: MembershipView): void
}

/** What the reconciler needs. */
export interface ReconcilerComponents {
  self: string
  replicator: Replicator
  membership: Membership
  local: LocalSupervisor
  router: Router
  strategy: DistributionStrategy
  redistribution: 'passive' | 'active'
  counters: Counters
  events: ReconcilerEvents
  /** How long tombstones are kept, ms. */
  tombstoneTtl: number
  /** The largest state a planned move carries, bytes encoded. */
  maxValueBytes: number
  /** The longest one local action may take (start, stop, drain), ms: nothing waits on one longer. */
  actionBound: number
}

/**
 * Brings this node in line with the map: for each child whose record or whose node's status
 * changed, it asks {@link decide} what to do and carries that out — the one place where
 * children are started, stopped and moved, and where child records are written. Actions on
 * one child run one at a time; when one ends, the child is examined again if anything may be
 * left to decide (see act). Every write that
 * follows an await is fenced: it is made only if the child's record is still the one the
 * decision was based on.
 */
export class Reconciler {
  private readonly busy = new Map<string, Promise<unknown>>()
  /** Busy ids an examination was asked for meanwhile (skipped then): examined when their action ends. */
  private readonly deferred = new Set<string>()
  /** Stops this node asked for (so the exit is not taken for the child ending by itself). */
  readonly expectedStops = new Set<string>()
  private readonly dirty = new Set<string>()
  /** Ids taken for examination but left for the next turn (STARTS_PER_TURN or TURN_BUDGET_MS reached): examined first. */
  private carried: string[] = []
  /** How many of `carried`, from its start, waited only for a start (decided already: see flush). */
  private carriedStarts = 0
  /** Every child must be examined again (an explicit request: the start, a renewed replica id). */
  private dirtyAll = false
  /** A key the view is computed from changed: the children whose decisions the change alters are examined again (see flush). */
  private viewTouched = false
  /** What the decisions about every child last read from the view (see viewBasis). */
  private lastBasis: string | undefined
  /** What failovers read at the last examination (see failoverBasis). */
  private lastFailover: string | undefined
  /** The nodes holding children that were gone at the last examination. */
  private lastGone: ReadonlySet<string> = new Set()
  /** The ids of a full examination still to go, taken a slice per turn after `dirty`. */
  private pendingAll: Iterator<string> | undefined
  private flushScheduled = false
  private readonly tombstones = new Set<string>()
  private readonly waiters = new Set<() => void>()
  private stopped = false

  constructor(private readonly c: ReconcilerComponents) {}

  // ——— scheduling ———

  /**
   * A key of the map changed. A child key: that child is examined again. Any other (members,
   * suspicions, the member list, collection decisions): the children whose decisions the view
   * computed from them now decides differently (see flush) — a suspicion record rewritten with
   * the same votes, or a member's record bumped, changes no decision and examines no child.
   */
  keyChanged(key: string): void {
    if (key.startsWith(CHILD)) this.dirty.add(key.slice(CHILD.length))
    else this.viewTouched = true
    this.scheduleFlush()
  }

  /** Something the view is computed from changed (a peer up or down, a stall, a grace ending). */
  viewChanged(): void {
    this.viewTouched = true
    this.scheduleFlush()
  }

  /** Re-examine child `id`. */
  schedule(id: string): void {
    this.dirty.add(id)
    this.scheduleFlush()
  }

  /** Re-examine every child, whatever the view says (the start, a renewed replica id, a graceful stop). */
  scheduleAll(): void {
    this.dirtyAll = true
    this.scheduleFlush()
  }

  /** Re-examines tombstones, so expired ones are purged. */
  sweep(): void {
    for (const id of this.tombstones) this.dirty.add(id)
    if (this.tombstones.size > 0) this.scheduleFlush()
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.stopped) return
    this.flushScheduled = true
    setImmediate(() => {
      this.flushScheduled = false
      this.flush()
    })
  }

  /** Resolves when `pred` holds after a flush, or rejects after `timeout` ms. */
  waitUntil(pred: () => boolean, timeout: number, onTimeout: () => Error): Promise<void> {
    if (pred()) return Promise.resolve()
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!pred()) return
        this.waiters.delete(check)
        clearTimeout(timer)
        resolve()
      }
      const timer = setTimeout(() => {
        this.waiters.delete(check)
        reject(onTimeout())
      }, timeout)
      this.waiters.add(check)
    })
  }

  get idle(): boolean {
    return this.busy.size === 0
  }

  /** Waits (bounded) for every running action. */
  async settle(): Promise<void> {
    await this.bounded(Promise.all([...this.busy.values()]))
  }

  stop(): void {
    this.stopped = true
  }

  // ——— deciding ———

  /** The context of decisions, from a view. */
  context(view: MembershipView): PlacementContext {
    const m = this.c.membership
    return {
      self: this.c.self,
      members: view.members,
      gone: view.gone,
      leaving: !view.selfMember || m.isShuttingDown,
      quorum: this.c.strategy.hasQuorum(view.members),
      canAct: view.canAct,
      coordinator: view.coordinator === this.c.self,
      stale: m.stale,
      presumedDown: m.presumedDown(view),
      strategy: this.c.strategy,
      redistribution: this.c.redistribution,
      now: Date.now(),
      tombstoneTtl: this.c.tombstoneTtl,
    }
  }

  private flush(): void {
    if (this.stopped) return
    this.c.membership.checkLag()
    const view = this.c.membership.view()
    const ctx = this.context(view)
    if (this.dirtyAll || this.viewTouched) {
      const forced = this.dirtyAll
      this.dirtyAll = false
      this.viewTouched = false
      this.c.membership.publish(view)
      this.c.events.membersChanged(view)
      const basis = viewBasis(view, ctx)
      const failover = failoverBasis(view, ctx)
      const gone = new Set(this.c.replicator.placedNodes().filter((n) => view.gone(n)))
      const goneChanged = gone.size !== this.lastGone.size || [...gone].some((n) => !this.lastGone.has(n))
      if (forced || basis !== this.lastBasis) {
        // Taken lazily, a slice per turn: listing 100,000 ids at once is a stall of its own.
        this.pendingAll = this.allIds()
      } else if ((goneChanged || failover !== this.lastFailover) && ctx.coordinator && ctx.canAct) {
        // Only which nodes are gone, or what failing over reads, changed: that decides
        // differently only for children placed on a node gone now or before, and for
        // tombstones (see viewBasis) — and only at the coordinator that can act: elsewhere
        // decide() fails nothing over and purges nothing, before or after the change. A
        // failover examines the lost node's children, at the coordinator alone, not every
        // child. They join the scheduled ones (one walk of the placements).
        for (const id of this.c.replicator.idsPlacedOn(new Set([...gone, ...this.lastGone])))
          this.dirty.add(id)
        for (const id of this.tombstones) this.dirty.add(id)
      }
      this.lastBasis = basis
      this.lastFailover = failover
      this.lastGone = gone
    }
    // At most SLICE ids per turn: those carried over from the last, then the oldest dirty ones,
    // then those of a full examination; the rest wait for the next turn (with a fresh view):
    // others get to run meanwhile. Ids the actions below mark dirty again are examined next turn,
    // and so are the ids left once TURN_BUDGET_MS passed, and those to start once
    // STARTS_PER_TURN local starts have begun (the other decisions of the turn go on).
    const ids = this.carried
    const carriedStarts = this.carriedStarts
    this.carried = []
    this.carriedStarts = 0
    // A carried id marked dirty again since is examined once, now.
    for (const id of ids) this.dirty.delete(id)
    // While a full examination runs, it gets half the slice at least: a burst of record changes
    // (a large join) does not hold back a failover's writes.
    const forDirty = this.pendingAll === undefined ? SLICE : SLICE / 2
    for (const id of this.dirty) {
      if (ids.length >= forDirty) break
      ids.push(id)
      // Deleting the entry just visited is safe while a Set is iterated.
      this.dirty.delete(id)
    }
    while (this.pendingAll !== undefined && ids.length < SLICE) {
      const next = this.pendingAll.next()
      if (next.done === true) this.pendingAll = undefined
      else ids.push(next.value)
    }
    let starts = 0
    const until = performance.now() + TURN_BUDGET_MS
    /** Ids to start once this turn's starts are spent: examined again first next turn. */
    const waiting: string[] = []
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!
      if (i % 64 === 63 && performance.now() > until) {
        this.carried = ids.slice(i)
        break
      }
      if (this.busy.has(id)) this.deferred.add(id)
      else if (this.placedElsewhere(id, ctx)) this.tombstones.delete(id)
      else {
        // Once this turn's starts are spent, a start waits for the next turn, but the other
        // decisions go on: a failover's records for the other survivors are not held back by
        // the coordinator's own starts. One decided to start last turn already and waiting
        // again is not decided once more (it is decided afresh in the turn that starts it).
        const full = starts === STARTS_PER_TURN
        const outcome = full && i < carriedStarts ? 'wait' : this.examine(id, ctx, !full)
        if (outcome === 'wait') {
          waiting.push(id)
          continue
        }
        if (outcome === 'started') starts++
      }
      this.c.router.ready(id)
    }
    if (waiting.length > 0) {
      this.carried = [...waiting, ...this.carried]
      this.carriedStarts = waiting.length
    }
    if (this.dirty.size > 0 || this.carried.length > 0 || this.pendingAll !== undefined) this.scheduleFlush()
    this.c.events.flushed(view)
    for (const w of [...this.waiters]) w()
  }

  /**
   * Whether child `id` is placed on another node (a live record, no tombstone among its
   * siblings), does not run here, and this node does not fail children over: decide() then
   * has nothing to do (the row "assigned elsewhere, not running" of its table), so the child
   * is not examined. Every member receives every child record written anywhere, and this was
   * most of what each of them did with it — at a failover, two in five of the examinations of
   * the survivor that is not the coordinator. Read from the placements the replicator keeps
   * (O(1)), not from the records. The placement is read before the local children: a child
   * placed here is examined anyway, and each read is a lookup in a map of every child.
   */
  private placedElsewhere(id: string, ctx: PlacementContext): boolean {
    if (ctx.coordinator) return false
    const node = this.c.replicator.placedNode(id)
    return node !== undefined && node !== this.c.self && !this.c.local.has(id)
  }

  /**
   * Decides about child `id` (not busy) and carries the decision out. Without `canStart`, a
   * decision to start it is not carried out ('wait': examined again next turn) — but a write
   * made before the start is (the child is then dirty from that write).
   */
  private examine(id: string, ctx: PlacementContext, canStart: boolean): 'wait' | 'started' | 'done' {
    const siblings = this.c.replicator.childSiblings(id)
    if (siblings.some((s) => s.terminated === true)) this.tombstones.add(id)
    else this.tombstones.delete(id)
    const actions = decide(siblings, this.c.local.has(id), ctx)
    if (!canStart && actions[0]?.kind === 'run') return 'wait'
    this.c.counters.childrenExamined++
    // The records as this decision leaves them (a write replaces every sibling).
    let records = siblings
    for (const action of actions) {
      if (action.kind === 'write') records = [action.record]
      else if (action.kind === 'run') {
        if (!canStart) return 'done'
        // Once the start has run, would the same records and view decide anything more?
        // Usually not (no move to finish, no concurrent record, passive redistribution): then
        // it ends without an examination of its own, unless something changes meanwhile. At a
        // failover that was a third of each survivor's examinations.
        const settled = decide(records, true, ctx).length === 0
        // A write this decision made before it (a failover to this node) marked the child
        // dirty: the start already follows from that write.
        this.dirty.delete(id)
        this.apply(id, action, settled)
        return 'started'
      }
      this.apply(id, action)
    }
    return 'done'
  }

  /** Every child id in the map, then every local child's the map does not list (a copy the map no longer places). */
  private *allIds(): Generator<string> {
    yield* this.c.replicator.childIds()
    for (const id of this.c.local.ids()) if (!this.c.replicator.map.has(CHILD + id)) yield id
  }

  // ——— doing ———

  /**
   * Carries out one decision, in the turn it was taken from the records the map holds (flush):
   * a write is fenced by that read already (decide() returns at most one write, first).
   * `settled`: nothing more to decide once the action ends, unless something changes (see act).
   */
  private apply(id: string, a: Action, settled = false): void {
    switch (a.kind) {
      case 'run':
        this.act(id, () => this.run(a.record), settled)
        return
      case 'stop':
        if (a.conflict !== undefined) this.c.events.conflict(id, a.conflict)
        this.act(id, () => this.stopLocal(id))
        return
      case 'pause':
        this.act(id, () => this.stopLocal(id))
        return
      case 'handoff':
        this.act(id, () => this.handOff(id, a.record, a.target))
        return
      case 'write': {
        this.c.replicator.write(CHILD + id, a.record)
        if (a.failover === true) {
          this.c.counters.failovers++
          log('%s: owner %s is gone; reassigned to %s', id, a.expected.node, a.record.node)
        }
        // The write placed the child on another node and no copy runs here: examined again, it
        // would decide nothing (a later change of that node's status schedules it anyway). At a
        // failover that is half the coordinator's examinations.
        if (a.record.node !== this.c.self && !this.c.local.has(id) && !this.busy.has(id))
          this.dirty.delete(id)
        return
      }
      case 'forget':
        this.tombstone(id, a.expected)
        return
      case 'purge':
        this.tombstones.delete(id)
        this.c.replicator.remove(CHILD + id)
        return
    }
  }

  /**
   * Runs one local action per child at a time; re-examines the child when it ends — unless
   * `settled` (the action's decision foresaw nothing more to do once it ends) and no
   * examination was asked for meanwhile. A change made by the action itself (a failed start's
   * tombstone) marks the child dirty as it is written, so it is examined either way.
   */
  private act(id: string, action: () => Promise<unknown>, settled = false): void {
    const p = action()
      .catch((err) => log('%s: %s', id, (err as Error).message))
      .finally(() => {
        this.busy.delete(id)
        if (this.deferred.delete(id) || !settled) this.schedule(id)
      })
    this.busy.set(id, p)
  }

  private bounded<T>(p: Promise<T>): Promise<T | undefined> {
    let timer: NodeJS.Timeout | undefined
    const limit = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), this.c.actionBound)
      timer.unref()
    })
    return Promise.race([p.catch(() => undefined), limit]).finally(() => clearTimeout(timer))
  }

  /** Writes `next` for child `id` only if its record is still `expected`; counts refusals. */
  private fencedWrite(id: string, expected: ChildRecord, next: ChildRecord): Delta<unknown> | undefined {
    const now = this.c.replicator.childRecord(id)
    if (
      now === undefined ||
      now.terminated === true ||
      now.node !== expected.node ||
      now.epoch !== expected.epoch
    ) {
      this.c.counters.fencedWrites++
      log('%s: not writing (the record changed: %o)', id, now)
      return undefined
    }
    return this.c.replicator.write(CHILD + id, next)
  }

  /** Marks child `id` terminated (a tombstone that beats every concurrent placement). */
  tombstone(id: string, expected?: ChildRecord): void {
    const now = this.c.replicator.childRecord(id)
    if (now === undefined || now.terminated === true) return
    if (expected !== undefined && (now.node !== expected.node || now.epoch !== expected.epoch)) {
      this.c.counters.fencedWrites++
      return
    }
    this.tombstones.add(id)
    this.c.replicator.write(CHILD + id, {
      node: this.c.self,
      epoch: now.epoch,
      spec: now.spec,
      terminated: true,
      at: Date.now(),
    } satisfies ChildRecord)
  }

  private async run(rec: ChildRecord): Promise<void> {
    const id = rec.spec.id
    try {
      await this.c.local.start(localSpec(rec.spec), rec.hasSaved === true ? { restoreState: rec.saved } : {})
    } catch (err) {
      log('%s: could not start here: %s', id, (err as Error).message)
      this.c.events.startFailed(id, err)
      this.tombstone(id, rec)
      return
    }
    this.c.router.ready(id)
  }

  async stopLocal(id: string): Promise<void> {
    if (!this.c.local.has(id)) return
    this.expectedStops.add(id)
    try {
      await this.c.local.terminate(id, 'shutdown')
    } finally {
      this.expectedStops.delete(id)
    }
  }

  /**
   * A planned move: drain the child here (so its state can travel) and assign it, with that
   * state, to `target` — unless its record changed meanwhile (terminated, or placed anew).
   */
  private async handOff(id: string, rec: ChildRecord, target: string): Promise<void> {
    let result: Omit<DrainResult, 'reason'> = { pending: [] }
    if (this.c.local.has(id)) {
      this.expectedStops.add(id)
      try {
        result = await this.c.local.drain(id)
      } finally {
        this.expectedStops.delete(id)
      }
    }
    if (rec.spec.restart === 'temporary') this.tombstone(id, rec)
    else {
      const next: ChildRecord = { node: target, epoch: rec.epoch + 1, spec: rec.spec, from: this.c.self }
      if ('saved' in result) {
        const size = encodedSize(result.saved)
        if (size > this.c.maxValueBytes) {
          this.c.counters.handoffStatesDropped++
          log('%s: handoff state of %d bytes exceeds maxValueBytes: moved without it', id, size)
        } else {
          next.saved = result.saved
          next.hasSaved = true
        }
      }
      let written: Delta<unknown> | undefined
      try {
        written = this.fencedWrite(id, rec, next)
      } catch (err) {
        // The saved state is not storable: move the child without it.
        log('%s: handoff state dropped: %s', id, (err as Error).message)
        written = this.fencedWrite(id, rec, {
          node: target,
          epoch: rec.epoch + 1,
          spec: rec.spec,
          from: this.c.self,
        })
      }
      if (written !== undefined) this.c.counters.handoffs++
    }
    // Messages the child had accepted but not handled follow it, ahead of newer ones, each
    // with its nact sender (a ref that routes back here).
    for (const { message, sender } of result.pending) this.c.router.route(id, message, sender)
  }

  /**
   * The node was frozen for at least the failure timeout. If the other members could agree
   * without it that it is down, they have most likely failed its children over while it was
   * frozen: its own copies stop now — before it acts on anything queued during the stall, so
   * they never run beside the new ones. Their records stay: if the map still places them here
   * once the view is fresh (the others were frozen too, or could not agree), they start again.
   */
  afterLongStall(): void {
    const view = this.c.membership.view()
    const others = view.electorate.filter((m) => m !== this.c.self && !view.down.has(m))
    if (!isWinningCoalition(others, view.electorate)) return
    let n = 0
    for (const child of this.c.local.children()) {
      if (this.busy.has(child.id) || this.c.replicator.placement(child.id)?.node !== this.c.self) continue
      n++
      this.act(child.id, () => this.stopLocal(child.id))
    }
    if (n > 0) log('frozen past the failure timeout: stopped %d children the others may have failed over', n)
  }

  // ——— requests of the API ———

  /**
   * Starts `spec` on this node for a caller (this node's API or a peer's proxied start), and
   * writes its record once `init` succeeded. Resolves with the record's delta, encoded (the caller hands it on).
   */
  async startLocal(spec: ReplicatedSpec, shuttingDown: () => boolean): Promise<Uint8Array> {
    const prior = this.busy.get(spec.id)
    if (prior !== undefined) await this.bounded(prior)
    const existing = this.c.replicator.placement(spec.id)
    if (existing !== undefined) throw new AlreadyStartedError(spec.id, existing.node)
    if (this.c.local.has(spec.id) || this.busy.has(spec.id))
      throw new AlreadyStartedError(spec.id, this.c.self)
    if (shuttingDown()) throw new NodeShuttingDownError(this.c.self)
    const seen = this.c.replicator.childRecord(spec.id)
    const p = this.c.local.start(localSpec(spec))
    this.busy.set(
      spec.id,
      p.catch(() => undefined),
    )
    try {
      await p
      // Fenced like every write after an await: if the id was placed elsewhere (a concurrent
      // start) or placed and terminated while our init ran, this start lost — it must not
      // overwrite what it never saw.
      const now = this.c.replicator.childRecord(spec.id)
      if (
        now !== undefined &&
        (now.epoch !== seen?.epoch || now.node !== seen.node || now.terminated !== seen.terminated)
      ) {
        this.c.counters.fencedWrites++
        await this.stopLocal(spec.id)
        throw new AlreadyStartedError(spec.id, now.node)
      }
      // A new placement supersedes a tombstone it has seen; its epoch continues past it.
      const epoch = (now?.epoch ?? 0) + 1
      return encodeDelta(
        this.c.replicator.write(CHILD + spec.id, {
          node: this.c.self,
          epoch,
          spec,
        } satisfies ChildRecord),
      )
    } finally {
      this.busy.delete(spec.id)
      this.deferred.delete(spec.id)
      this.schedule(spec.id)
    }
  }

  /**
   * Terminates child `id` from this node: a tombstone in the map (every replica then stops
   * it), and the local copy stopped. A child still in its first `init` here is cancelled.
   */
  async terminate(id: string): Promise<void> {
    const rec = this.c.replicator.childRecord(id)
    const live = rec !== undefined && rec.terminated !== true
    if (!live && !this.c.local.has(id)) throw new NotFoundError(id)
    if (!live) {
      // Starting here (no record yet) or a copy the map no longer places: stop it now.
      await this.stopLocal(id)
      return
    }
    const prior = this.busy.get(id)
    if (prior !== undefined) await this.bounded(prior)
    this.tombstone(id)
    await this.stopLocal(id)
  }
}

/**
 * What the decisions about every child read from a view, as one string — apart from which
 * nodes are gone and what failing over reads ({@link failoverBasis}). decide.ts reads those
 * only for a child placed on another node that is gone (whether to fail it over, and to which
 * member) and for a tombstone (whether to purge it) — unless redistribution is active or this
 * node is leaving, when every own child's target depends on the members and `canAct` too, so
 * they are part of this string then. Two views with the same basis decide alike every child
 * except those placed on a node gone in either, and tombstones.
 */
export function viewBasis(view: MembershipView, ctx: PlacementContext): string {
  const targets = ctx.redistribution === 'active' || ctx.leaving
  return JSON.stringify([
    view.selfMember,
    ctx.leaving,
    ctx.quorum,
    ctx.stale,
    ctx.presumedDown,
    targets ? view.members.map((m) => [m.nodeId, m.status]) : null,
    targets ? ctx.canAct : null,
  ])
}

/** What failing over a gone node's child, and purging a tombstone, read from a view (see viewBasis). */
export function failoverBasis(view: MembershipView, ctx: PlacementContext): string {
  return JSON.stringify([ctx.coordinator, ctx.canAct, view.members.map((m) => [m.nodeId, m.status])])
}

const packr = new Packr({ useRecords: false })

/** Bytes `value` takes MessagePack-encoded (as the map stores it); unencodable values count as infinite. */
export function encodedSize(value: unknown): number {
  try {
    return packr.pack(value).length
  } catch {
    return Number.POSITIVE_INFINITY
  }
}

/** The spec the local supervisor runs: the replicated one with -1 turned back into Infinity. */
export function localSpec(spec: ReplicatedSpec): ChildSpec {
  return { ...spec, shutdown: spec.shutdown < 0 ? Number.POSITIVE_INFINITY : spec.shutdown }
}
