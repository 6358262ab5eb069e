/**
 * Who is down: a pure function of the agreed membership and the suspicions every member has
 * replicated. See docs/concepts.md, "Who decides that a node is dead".
 *
 * A member is **down** when the members that suspect it form a *winning coalition* of the
 * members not already down:
 * - a strict majority of them, or
 * - exactly half of them, including the member with the lowest node id (the tie-break for
 *   even splits and two-node clusters: the side holding the lowest id keeps the cluster);
 * - or — the unambiguous case, kept fast — every other member not down saw its connections
 *   to it closed (a crashed process's connections are reset; a paused or cut-off one's are
 *   only silent), which lets the survivor of a two-node cluster take over a crashed peer.
 *
 * Two disjoint winning coalitions cannot exist, so two sides of a split never both down each
 * other by vote. Votes of a member that is itself down do not count. Computed in rounds until
 * nothing changes, each round against the members still standing.
 */

import { hasQuorumOf } from '../distribution/strategy.js'

/** Suspicions of one voter: suspected node id → how it lost it. */
export type Suspects = Readonly<Record<string, 'closed' | 'silent'>>

/** The lowest id of `ids` (string order), or undefined when empty. */
export function lowest(ids: Iterable<string>): string | undefined {
  let min: string | undefined
  for (const id of ids) if (min === undefined || id < min) min = id
  return min
}

/**
 * Whether `coalition` (ids outside `electorate` are ignored) is a winning coalition of
 * `electorate`: a strict majority, or exactly half including the lowest id — the same rule
 * as the quorum strategy's ({@link hasQuorumOf}), so downing and quorum never disagree.
 */
export function isWinningCoalition(coalition: Iterable<string>, electorate: readonly string[]): boolean {
  return hasQuorumOf(coalition, electorate)
}

/**
 * The members that are down, given the agreed `members` and each voter's replicated
 * suspicions (a voter without a record suspects nobody). A downed member's votes still count
 * for the members downed before it: downing is recomputed from the votes every time, and the
 * votes of members that crashed one after another are what keep the earlier ones down.
 *
 * In rounds, against the members still standing: first the unambiguous fast path (every other
 * standing member saw the member's connections close), then the majority rule, where a vote
 * counts only if its voter is not downed in the same round — so a dead member's old vote cannot
 * help down a live one at the moment the dead one goes.
 */
export function computeDown(
  members: readonly string[],
  suspicions: ReadonlyMap<string, Suspects>,
): Set<string> {
  const down = new Set<string>()
  for (;;) {
    const standing = members.filter((m) => !down.has(m))
    const votersOf = new Map<string, string[]>()
    const fast: string[] = []
    for (const x of standing) {
      const voters: string[] = []
      let allClosed = true
      for (const v of standing) {
        if (v === x) continue
        const kind = suspicions.get(v)?.[x]
        if (kind === undefined) allClosed = false
        else {
          voters.push(v)
          if (kind !== 'closed') allClosed = false
        }
      }
      votersOf.set(x, voters)
      if (allClosed && voters.length > 0) fast.push(x)
    }
    // The fast path never takes down every member still standing (two nodes that each saw the
    // other's connections close — one was paused — would otherwise down each other).
    if (fast.length > 0 && fast.length < standing.length) {
      for (const x of fast) down.add(x)
      continue
    }
    const candidates = standing.filter((x) => isWinningCoalition(votersOf.get(x)!, standing))
    const newly = candidates.filter((x) =>
      isWinningCoalition(
        votersOf.get(x)!.filter((v) => !candidates.includes(v)),
        standing,
      ),
    )
    if (newly.length === 0) return down
    for (const x of newly) down.add(x)
  }
}
