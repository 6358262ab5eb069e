import type { Transport, TransportInit } from '@nact-horde/transport'
import { type Behaviour, validateBehaviours } from './behaviour.js'
import { type DistributionStrategy, uniformDistribution } from './distribution/strategy.js'
import { InvalidOptionsError } from './errors.js'

/** Options of {@link startHorde}. Durations are in milliseconds. */
export interface HordeOptions {
  /** Cluster-wide name: nodes with the same name form one supervisor. */
  name: string
  /** How to run each kind of child, by name; must be identical on every node. */
  behaviours: Record<string, Behaviour>
  /** An existing transport, or options for a libp2p one. @default TCP on 127.0.0.1, random port */
  transport?: Transport | TransportInit
  /** 'auto': every discovered node running a horde of this name; or an explicit list of node ids. @default 'auto' */
  members?: 'auto' | string[]
  /** Where children run. @default uniformDistribution() */
  distributionStrategy?: DistributionStrategy
  /** 'passive' moves children only when their node dies or leaves; 'active' also rebalances when a node joins. @default 'passive' */
  processRedistribution?: 'passive' | 'active'
  /** Restarts of one child allowed within `maxSeconds` before that child is given up. @default 3 */
  maxRestarts?: number
  /** @default 5 */
  maxSeconds?: number
  /** Shutdown time of children whose spec gives none, ms. @default 5000 */
  shutdown?: number
  /**
   * Ms of silence after which this node suspects a member (it is downed only by agreement); also
   * how long a view stays stale after a stall. Passed to the transport this horde creates. @default 3000
   */
  failureTimeout?: number
  /** Shared secret for cluster admission (passed to the transport this horde creates). */
  clusterKey?: string
  /**
   * How often a round of anti-entropy runs, ms: each round syncs with at most `syncFanout`
   * peers whose links need it, in turn, or else audits one link gossip changed (see
   * docs/INTERNALS.md, "How nact-horde runs the links"). @default 1000
   */
  syncInterval?: number
  /**
   * Peers one anti-entropy round syncs with at most (see `syncInterval`): a round costs the
   * same whatever the cluster size. Only links that need an exchange (new, owed a reply, behind
   * the peer, repairing) take part: writes gossip delivered need none, and what gossip lost is
   * found by the audits, one link a round, which this value does not change. @default 3
   */
  syncFanout?: number
  /** Time limit of every call to another node, ms. @default 5000 */
  requestTimeout?: number
  /**
   * Messages held per child while it runs nowhere (moving, failing over, its record not here yet,
   * restarting on its own node); beyond, they go to `message:dead`. @default 1000
   */
  maxBuffer?: number
  /** How long a held message waits for its child to run again before `message:dead`, ms. @default 10000 */
  maxWait?: number
  /** Proxy actors (refs) idle this long are stopped, and re-created on their next message, ms. @default 60000 */
  refIdleTimeout?: number
  /**
   * How long a member this node has never been connected to counts as 'uninitialized' rather
   * than 'dead', from when this node first heard of it (at its own start, or when a new
   * member's record arrives before its connection): so neither a joining node nor the
   * existing ones ever restart children that run on a node not reached yet, ms.
   * @default failureTimeout, or 3000
   */
  joinGrace?: number
  /**
   * Ms a child's `init` (or `handoff.restore`) may take; beyond it the start fails (the first
   * start rejects; a restart counts as a crash). @default 5000
   */
  startTimeout?: number
  /**
   * The largest value a child may put in the replicated map, in bytes (MessagePack-encoded):
   * its `args` (larger ones are refused by `startChild` with MessageTooLargeError) and the state
   * a planned move carries (larger state is not carried: the child restarts from `init`, and
   * `metrics().handoffStatesDropped` counts it). Every replica holds these values, and anti-
   * entropy must be able to carry each one. @default 1048576 (1 MiB)
   */
  maxValueBytes?: number
  /**
   * How long a terminated child's tombstone stays in the map, ms. While it is there it beats
   * every concurrent placement of the child (a late handoff or failover cannot bring it back).
   * Also how long a member that left (and the replica id of a process that is gone) waits
   * before the coordinator collects it, and how long its collection decision stays in the map.
   * @default 2 × (requestTimeout + failureTimeout)
   */
  tombstoneTtl?: number
  /**
   * With `members: 'auto'`, a member dead this long is taken out of the member list (it is
   * marked as left in the replicated map; it rejoins by itself if it comes back), ms.
   * @default 30000
   */
  deadMemberTimeout?: number
}

export const DEFAULT_SYNC_INTERVAL = 1000
export const DEFAULT_REQUEST_TIMEOUT = 5000

export interface ResolvedHordeOptions {
  name: string
  behaviours: Record<string, Behaviour>
  transport: Transport | TransportInit
  members: 'auto' | string[]
  strategy: DistributionStrategy
  redistribution: 'passive' | 'active'
  maxRestarts: number
  maxSeconds: number
  shutdown: number
  syncInterval: number
  syncFanout: number
  requestTimeout: number
  maxBuffer: number
  maxWait: number
  refIdleTimeout: number
  joinGrace: number
  deadMemberTimeout: number
  /** The failure timeout of the transport (given, or the transport's default). */
  failureTimeout: number
  startTimeout: number
  tombstoneTtl: number
  maxValueBytes: number
}

function positive(name: string, v: unknown, fallback: number, min = 1, max = 86_400_000): number {
  if (v === undefined) return fallback
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
    throw new InvalidOptionsError(`'${name}' must be a number from ${min} to ${max}, got ${String(v)}`)
  }
  return v
}

function integer(name: string, v: number): number {
  if (!Number.isInteger(v)) throw new InvalidOptionsError(`'${name}' must be a whole number, got ${v}`)
  return v
}

export function isTransport(t: unknown): t is Transport {
  return (
    typeof t === 'object' &&
    t !== null &&
    typeof (t as Transport).request === 'function' &&
    typeof (t as Transport).publish === 'function' &&
    typeof (t as Transport).nodeId === 'string'
  )
}

/** Applies defaults and validates; throws InvalidOptionsError naming the bad option. */
export function resolveHordeOptions(o: HordeOptions): ResolvedHordeOptions {
  if (typeof o !== 'object' || o === null) throw new InvalidOptionsError('startHorde needs an options object')
  if (typeof o.name !== 'string' || o.name.length === 0 || o.name.length > 100) {
    throw new InvalidOptionsError("'name' must be a non-empty string of at most 100 characters")
  }
  validateBehaviours(o.behaviours)
  const members = o.members ?? 'auto'
  if (
    members !== 'auto' &&
    !(Array.isArray(members) && members.every((m) => typeof m === 'string' && m.length > 0))
  ) {
    throw new InvalidOptionsError("'members' must be 'auto' or an array of node ids")
  }
  const redistribution = o.processRedistribution ?? 'passive'
  if (redistribution !== 'passive' && redistribution !== 'active') {
    throw new InvalidOptionsError("'processRedistribution' must be 'passive' or 'active'")
  }
  const strategy = o.distributionStrategy ?? uniformDistribution()
  if (typeof strategy?.chooseNode !== 'function' || typeof strategy?.hasQuorum !== 'function') {
    throw new InvalidOptionsError(
      "'distributionStrategy' must have chooseNode(spec, members) and hasQuorum(members)",
    )
  }
  let transport: Transport | TransportInit = o.transport ?? {}
  if (!isTransport(transport)) {
    if (typeof transport !== 'object' || transport === null) {
      throw new InvalidOptionsError("'transport' must be a Transport or transport options")
    }
    transport = {
      ...transport,
      ...(o.failureTimeout !== undefined ? { failureTimeout: o.failureTimeout } : {}),
      ...(o.clusterKey !== undefined ? { clusterKey: o.clusterKey } : {}),
    }
  } else if (o.failureTimeout !== undefined || o.clusterKey !== undefined) {
    throw new InvalidOptionsError(
      "'failureTimeout' and 'clusterKey' configure a transport the horde creates; set them on the transport you pass instead",
    )
  }
  const failureTimeout =
    o.failureTimeout ??
    (isTransport(transport) ? (transport.failureTimeout ?? 3000) : (transport.failureTimeout ?? 3000))
  const requestTimeout = positive('requestTimeout', o.requestTimeout, DEFAULT_REQUEST_TIMEOUT, 1, 600_000)
  return {
    name: o.name,
    behaviours: o.behaviours,
    transport,
    members: members === 'auto' ? 'auto' : [...members],
    strategy,
    redistribution,
    maxRestarts: positive('maxRestarts', o.maxRestarts, 3, 0, 1_000_000),
    maxSeconds: positive('maxSeconds', o.maxSeconds, 5, 0.001, 86_400),
    shutdown:
      o.shutdown === Number.POSITIVE_INFINITY ? o.shutdown : positive('shutdown', o.shutdown, 5000, 0),
    syncInterval: positive('syncInterval', o.syncInterval, DEFAULT_SYNC_INTERVAL, 10, 600_000),
    syncFanout: integer('syncFanout', positive('syncFanout', o.syncFanout, 3, 1, 1000)),
    requestTimeout,
    maxBuffer: positive('maxBuffer', o.maxBuffer, 1000, 0, 10_000_000),
    maxWait: positive('maxWait', o.maxWait, 10_000, 1, 86_400_000),
    refIdleTimeout: positive('refIdleTimeout', o.refIdleTimeout, 60_000, 10, 86_400_000),
    joinGrace: positive('joinGrace', o.joinGrace, failureTimeout, 0, 600_000),
    deadMemberTimeout: positive('deadMemberTimeout', o.deadMemberTimeout, 30_000, 0, 86_400_000),
    failureTimeout,
    startTimeout: positive('startTimeout', o.startTimeout, 5000, 1, 3_600_000),
    maxValueBytes: positive('maxValueBytes', o.maxValueBytes, 1_048_576, 1024, 64 * 1_048_576),
    tombstoneTtl: positive(
      'tombstoneTtl',
      o.tombstoneTtl,
      2 * (requestTimeout + failureTimeout),
      0,
      86_400_000,
    ),
  }
}
