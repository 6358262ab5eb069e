import createDebug from 'debug'
import type { Counters } from '../observability/counters.js'
import {
  MEMBER,
  type MemberRecord,
  RETIRED,
  type RetiredRecord,
  readRetired,
  SUSPICION,
} from '../state/records.js'
import type { Replicator } from '../state/replicator.js'
import type { MembershipView } from './view.js'

const log = createDebug('horde:collection')

/**
 * Garbage collection of members that left and of the replica ids of processes that are gone, so
 * node restarts leave memory and sync messages flat (every process start writes under a new
 * replica id, and every sync message carries one causal-context entry per id).
 *
 * The coordinator decides; every replica applies the decision:
 * 1. a member that left by itself (not one reaped while down: it may be alive behind a
 *    partition) for at least `tombstoneTtl`, not connected, with no child placed on it, is
 *    collected: its `m/` and `s/` keys are deleted and its replica ids retired (below);
 * 2. a replica id in the causal context that no member record names (a process restarted
 *    under the same node id, a straggler's write) for at least `tombstoneTtl` is retired;
 * 3. retiring id R: the coordinator rebases R's live writes (same values under its own id), then
 *    writes `g/R`. For half a `tombstoneTtl` after a replica sees `g/R`, R stays in its context, so
 *    that what the coordinator wrote over R's writes (its rebases, the deleted member keys) reaches
 *    every replica by ordinary anti-entropy — a replica that rebased R's writes at once could bring
 *    back a key the coordinator deleted, since its rebase would be concurrent with the delete —
 *    and the coordinator rebases any write of R that still reaches it. Then each replica rebases
 *    whatever live write of R it still holds (one the coordinator never had) and retires R in its
 *    map: R leaves its causal context and R's dots are ignored from then on. A replica whose own
 *    id was retired (it was cut off long enough to be collected) continues under a new id at once;
 * 4. `tombstoneTtl` after writing `g/R` the coordinator deletes it, and every replica forgets R
 *    (the retired set stays bounded). A replica that missed the decision and still sends R's dots
 *    puts R back in the others' contexts: R is then unnamed again, and step 2 retires it again.
 *    (Like an expired child tombstone, this has a limit: a replica cut off for longer than that,
 *    holding writes of R that the others superseded, brings them back when it returns.)
 */

/** One member as a collection pass sees it. */
export interface CollectedMember {
  /** Its status (the winning record). */
  status: MemberRecord['status']
  /** Marked left by the coordinator after it was down (not by itself): never collected. */
  reaped: boolean
  /** The replica id of every concurrent record of it (undefined: a record of an older version). */
  replicas: readonly (string | undefined)[]
  /** When this node first saw it `left` (undefined: it is not left). */
  leftSince: number | undefined
  /** This node is connected to it. */
  up: boolean
  /** Children placed on it. */
  placed: number
}

/** Everything one collection pass decides from: a snapshot, no clocks, no effects. */
export interface CollectionInput {
  now: number
  ttl: number
  /** This node is the coordinator and may act (see MembershipView). */
  coordinator: boolean
  /** This replica's own id (never retired by itself). */
  ownReplica: string
  members: ReadonlyMap<string, CollectedMember>
  /** Replica ids in this replica's causal context. */
  replicaIds: readonly string[]
  /** When each replica id was first seen named by no member record. */
  unnamedSince: ReadonlyMap<string, number>
  /** Retirement decisions in the map: replica id → when decided. */
  decisions: ReadonlyMap<string, number>
}

/** What one collection pass does. */
export interface CollectionDecision {
  /** Members whose `m/` and `s/` keys are deleted. */
  removeMembers: string[]
  /** Replica ids to rebase and retire (`g/` written). */
  retire: string[]
  /** Decisions whose time is up (`g/` deleted). */
  dropDecisions: string[]
}

/** The replica ids some member record names, and whether an alive record names none (older version). */
export function namedReplicas(members: ReadonlyMap<string, CollectedMember>): {
  named: Set<string>
  unknown: boolean
} {
  const named = new Set<string>()
  let unknown = false
  for (const m of members.values()) {
    for (const r of m.replicas) {
      if (r !== undefined) named.add(r)
      else if (m.status !== 'left') unknown = true
    }
  }
  return { named, unknown }
}

/** One collection pass (pure). Only the coordinator decides anything. */
export function decideCollection(i: CollectionInput): CollectionDecision {
  const out: CollectionDecision = { removeMembers: [], retire: [], dropDecisions: [] }
  if (!i.coordinator) return out
  const retire = new Set<string>()
  const eligible = (r: string | undefined): r is string =>
    r !== undefined && r !== i.ownReplica && !i.decisions.has(r)
  for (const [nodeId, m] of i.members) {
    if (m.status !== 'left' || m.leftSince === undefined || i.now - m.leftSince < i.ttl) continue
    // A member reaped while down may be alive behind a partition: collecting it (retiring its
    // replica id) would let it bring back, when it returns, writes the others had superseded or
    // deleted meanwhile, since no replica would keep the dots that cancel them. It stays, one
    // key per node identity (not per restart); if it returns it re-announces itself.
    if (m.reaped) continue
    if (m.up || m.placed > 0) continue
    out.removeMembers.push(nodeId)
    for (const r of m.replicas) if (eligible(r)) retire.add(r)
  }
  const { named, unknown } = namedReplicas(i.members)
  // A record without a replica id may be an alive member's: no unnamed id is safe to take then.
  if (!unknown) {
    for (const r of i.replicaIds) {
      if (named.has(r) || !eligible(r)) continue
      const since = i.unnamedSince.get(r)
      if (since !== undefined && i.now - since >= i.ttl) retire.add(r)
    }
  }
  out.retire = [...retire].sort()
  for (const [r, at] of i.decisions) if (i.now - at >= i.ttl) out.dropDecisions.push(r)
  out.dropDecisions.sort()
  return out
}

/** What the collector needs from the rest of the horde. */
export interface CollectorComponents {
  replicator: Replicator
  counters: Counters
  /** This node's id. */
  self: string
  /** How long a left member, an unnamed replica id and a decision wait, ms (`tombstoneTtl`). */
  ttl: number
  /** Member ids with an `m/` key. */
  memberIds(): Iterable<string>
  isUp(nodeId: string): boolean
  /** This node's own record must name its new replica id: re-announce it. */
  renewed(): void
}

/**
 * The effectful side of collection: tracks since when members are left and replica ids unnamed,
 * runs {@link decideCollection} on the coordinator, and applies decisions (its own and the
 * coordinator's) to this replica.
 */
export class Collector {
  private readonly leftSince = new Map<string, number>()
  private readonly unnamedSince = new Map<string, number>()
  /** `g/` keys in the map: replica id → when decided. */
  private readonly decisions = new Map<string, number>()
  /** Decided replica ids not retired here yet → when this node first saw the decision. */
  private readonly pending = new Map<string, number>()

  constructor(private readonly c: CollectorComponents) {}

  /** One pass: called periodically with this node's view. */
  collect(view: MembershipView): void {
    const r = this.c.replicator
    const now = Date.now()
    const members = new Map<string, CollectedMember>()
    for (const nodeId of this.c.memberIds()) {
      const siblings = r.memberSiblings(nodeId)
      const rec = r.member(nodeId)
      if (rec === undefined) continue
      if (rec.status === 'left') {
        if (!this.leftSince.has(nodeId)) this.leftSince.set(nodeId, now)
      } else this.leftSince.delete(nodeId)
      members.set(nodeId, {
        status: rec.status,
        reaped: rec.reaped === true,
        replicas: siblings.map((s) => s.replica),
        leftSince: this.leftSince.get(nodeId),
        up: this.c.isUp(nodeId),
        placed: r.placedOn(nodeId),
      })
    }
    for (const nodeId of this.leftSince.keys()) if (!members.has(nodeId)) this.leftSince.delete(nodeId)

    const replicaIds = r.map.replicaIds()
    const own = r.map.replicaId
    const { named } = namedReplicas(members)
    const present = new Set(replicaIds)
    for (const id of replicaIds) {
      if (id === own || named.has(id)) this.unnamedSince.delete(id)
      else if (!this.unnamedSince.has(id)) this.unnamedSince.set(id, now)
    }
    for (const id of this.unnamedSince.keys()) if (!present.has(id)) this.unnamedSince.delete(id)

    const d = decideCollection({
      now,
      ttl: this.c.ttl,
      coordinator: view.canAct && view.coordinator === this.c.self,
      ownReplica: own,
      members,
      replicaIds,
      unnamedSince: this.unnamedSince,
      decisions: this.decisions,
    })
    for (const nodeId of d.removeMembers) {
      log('collecting member %s (left, nothing placed on it)', nodeId)
      r.remove(MEMBER + nodeId)
      r.remove(SUSPICION + nodeId)
      this.leftSince.delete(nodeId)
      this.c.counters.membersCollected++
    }
    for (const id of d.retire) {
      log('retiring replica id %s', id)
      // Its live writes first, so the decision never reaches a replica before them.
      r.rebase(id)
      r.write(RETIRED + id, { at: now } satisfies RetiredRecord)
    }
    for (const id of d.dropDecisions) r.remove(RETIRED + id)
    this.retirePending(now, view.canAct && view.coordinator === this.c.self)
  }

  /** Rebases and retires the decided ids whose grace (half a `tombstoneTtl`) is over. */
  private retirePending(now: number, coordinator: boolean): void {
    const r = this.c.replicator
    for (const [id, seen] of this.pending) {
      const over = now - seen >= this.c.ttl / 2
      // The coordinator takes over every write of R that reaches it meanwhile.
      if (over || coordinator) r.rebase(id)
      if (!over) continue
      this.pending.delete(id)
      if (r.map.retire(id)) this.c.counters.replicasRetired++
      else log('replica id %s still has live writes here: not retired', id)
    }
  }

  /** A key of the map changed: apply retirement decisions as they come and go. */
  keyChanged(key: string): void {
    if (!key.startsWith(RETIRED)) return
    const id = key.slice(RETIRED.length)
    const r = this.c.replicator
    const rec = readRetired(r.map.get(key))
    if (rec === undefined) {
      this.decisions.delete(id)
      this.pending.delete(id)
      r.map.forgetRetired(id)
      return
    }
    this.decisions.set(id, rec.at)
    this.unnamedSince.delete(id)
    if (this.pending.has(id) || r.map.retiredIds().includes(id)) return
    this.pending.set(id, Date.now())
    if (id === r.map.replicaId) {
      // Cut off long enough to be collected: the others ignore this id's writes now.
      log('this replica id was retired while cut off: continuing under a new one')
      r.renewReplica()
      this.c.renewed()
    }
  }
}
