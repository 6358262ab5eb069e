import type { ChildSpec } from '../behaviour.js'

/** A member as a distribution strategy sees it. */
export interface MemberInfo {
  /** The member's node id. */
  readonly nodeId: string
  /**
   * As this node sees it: `alive`; `shutting_down` (stopping gracefully); `dead` (left, or not
   * connected); `uninitialized` (not heard from yet, or not reached yet during the join grace).
   */
  readonly status: 'alive' | 'shutting_down' | 'dead' | 'uninitialized'
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
 * Like {@link uniformDistribution}, but a side of the cluster that cannot see a strict majority
 * of the configured members has no quorum: it refuses starts and stops its children, which the
 * majority side restarts. Use it when running a child twice during a partition is worse than
 * not running it for a while.
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
 * A strict majority of the voting members is alive. A member that is shutting down has
 * announced it is leaving: it no longer votes, so a cluster can shrink gracefully one node at a
 * time without losing quorum. Dead members still vote: they may be alive across a partition.
 */
function hasMajority(members: readonly MemberInfo[]): boolean {
  const voting = members.filter((m) => m.status !== 'shutting_down')
  const alive = voting.filter((m) => m.status === 'alive').length
  return voting.length > 0 && alive * 2 > voting.length
}
