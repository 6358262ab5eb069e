/** The types of the public API of a horde: what its reads return and the events it raises. */
import type { RestartType } from './behaviour.js'
import type { MemberInfo } from './distribution/strategy.js'
import type { DeadReason } from './routing.js'

/** A child as `whichChildren()` reports it. */
export interface ChildInfo {
  /** The child's id, unique cluster-wide. */
  id: string
  /** The node it runs on. */
  node: string
  /** The name of its behaviour. */
  behaviour: string
  /** Its restart type. */
  restart: RestartType
  /** `restarting`: between a crash and its next incarnation. */
  status: 'running' | 'restarting'
}

/** What `countChildren()` reports, cluster-wide. */
export interface ChildCounts {
  /** Children the cluster knows of (running, restarting or being moved). */
  specs: number
  /** Children running right now on a reachable node. */
  active: number
  /** Every child is a worker: equal to `specs`. */
  workers: number
  /** Children that are supervisors themselves: always 0. */
  supervisors: number
}

/** A member's status as one node sees it: `alive`, `shutting_down`, `dead` or `uninitialized`. */
export type MemberStatus = MemberInfo['status']

/** Events of a horde; every detail carries the node it happened on. */
export interface HordeEventMap {
  /** A child's first incarnation on this node ran `init` (or `handoff.restore`). */
  'child:started': CustomEvent<{
    /** The child's id. */
    id: string
    /** This node. */
    node: string
  }>
  /** The local supervisor restarted a child. */
  'child:restarted': CustomEvent<{
    /** The child's id. */
    id: string
    /** This node. */
    node: string
    /** Why the previous incarnation stopped: `crash`, `killed`, or `normal` (a permanent child). */
    reason: string
  }>
  /** A child stopped here for good: terminated, moved away, stopped itself, or not to be restarted. */
  'child:stopped': CustomEvent<{
    /** The child's id. */
    id: string
    /** This node. */
    node: string
    /** `normal`, `shutdown`, `handoff`, `crash` or `killed`. */
    reason: string
  }>
  /** A child was given up (restart intensity exceeded), or failed to start here. */
  'child:failed': CustomEvent<{
    /** The child's id. */
    id: string
    /** This node. */
    node: string
    /** Why its last incarnation stopped, or `start_failed`. */
    reason: string
    /** A `RestartIntensityError`, or what the start threw. */
    error: unknown
  }>
  /** This node ran a duplicate of `id` (after a partition healed) and stopped it, or kept it as the survivor. */
  'child:conflict': CustomEvent<{
    /** The child's id. */
    id: string
    /** This node. */
    node: string
    /** The node that keeps running it. */
    survivor: string
  }>
  /** A member became alive in this node's view (also this node itself, at start). */
  'member:up': CustomEvent<{
    /** The member. */
    nodeId: string
  }>
  /** A member stopped being alive in this node's view. */
  'member:down': CustomEvent<{
    /** The member. */
    nodeId: string
    /** Its status now. */
    status: MemberStatus
  }>
  /** A message that could not be delivered (unknown id, buffer full, not serialisable, …). */
  'message:dead': CustomEvent<{
    /** The child it was for (`ref:<node>` for a ref to another node's actor). */
    id: string
    /** Why (see {@link DeadReason}). */
    reason: DeadReason
    /** The message. */
    message: unknown
    /** Why it could not be sent, for `not_serializable`. */
    error?: unknown
  }>
}

/** See {@link Horde.metrics}. Counters count since this node started. */
export interface HordeMetrics {
  /** This node's id. */
  node: string
  /** The horde's name. */
  name: string
  /** Members as this node sees them. */
  members: {
    /** Members alive. */
    alive: number
    /** Members this node cannot reach but the cluster has not agreed are down. */
    suspected: number
    /** Members downed by agreement (or left). */
    dead: number
    /** Every member, whatever its status. */
    total: number
  }
  /** Children. */
  children: {
    /** Running on this node. */
    local: number
    /** Known to the cluster (in this node's replica). */
    cluster: number
    /** Assigned per node id. */
    perNode: Record<string, number>
  }
  /** Local restarts after a crash (or a permanent child's exit). */
  restarts: number
  /** Children given up after exceeding the restart intensity, or whose start failed. */
  failed: number
  /** Children of a dead node this node (as coordinator) reassigned. */
  failovers: number
  /** Planned moves out of this node (graceful stop, member removal, rebalancing). */
  handoffs: number
  /** Duplicates after a partition this node resolved. */
  conflicts: number
  /** Anti-entropy exchanges (sent and answered). */
  syncRounds: number
  /**
   * Audits this node started: exchanges on links gossip keeps settled, at most one per `syncInterval`,
   * to find what gossip lost (see docs/INTERNALS.md).
   */
  syncAudits: number
  /** Anti-entropy bytes sent. */
  syncBytesSent: number
  /** Anti-entropy bytes received. */
  syncBytesReceived: number
  /** Gossiped delta bytes sent. */
  deltaBytesSent: number
  /** Gossiped delta bytes received. */
  deltaBytesReceived: number
  /**
   * Writes of other members this node relayed (keys: a key written twice in one window counts
   * once): gossip goes through one relay (the coordinator), which sends every member its
   * window's writes of all writers, merged.
   */
  deltasRelayed: number
  /** Gossiped deltas refused as malformed. */
  deltasDropped: number
  /** Deltas, sync messages and requests from nodes outside an explicit member list, refused. */
  nonMemberDropped: number
  /** `message:dead` events raised on this node. */
  deadLetters: number
  /** Writes of child records not made because the record changed while the action ran (fencing at work). */
  fencedWrites: number
  /**
   * Children this node's reconciler examined (one placement decision each): one per written
   * record, and one per child the change of the membership view concerns (every child when
   * what every decision reads changed; a gone node's children when only that changed) — none
   * when a membership key changed without changing the view.
   */
  childrenExamined: number
  /** Times this node found its event loop blocked and re-validated its view before acting. */
  stalls: number
  /** Planned moves whose state exceeded `maxValueBytes` and was not carried (the child restarted from `init`). */
  handoffStatesDropped: number
  /** Messages this node sent to children on other nodes. */
  messagesRoutedOut: number
  /** Messages other nodes sent through this node. */
  messagesRoutedIn: number
  /** Ref proxy actors alive on this node. */
  proxies: number
  /** Messages waiting for a child that moves or restarts. */
  heldMessages: number
  /**
   * Replica ids in this node's causal context: about one per member process that is running,
   * plus recent ones not yet collected. Every sync message carries one context entry per id, so
   * this stays flat however often nodes restart (members that left, and the replica ids of
   * processes that are gone, are collected after `tombstoneTtl`).
   */
  replicaIds: number
  /** Replica ids retired here whose decision the coordinator has not yet deleted. */
  retiredReplicaIds: number
  /** Size of the first message a new anti-entropy link sends (this node's context and digest root), bytes. */
  firstSyncBytes: number
  /** Members that left that this node, as coordinator, collected (their `m/` and `s/` keys deleted). */
  membersCollected: number
  /** Replica ids this node retired (their writes rebased, their dots ignored from then on). */
  replicasRetired: number
}

/** See {@link Horde.status}. */
export interface HordeStatus {
  /** The node that answered. */
  node: string
  /** The horde's name. */
  name: string
  /** That node's transport addresses. */
  addresses: string[]
  /** Every member it knows of. */
  members: {
    /** The member's node id. */
    nodeId: string
    /** Its status, as the answering node sees it. */
    status: MemberStatus
    /** Children the map assigns to it. */
    children: number
  }[]
  /** Children known to the cluster. */
  children: number
}
