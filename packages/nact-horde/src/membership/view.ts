import type { MemberInfo } from '../distribution/strategy.js'
import type { MemberRecord } from '../state/records.js'
import { computeDown, isWinningCoalition, lowest, type Suspects } from './downing.js'

/** Everything a membership view is computed from: a snapshot, no clocks, no effects. */
export interface ViewInput {
  self: string
  /** This node is stopping gracefully. */
  shuttingDown: boolean
  /** The explicit member list, or 'auto'. */
  configured: readonly string[] | 'auto'
  /** Every `m/` record in the map. */
  records: ReadonlyMap<string, MemberRecord>
  /** Replicated suspicions, per voter. */
  suspicions: ReadonlyMap<string, Suspects>
  /** Peers the transport has up now. */
  up: ReadonlySet<string>
  /** Members this node suspects now (its own, possibly not yet replicated, suspicions). */
  suspects: Suspects
  /** Members never reached and still within their join grace. */
  inGrace: { has(nodeId: string): boolean }
  /** This node's view is stale (its event loop was blocked a moment ago). */
  stale: boolean
}

/** One node's view of the cluster, and what it may decide from it. */
export interface MembershipView {
  /** Every member with its status as this node sees it, sorted by id. */
  members: MemberInfo[]
  /** The agreed membership: the members whose votes count (sorted). */
  electorate: string[]
  /** Members downed by agreement. */
  down: Set<string>
  /** This node is a member (explicit list) and not leaving. */
  selfMember: boolean
  /**
   * This node may take decisions for others (fail children over, rebalance): its view is
   * fresh, it is not down itself, and it hears from a winning coalition of the members standing.
   */
  canAct: boolean
  /** The member standing with the lowest id: the one that fails over a downed member's children. */
  coordinator: string | undefined
  /** Whether `nodeId` is gone for good: downed by agreement, left, or not in the explicit member list. */
  gone(nodeId: string): boolean
}

/** Computes a membership view (pure). */
export function computeView(i: ViewInput): MembershipView {
  const electorate = new Set<string>()
  if (i.configured !== 'auto') for (const m of i.configured) electorate.add(m)
  else {
    for (const [nodeId, rec] of i.records) if (rec.status !== 'left') electorate.add(nodeId)
    if (!i.shuttingDown) electorate.add(i.self)
  }
  const sorted = [...electorate].sort()
  // Our own suspicions count as soon as we hold them, even before the map carries them.
  const votes = new Map(i.suspicions)
  votes.set(i.self, i.suspects)
  const down = computeDown(sorted, votes)

  const statusOf = (nodeId: string): MemberInfo['status'] => {
    if (nodeId === i.self) return i.shuttingDown ? 'shutting_down' : 'alive'
    const rec = i.records.get(nodeId)
    if (rec === undefined) return 'uninitialized'
    if (rec.status === 'left' || down.has(nodeId)) return 'dead'
    if (i.suspects[nodeId] !== undefined) return 'suspected'
    if (!i.up.has(nodeId)) return i.inGrace.has(nodeId) ? 'uninitialized' : 'suspected'
    return rec.status
  }

  let listed: string[]
  if (i.configured !== 'auto') listed = [...i.configured]
  else {
    listed = [...i.records.keys()].filter((n) => i.records.get(n)!.status !== 'left' || n === i.self)
    if (!listed.includes(i.self)) listed.push(i.self)
  }
  const members = [...new Set(listed)].sort().map((nodeId) => ({ nodeId, status: statusOf(nodeId) }))

  const standing = sorted.filter((m) => !down.has(m))
  const heard = standing.filter((m) => m === i.self || i.up.has(m))
  const selfMember = electorate.has(i.self) && !i.shuttingDown
  const canAct = !i.stale && selfMember && !down.has(i.self) && isWinningCoalition(heard, standing)
  // The lowest member standing that has joined (alive, or merely suspected here), whether or not
  // this node reaches it: given the same downed set every node names the same one, so two
  // survivors never both fail a child over. Not one never reached yet, nor one leaving.
  const coordinator = lowest(
    standing.filter((m) => {
      const st = statusOf(m)
      return st === 'alive' || st === 'suspected'
    }),
  )
  const gone = (nodeId: string): boolean =>
    down.has(nodeId) ||
    i.records.get(nodeId)?.status === 'left' ||
    // Removed from the member list: gone once it cannot hand its children over itself.
    (i.configured !== 'auto' && !i.configured.includes(nodeId) && !i.up.has(nodeId))
  return { members, electorate: sorted, down, selfMember, canAct, coordinator, gone }
}
