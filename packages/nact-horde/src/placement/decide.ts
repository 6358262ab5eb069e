import type { DistributionStrategy, MemberInfo } from '../distribution/strategy.js'
import { type ChildRecord, resolveChild } from '../state/records.js'

/** What a node knows when it decides about one child: a snapshot, no clocks read, no effects. */
export interface PlacementContext {
  self: string
  /** Members as this node sees them. */
  members: readonly MemberInfo[]
  /** Whether a node is gone for good: downed by agreement, left, or removed from the member list. */
  gone(nodeId: string): boolean
  /** This node is leaving (stopping gracefully, or no longer in the member list). */
  leaving: boolean
  /** The strategy lets this side run children. */
  quorum: boolean
  /** This node may decide for others (fresh view, hears a winning coalition, not down itself). */
  canAct: boolean
  /** This node fails over downed members' children. */
  coordinator: boolean
  /** This node's view is stale: it starts nothing until it is fresh again. */
  stale: boolean
  /**
   * This node woke from a stall to find that enough peers had hung up on it to down it: its
   * children have most likely been failed over, so its own copies stop (records kept).
   */
  presumedDown: boolean
  strategy: DistributionStrategy
  redistribution: 'passive' | 'active'
  /** Now (ms), and how long tombstones are kept. */
  now: number
  tombstoneTtl: number
}

/** A decision about one child; the reconciler carries it out. */
export type Action =
  /** Run the child here under `record` (restoring its carried state, if any). */
  | { kind: 'run'; record: ChildRecord }
  /** Stop the local copy: `conflict` names the node that keeps it when this copy lost a conflict. */
  | { kind: 'stop'; conflict?: string }
  /** Stop the local copy but keep its record (no quorum, or nowhere to move it yet). */
  | { kind: 'pause' }
  /** Planned move: drain the local copy and assign it (with its state) to `target`. */
  | { kind: 'handoff'; record: ChildRecord; target: string }
  /** Write `record` over `expected`, the record the decision read (written in the same turn: fenced by that read). */
  | { kind: 'write'; expected: ChildRecord; record: ChildRecord; failover?: boolean }
  /** Forget the child for good (a temporary child whose node is gone): a tombstone. */
  | { kind: 'forget'; expected: ChildRecord }
  /** Delete an expired tombstone. */
  | { kind: 'purge' }

/** The record for the same child on `target`, one epoch on, carrying what a move carries. */
export function moved(rec: ChildRecord, target: string, from?: string): ChildRecord {
  const next: ChildRecord = { node: target, epoch: rec.epoch + 1, spec: rec.spec }
  if (from !== undefined) next.from = from
  if (rec.hasSaved === true) {
    // An unfinished move carries state: a reassignment keeps it (and where it came from).
    next.saved = rec.saved
    next.hasSaved = true
    next.from = from ?? rec.from
  }
  return next
}

/**
 * What this node should do about child `id`, from the child's records in the map, whether it
 * runs here, and the node's view. Pure: every rule is a row of the table in
 * test/placement.test.ts.
 */
export function decide(siblings: readonly ChildRecord[], running: boolean, ctx: PlacementContext): Action[] {
  const rec = resolveChild(siblings)
  if (rec === undefined) return running ? [{ kind: 'stop' }] : []

  if (rec.terminated === true) {
    const out: Action[] = running ? [{ kind: 'stop' }] : []
    if (ctx.coordinator && ctx.canAct && ctx.now - (rec.at ?? 0) > ctx.tombstoneTtl)
      out.push({ kind: 'purge' })
    return out
  }

  if (rec.node === ctx.self) {
    if (ctx.leaving) {
      const others = ctx.members.filter((m) => m.nodeId !== ctx.self)
      const target = ctx.strategy.chooseNode(rec.spec, others)
      if (running)
        return target === undefined ? [{ kind: 'pause' }] : [{ kind: 'handoff', record: rec, target }]
      if (target === undefined) return []
      if (rec.spec.restart === 'temporary') return [{ kind: 'forget', expected: rec }]
      return [{ kind: 'write', expected: rec, record: moved(rec, target, ctx.self) }]
    }
    if (!ctx.quorum || ctx.presumedDown) return running ? [{ kind: 'pause' }] : []
    if (!running) return ctx.stale ? [] : [{ kind: 'run', record: rec }]
    const out: Action[] = []
    if (siblings.length > 1 || rec.from !== undefined || rec.hasSaved === true) {
      // Concurrent records (collapse them into the winner) or a finished move (drop its state).
      out.push({ kind: 'write', expected: rec, record: { node: ctx.self, epoch: rec.epoch, spec: rec.spec } })
    }
    if (
      ctx.redistribution === 'active' &&
      ctx.canAct &&
      rec.from === undefined &&
      ctx.strategy.deterministic !== false
    ) {
      const desired = ctx.strategy.chooseNode(rec.spec, ctx.members)
      if (desired !== undefined && desired !== ctx.self)
        out.push({ kind: 'handoff', record: rec, target: desired })
    }
    return out
  }

  // Assigned elsewhere.
  if (running) {
    // A planned move of ours finishing, or a copy that lost: to a newer placement (this node
    // was failed over while cut off) or to a concurrent one (both sides of a split ran it).
    return [rec.from === ctx.self ? { kind: 'stop' } : { kind: 'stop', conflict: rec.node }]
  }
  if (!ctx.gone(rec.node) || !ctx.coordinator || !ctx.canAct || !ctx.quorum) return []
  const target = ctx.strategy.chooseNode(rec.spec, ctx.members)
  if (target === undefined || target === rec.node) return []
  if (rec.spec.restart === 'temporary') return [{ kind: 'forget', expected: rec }]
  const next = moved(rec, target)
  const write: Action = { kind: 'write', expected: rec, record: next, failover: true }
  if (target !== ctx.self) return [write]
  // Failed over to this node: it starts the child in the same turn if the written record,
  // examined next, would have it do so — not a second examination of every child it takes.
  return [write, ...decide([next], false, ctx).filter((a) => a.kind === 'run')]
}
