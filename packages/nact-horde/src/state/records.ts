/**
 * The replicated map's key schema and the records stored under each key, with validated
 * reads: a value that came from another node is checked before the supervisor acts on it
 * (a malformed record reads as absent, never as a half-valid one).
 *
 * | key            | record            | written by                                   |
 * | -------------- | ----------------- | -------------------------------------------- |
 * | `c/<id>`       | {@link ChildRecord} | the placing node, the owner, the coordinator |
 * | `m/<nodeId>`   | {@link MemberRecord} | that node (or the coordinator: `left`; deleted by it once collected) |
 * | `s/<nodeId>`   | {@link SuspicionRecord} | that node only (deleted by the coordinator with `m/`) |
 * | `g/<replicaId>` | {@link RetiredRecord} | the coordinator: that replica id is retired (see `membership/collection.ts`) |
 * | `cfg/members`  | string[]          | `setMembers()`                               |
 */
import type { ChildSpec } from '../behaviour.js'
import { rendezvous } from '../distribution/strategy.js'

export const CHILD = 'c/'
export const MEMBER = 'm/'
export const SUSPICION = 's/'
export const RETIRED = 'g/'
export const CONFIG_MEMBERS = 'cfg/members'

/** A child spec as replicated: defaults filled in, `shutdown` -1 for "as long as it takes". */
export type ReplicatedSpec = Required<Pick<ChildSpec, 'id' | 'behaviour' | 'restart' | 'shutdown'>> & {
  args: unknown
}

/**
 * Under `c/<id>`: where a child runs, fenced by an epoch.
 *
 * The epoch orders placements: a start writes 1, every change of owner (failover, planned
 * move) writes the epoch it saw + 1, and a write that keeps the owner keeps it. Concurrent
 * records (siblings) are resolved by {@link resolveChild}, identically on every replica, so a
 * decision taken on a stale view (a late handoff, a former coordinator's reassign) loses to
 * the newer placement. A terminated child keeps a tombstone (`terminated`) for a while, which
 * beats every concurrent placement: terminate wins over a concurrent move.
 */
export interface ChildRecord {
  /** The node that runs it (for a tombstone: the node that terminated it). */
  node: string
  /** Placement epoch (see above). */
  epoch: number
  spec: ReplicatedSpec
  /** Set while a planned move is under way: the node it comes from. */
  from?: string
  /** The state carried by a planned move (when `hasSaved`). */
  saved?: unknown
  hasSaved?: boolean
  /** A tombstone: the child was terminated at `at` (ms since the epoch, the writer's clock). */
  terminated?: boolean
  at?: number
}

/** Under `m/<nodeId>`: what a node says of itself. */
export interface MemberRecord {
  status: 'alive' | 'shutting_down' | 'left'
  addresses: string[]
  /**
   * The replica id this node's process writes under (new for every process start). Absent in
   * records of older versions: while an alive member's record lacks it, no replica id that no
   * record names is collected (it could be that member's).
   */
  replica?: string
  /**
   * Set when the coordinator marked the member `left` because it had been down for
   * `deadMemberTimeout` — it may be alive behind a partition. Such a member is never collected
   * (see membership/collection.ts).
   */
  reaped?: boolean
}

/**
 * Under `g/<replicaId>`: the coordinator decided that this replica id is gone — its process
 * left and was collected, or no member record names it. Every replica rebases its live writes
 * and retires it; `at` (ms since the epoch, the coordinator's clock) is when: the coordinator
 * deletes the key `tombstoneTtl` later, and replicas then forget the retired id.
 */
export interface RetiredRecord {
  at: number
}

/** Under `s/<nodeId>`: the members that node cannot reach now, each with how it lost them. */
export interface SuspicionRecord {
  /** Suspected node id → `closed` (its connections were reset or closed) or `silent`. */
  suspects: Record<string, 'closed' | 'silent'>
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array)

const RESTARTS = new Set(['permanent', 'transient', 'temporary'])

/** A child record read from the map, or undefined if the value is not one. */
export function readChild(v: unknown): ChildRecord | undefined {
  if (!isObject(v) || typeof v.node !== 'string' || !isObject(v.spec)) return undefined
  const epoch = v.epoch
  if (typeof epoch !== 'number' || !Number.isSafeInteger(epoch) || epoch < 0) return undefined
  const s = v.spec
  if (
    typeof s.id !== 'string' ||
    typeof s.behaviour !== 'string' ||
    typeof s.restart !== 'string' ||
    !RESTARTS.has(s.restart) ||
    typeof s.shutdown !== 'number'
  )
    return undefined
  if (v.from !== undefined && typeof v.from !== 'string') return undefined
  return v as unknown as ChildRecord
}

/** A member record read from the map, or undefined. */
export function readMember(v: unknown): MemberRecord | undefined {
  if (!isObject(v) || !Array.isArray(v.addresses)) return undefined
  if (v.status !== 'alive' && v.status !== 'shutting_down' && v.status !== 'left') return undefined
  if (v.replica !== undefined && (typeof v.replica !== 'string' || v.replica.length === 0)) return undefined
  if (v.reaped !== undefined && typeof v.reaped !== 'boolean') return undefined
  return v as unknown as MemberRecord
}

/** A retirement decision read from the map, or undefined. */
export function readRetired(v: unknown): RetiredRecord | undefined {
  if (!isObject(v) || typeof v.at !== 'number' || !Number.isFinite(v.at)) return undefined
  return v as unknown as RetiredRecord
}

/** A suspicion record read from the map, or undefined. */
export function readSuspicion(v: unknown): SuspicionRecord | undefined {
  if (!isObject(v) || !isObject(v.suspects)) return undefined
  for (const kind of Object.values(v.suspects)) if (kind !== 'closed' && kind !== 'silent') return undefined
  return v as unknown as SuspicionRecord
}

/** The configured member list (`setMembers`) read from the map, or undefined. */
export function readMemberList(v: unknown): string[] | undefined {
  return Array.isArray(v) && v.every((x) => typeof x === 'string') ? (v as string[]) : undefined
}

/**
 * The one record of a child that every replica acts on, chosen among concurrent ones (the
 * replica's siblings, in any order) by rules that read only the records themselves — never a
 * node's view of the cluster — so every replica chooses the same:
 * 1. a tombstone beats every placement (terminate wins over a concurrent move);
 * 2. the highest epoch wins (a newer placement beats a stale one);
 * 3. among equal epochs (two sides of a split both failed a node over), the node ranked first
 *    by rendezvous hashing of the id over the candidates' nodes; then the record carrying state.
 */
export function resolveChild(siblings: readonly ChildRecord[]): ChildRecord | undefined {
  if (siblings.length <= 1) return siblings[0]
  const tomb = siblings.find((r) => r.terminated === true)
  if (tomb !== undefined) return tomb
  let epoch = -1
  for (const r of siblings) if (r.epoch > epoch) epoch = r.epoch
  const top = siblings.filter((r) => r.epoch === epoch)
  if (top.length === 1) return top[0]
  const id = top[0]!.spec.id
  const node = rendezvous(
    id,
    top.map((r) => ({ nodeId: r.node, status: 'alive' as const })),
  )
  const onNode = top.filter((r) => r.node === node)
  return onNode.find((r) => r.hasSaved === true) ?? onNode[0]
}

/** The live placement of a child: its resolved record unless that is a tombstone. */
export function livePlacement(siblings: readonly ChildRecord[]): ChildRecord | undefined {
  const r = resolveChild(siblings)
  return r === undefined || r.terminated === true ? undefined : r
}
