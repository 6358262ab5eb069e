import type { ChildSpec } from '../behaviour.js'

/** A member as a distribution strategy sees it. */
export interface MemberInfo {
  /** The member's node id. */
  readonly nodeId: string
  /**
   * As this node sees it: `alive`; `shutting_down` (stopping gracefully); `suspected` (this
   * node cannot reach it, but the cluster has not agreed that it is down); `dead` (downed by
   * agreement, or left); `uninitialized` (not heard from yet, or not reached yet during the
   * join grace). Place children only on `alive` members.
   */
  readonly status: 'alive' | 'shutting_down' | 'suspected' | 'dead' | 'uninitialized'
}

/**
 * Decides where children run. Implement it to place children your own way; it must be a pure
 * function of its arguments (every node evaluates it and must reach the same answer from the
 * same member view).
 */
export interface DistributionStrategy {
  /** A short name for logs and metrics. */
  readonly name: string
  /**
   * The node that should run `spec`, chosen among `members` (every configured member, with its
   * status; pick an `alive` one). Return undefined when none can take it.
   */
  chooseNode(
    spec: Pick<ChildSpec, 'id'> & Partial<ChildSpec>,
    members: readonly MemberInfo[],
  ): string | undefined
  /** Whether this side of the cluster may run children at all. */
  hasQuorum(members: readonly MemberInfo[]): boolean
  /**
   * False when `chooseNode` may answer differently for the same arguments (random placement).
   * Then active redistribution leaves children where they are (it would move them forever),
   * and duplicates after a partition are resolved by rendezvous hashing over the candidates
   * so that every node picks the same survivor. @default true
   */
  readonly deterministic?: boolean
}

/** 32-bit FNV-1a, the same on every node. */
export function hash32(s: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  // Final avalanche: FNV alone spreads similar strings poorly.
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

/**
 * Rendezvous (highest-random-weight) hashing: each child goes to the alive member with the
 * highest hash(child, member). Deterministic, balanced, and minimal movement: when a member
 * joins or leaves only the children whose top choice it is (≈ 1/N) change place.
 */
export function rendezvous(id: string, members: readonly MemberInfo[]): string | undefined {
  let best: string | undefined
  let bestScore = -1
  for (const m of members) {
    if (m.status !== 'alive') continue
    const score = hash32(`${id}\u0000${m.nodeId}`)
    if (score > bestScore || (score === bestScore && best !== undefined && m.nodeId > best)) {
      best = m.nodeId
      bestScore = score
    }
  }
  return best
}

/** Uniform placement by consistent (rendezvous) hashing over the alive members. Never refuses for quorum. */
export function uniformDistribution(): DistributionStrategy {
  return {
    name: 'uniform',
    chooseNode: (spec, members) => rendezvous(spec.id, members),
    hasQuorum: () => true,
  }
}

/**
 * Like {@link uniformDistribution}, but a side of the cluster without a quorum of the
 * configured members (see {@link hasQuorumOf}: a strict majority of the voting members, or
 * exactly half of them including the one with the lowest node id) refuses starts and stops its
 * children, which the other side restarts. In any split of the members into two sides, exactly
 * one side has quorum, so an even split stops only one side. Use it when running a child twice
 * during a partition is worse than not running it for a while.
 */
export function uniformQuorumDistribution(): DistributionStrategy {
  return {
    name: 'uniform_quorum',
    chooseNode: (spec, members) => (hasMajority(members) ? rendezvous(spec.id, members) : undefined),
    hasQuorum: hasMajority,
  }
}

/** A uniformly random alive member for each start. Moves on membership change are decided afresh. */
export function uniformRandomDistribution(random: () => number = Math.random): DistributionStrategy {
  return {
    name: 'uniform_random',
    deterministic: false,
    chooseNode: (_spec, members) => {
      const alive = members.filter((m) => m.status === 'alive')
      return alive.length === 0 ? undefined : alive[Math.floor(random() * alive.length)]!.nodeId
    },
    hasQuorum: () => true,
  }
}

/**
 * The quorum rule of {@link uniformQuorumDistribution}, as a pure function of node ids, for
 * anything that must decide the same way (e.g. whether a side may down the members it cannot
 * see): `aliveIds` (those this side sees alive; ids not in `votingIds` are ignored) hold a
 * quorum of `votingIds` (duplicates count once) when they are
 *
 * - more than half of the voting members, or
 * - exactly half of them, one being the voting member with the lowest node id (by `<`, i.e.
 *   UTF-16 code unit order, the same on every node).
 *
 * No voting members: no quorum.
 *
 * Why the tie-break: with an even number of voting members a split can leave two sides of
 * exactly half, and a plain strict majority then stops both (a 2|2 split stopped every child).
 * Any split of the voting members into two sides gives exactly one side quorum under this rule.
 * When some members are down on both sides, or a leaving member is seen shutting down on one
 * side and dead on the other, at most one side has it — as long as no member is seen alive on
 * both sides (overlapping views are not a split, and no quorum rule can help there). It amounts
 * to counting the lowest member's vote twice when the count is even, making the total odd. The
 * other usual fix, Horde's, drops the lowest-named member's vote when the count is even; both
 * agree everywhere except on an exact half, where they pick opposite sides. Dropping the vote
 * means that member's liveness never changes the outcome; counting it twice keeps it
 * meaningful (in a two-node cluster the lowest member alone keeps quorum, the other alone does
 * not — with Horde's rule it is the other way round).
 *
 * @param aliveIds - node ids this side sees alive.
 * @param votingIds - node ids of the voting members: the configured members, without those
 *   shutting down (they announced they leave, so a cluster can shrink one node at a time).
 */
export function hasQuorumOf(aliveIds: Iterable<string>, votingIds: readonly string[]): boolean {
  const voting = new Set(votingIds)
  if (voting.size === 0) return false
  const alive = new Set<string>()
  for (const id of aliveIds) if (voting.has(id)) alive.add(id)
  const twice = alive.size * 2
  if (twice !== voting.size) return twice > voting.size
  let lowest: string | undefined
  for (const id of voting) if (lowest === undefined || id < lowest) lowest = id
  return alive.has(lowest as string)
}

/**
 * {@link hasQuorumOf} over a member view. A member that is shutting down has announced it is
 * leaving: it no longer votes. Dead and uninitialized members still vote: they may be alive
 * across a partition.
 */
function hasMajority(members: readonly MemberInfo[]): boolean {
  const voting: string[] = []
  const alive: string[] = []
  for (const m of members) {
    if (m.status === 'shutting_down') continue
    voting.push(m.nodeId)
    if (m.status === 'alive') alive.push(m.nodeId)
  }
  return hasQuorumOf(alive, voting)
}
