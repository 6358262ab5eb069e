import { AWLWWMap, assertValue, type Delta, type Diff, decodeDelta, encodeDelta } from '@nact-horde/crdt'
import { createTransport, type Transport } from '@nact-horde/transport'
import createDebug from 'debug'
import { type ChildSpec, type RestartType, validateChildSpec } from './behaviour.js'
import { type DistributionStrategy, type MemberInfo, rendezvous } from './distribution/strategy.js'
import {
  AlreadyStartedError,
  InvalidChildSpecError,
  InvalidOptionsError,
  NoAliveNodesError,
  NodeShuttingDownError,
  NotFoundError,
  NotMemberError,
  NotSerializableError,
  QuorumNotMetError,
  TimeoutError,
  UnknownBehaviourError,
} from './errors.js'
import { type DrainResult, LocalSupervisor } from './local/local-supervisor.js'
import type { NactRef } from './local/nact.js'
import { type HordeOptions, isTransport, type ResolvedHordeOptions, resolveHordeOptions } from './options.js'
import {
  decodeRequest,
  decodeResponse,
  encodeError,
  encodeOk,
  encodeRequest,
  type RemoteChild,
  type Request,
} from './protocol.js'
import { type DeadReason, type Location, Router } from './routing.js'
import { TypedEventTarget } from './typed-event-target.js'

const log = createDebug('horde:supervisor')

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
  /** Anti-entropy bytes sent. */
  syncBytesSent: number
  /** Anti-entropy bytes received. */
  syncBytesReceived: number
  /** Gossiped delta bytes sent. */
  deltaBytesSent: number
  /** Gossiped delta bytes received. */
  deltaBytesReceived: number
  /** Gossiped deltas refused as malformed. */
  deltasDropped: number
  /** Deltas, sync messages and requests from nodes outside an explicit member list, refused. */
  nonMemberDropped: number
  /** `message:dead` events raised on this node. */
  deadLetters: number
  /** Messages this node sent to children on other nodes. */
  messagesRoutedOut: number
  /** Messages other nodes sent through this node. */
  messagesRoutedIn: number
  /** Ref proxy actors alive on this node. */
  proxies: number
  /** Messages waiting for a child that moves or restarts. */
  heldMessages: number
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

/** What the replicated map holds under `c/<id>`: where a child runs and how to start it. */
interface ChildRecord {
  node: string
  spec: Required<Pick<ChildSpec, 'id' | 'behaviour' | 'restart' | 'shutdown'>> & { args: unknown }
  /** Set while a planned move is under way: the node it comes from, and the state it carries. */
  from?: string
  saved?: unknown
  hasSaved?: boolean
}

/** Under `m/<nodeId>`: what a node says of itself. */
interface MemberRecord {
  status: 'alive' | 'shutting_down' | 'left'
  addresses: string[]
}

const CHILD = 'c/'
const MEMBER = 'm/'
const CONFIG_MEMBERS = 'cfg/members'
/** Ms deltas wait to be gossiped together: the transport signs and sends each publication, so one per write is costly. */
const GOSSIP_DELAY = 10

/**
 * One node's part of a distributed supervisor. Create it with {@link startHorde}.
 *
 * The cluster's knowledge lives in a replicated δ-CRDT map: which nodes are members and what
 * they say of themselves, and, for each child, its spec and the node that runs it. Every node
 * runs exactly the children the map assigns to it, and reacts to every change of the map:
 * starting children assigned to it, stopping children assigned elsewhere, and — on one node,
 * the coordinator — reassigning the children of members that died.
 */
export class Horde extends TypedEventTarget<HordeEventMap> {
  /** This node's id (its transport's). */
  readonly nodeId: string
  /** The horde's name. */
  readonly name: string
  private readonly map: AWLWWMap<unknown>
  private readonly local: LocalSupervisor
  private readonly router: Router
  private readonly strategy: DistributionStrategy
  private readonly up = new Set<string>()
  /** Node ids with an `m/` key in the map, kept by `schedule` so membership reads need not scan every child. */
  private readonly memberIds = new Set<string>()
  private readonly busy = new Map<string, Promise<unknown>>()
  private readonly expectedStops = new Set<string>()
  private readonly dirty = new Set<string>()
  private dirtyAll = false
  private flushScheduled = false
  /** Deltas waiting to be gossiped: sent together they cost one signed gossip message, not one each. */
  private gossipOut: Uint8Array[] = []
  private gossipTimer: NodeJS.Timeout | undefined
  private lastStatuses = new Map<string, MemberStatus>()
  private readonly waiters = new Set<() => void>()
  private readonly unsubscribe: (() => void)[] = []
  private syncTimer: NodeJS.Timeout | undefined
  private readonly syncing = new Set<string>()
  /** When each member was first seen dead (for reaping, see reapDeadMembers). */
  private readonly deadSince = new Map<string, number>()
  /** Peers this node has been connected to at least once. */
  private readonly seenUp = new Set<string>()
  /** When this node first heard of each member it has never been connected to (see statusOf). */
  private readonly knownSince = new Map<string, number>()
  private readonly graceTimers = new Set<NodeJS.Timeout>()
  private readonly counters = {
    restarts: 0,
    failed: 0,
    failovers: 0,
    handoffs: 0,
    conflicts: 0,
    syncRounds: 0,
    syncBytesSent: 0,
    syncBytesReceived: 0,
    deltaBytesSent: 0,
    deltaBytesReceived: 0,
    deltasDropped: 0,
    nonMemberDropped: 0,
    deadLetters: 0,
  }
  private shuttingDown = false
  private stopped = false
  private stopPromise: Promise<void> | undefined
  private readonly topic: string
  private readonly rpcProtocol: string
  private readonly syncProtocol: string

  /** @internal Use {@link startHorde}. */
  constructor(
    /** The transport this node uses (created by the horde, or the one passed in). */
    readonly transport: Transport,
    private readonly ownsTransport: boolean,
    system: unknown,
    private readonly options: ResolvedHordeOptions,
  ) {
    super()
    this.nodeId = transport.nodeId
    this.name = options.name
    this.strategy = options.strategy
    this.map = new AWLWWMap<unknown>()
    const ns = encodeURIComponent(options.name)
    this.topic = `nact-horde/${ns}/delta`
    this.rpcProtocol = `/nact-horde/${ns}/rpc/1`
    this.syncProtocol = `/nact-horde/${ns}/sync/1`
    this.local = new LocalSupervisor({
      system,
      behaviours: options.behaviours,
      node: this.nodeId,
      name: options.name,
      maxRestarts: options.maxRestarts,
      maxSeconds: options.maxSeconds,
      defaultShutdown: options.shutdown,
    })
    this.wireLocalEvents()
    this.router = new Router(
      {
        nodeId: this.nodeId,
        locate: (id) => this.locate(id),
        deliverLocal: (id, message, sender) => this.local.send(id, message, sender),
        sendBatch: async (node, batch) => {
          await this.call(node, { op: 'deliver', batch })
        },
        dead: (id, reason, message, error) => this.emit('message:dead', { id, reason, message, error }),
      },
      system as NactRef,
      `horde-refs-${encodeURIComponent(options.name).replace(/%/g, '_')}-${Math.random().toString(36).slice(2, 10)}`,
      { maxBuffer: options.maxBuffer, maxWait: options.maxWait, idleTimeout: options.refIdleTimeout },
    )
  }

  /** Listens to a horde event ({@link HordeEventMap}); `event.detail` names the node it happened on. */

  /** This node's transport addresses, for others to bootstrap from. */
  get addresses(): string[] {
    return this.transport.addresses
  }

  /** @internal Joins the cluster: announces this node and starts anti-entropy. */
  async start(): Promise<void> {
    const t = this.transport
    this.unsubscribe.push(
      t.subscribe(this.topic, (bytes, from) => this.onGossip(bytes, from)),
      t.handle(this.syncProtocol, (bytes, from) => this.onSync(bytes, from)),
      t.handle(this.rpcProtocol, (bytes, from) => this.onRequest(bytes, from)),
    )
    const onUp = (e: Event) => this.onPeerUp((e as CustomEvent<{ nodeId: string }>).detail.nodeId)
    const onDown = (e: Event) => this.onPeerDown((e as CustomEvent<{ nodeId: string }>).detail.nodeId)
    t.addEventListener('peer:up', onUp)
    t.addEventListener('peer:down', onDown)
    this.unsubscribe.push(
      () => t.removeEventListener('peer:up', onUp),
      () => t.removeEventListener('peer:down', onDown),
    )
    this.write(MEMBER + this.nodeId, { status: 'alive', addresses: t.addresses } satisfies MemberRecord)
    for (const p of t.peers()) this.onPeerUp(p)
    this.syncTimer = setInterval(() => {
      if (this.deadSince.size > 0) this.reapDeadMembers()
      for (const p of this.up) void this.syncWith(p)
    }, this.options.syncInterval)
    this.syncTimer.unref()
    this.scheduleAll()
  }

  // ——— public API ———

  /**
   * Starts a child somewhere in the cluster (the distribution strategy picks the node) and
   * resolves with where it runs. Rejects with AlreadyStartedError (its `node` says where),
   * UnknownBehaviourError, NoAliveNodesError, QuorumNotMetError, NodeShuttingDownError,
   * InvalidChildSpecError, NotSerializableError or TimeoutError.
   */
  async startChild(input: Partial<ChildSpec> & { behaviour: string }): Promise<{
    /** The child's id (generated when the spec gave none). */
    id: string
    /** The node it runs on. */
    node: string
  }> {
    const spec = this.normalizeSpec(input)
    if (this.shuttingDown) throw new NodeShuttingDownError(this.nodeId)
    const members = this.memberInfos()
    if (!this.strategy.hasQuorum(members)) throw new QuorumNotMetError()
    const existing = this.childRecord(spec.id)
    if (existing !== undefined) throw new AlreadyStartedError(spec.id, existing.node)
    const target = this.strategy.chooseNode(spec, members)
    if (target === undefined) throw new NoAliveNodesError()
    if (target === this.nodeId) {
      const { delta } = await this.startHere(spec)
      await this.replicate(delta)
      return { id: spec.id, node: this.nodeId }
    }
    // The owner answers with the record it wrote: joining it here means that, once this call
    // resolves, two nodes hold the record, so a crash of either does not lose the child.
    const reply = (await this.call(target, { op: 'start', spec })) as {
      id: string
      node: string
      delta: Uint8Array
    }
    this.react(this.map.join(decodeDelta(reply.delta)))
    return { id: reply.id, node: reply.node }
  }

  /** Stops a child wherever it runs, for good. Rejects with NotFoundError. */
  async terminateChild(id: string): Promise<void> {
    if (typeof id !== 'string') throw new InvalidChildSpecError('terminateChild needs a child id (a string)')
    const rec = this.childRecord(id)
    if (rec === undefined) throw new NotFoundError(id)
    if (rec.node === this.nodeId || !this.isAlive(rec.node)) {
      await this.terminateHere(id)
      return
    }
    await this.call(rec.node, { op: 'terminate', id })
  }

  /** Every child in the cluster with its node and status. Unreachable members are skipped after the request timeout. */
  async whichChildren(): Promise<ChildInfo[]> {
    const out: ChildInfo[] = []
    await Promise.all(
      this.aliveNodes().map(async (node) => {
        try {
          const list =
            node === this.nodeId
              ? this.localChildInfos()
              : ((await this.call(node, { op: 'children' })) as RemoteChild[])
          for (const c of list) out.push({ ...c, node, restart: c.restart as RestartType })
        } catch (err) {
          log('whichChildren: skipping %s: %s', node, (err as Error).message)
        }
      }),
    )
    return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  }

  /** The children running (or restarting) on this node only; no network. */
  localChildren(): ChildInfo[] {
    return this.localChildInfos().map((c) => ({ ...c, node: this.nodeId, restart: c.restart as RestartType }))
  }

  /** Children counts, cluster-wide. */
  async countChildren(): Promise<ChildCounts> {
    const running = (await this.whichChildren()).filter((c) => c.status === 'running').length
    let specs = 0
    for (const k of this.map.keys()) if (k.startsWith(CHILD)) specs++
    return { specs, active: running, workers: specs, supervisors: 0 }
  }

  /** This node's view of the cluster, as `nact-horde status` prints it. */
  status(): HordeStatus {
    const m = this.metrics()
    return {
      node: this.nodeId,
      name: this.name,
      addresses: this.addresses,
      members: this.members().map((x) => ({ ...x, children: m.children.perNode[x.nodeId] ?? 0 })),
      children: m.children.cluster,
    }
  }

  /** Every member this node knows of, with its status. */
  members(): {
    /** The member's node id. */
    nodeId: string
    /** Its status, as this node sees it. */
    status: MemberStatus
  }[] {
    return this.memberInfos().map((m) => ({ nodeId: m.nodeId, status: m.status }))
  }

  /** Resolves once the distribution strategy has a quorum; rejects with TimeoutError after `timeout` ms. */
  waitForQuorum(timeout = this.options.requestTimeout): Promise<void> {
    return this.waitUntil(() => this.strategy.hasQuorum(this.memberInfos()), timeout, 'quorum')
  }

  /**
   * Sets the cluster's members (Horde.Cluster.set_members). Replicated: every node adopts the
   * latest list. A live node removed from the list hands its children to the remaining members
   * (with their state, where behaviours export it); they are not lost.
   */
  async setMembers(nodeIds: string[]): Promise<void> {
    if (!Array.isArray(nodeIds) || !nodeIds.every((n) => typeof n === 'string' && n.length > 0)) {
      throw new InvalidOptionsError('setMembers needs an array of node ids')
    }
    this.write(CONFIG_MEMBERS, [...new Set(nodeIds)].sort())
    this.scheduleAll()
    await this.pushToPeers()
  }

  /**
   * Leaves the cluster gracefully: refuses new starts, hands every child to the remaining
   * members (stopping each within its shutdown time, carrying its state where the behaviour
   * exports it) and resolves once they run there. Safe to call twice.
   */
  stop(): Promise<void> {
    this.stopPromise ??= this.doStop()
    return this.stopPromise
  }

  /**
   * A plain nact ref on this node's system for child `id`: nact's `dispatch` and `query` reach
   * the child wherever it runs, and refs inside messages are routed back across nodes. Messages
   * sent while the child moves or restarts wait (up to `maxBuffer` per child, `maxWait` ms);
   * what cannot be delivered is reported by a `message:dead` event.
   */
  ref(id: string): NactRef {
    if (typeof id !== 'string' || id.length === 0)
      throw new InvalidChildSpecError('ref needs a child id (a string)')
    return this.router.ref(id)
  }

  /** Routing figures: proxy actors alive, messages held and queued (for memory accounting). */
  routingStats(): {
    /** Ref proxy actors alive on this node. */
    proxies: number
    /** Messages held for children that run nowhere right now. */
    held: number
    /** Messages queued for other nodes. */
    queued: number
    /** Messages sent to other nodes. */
    routedOut: number
    /** Messages received from other nodes. */
    routedIn: number
  } {
    return {
      ...this.router.size(),
      routedOut: this.router.stats.routedOut,
      routedIn: this.router.stats.routedIn,
    }
  }

  /** What this node has done and sees, for dashboards and alerts (see also the Prometheus exporter). */
  metrics(): HordeMetrics {
    const perNode: Record<string, number> = {}
    let cluster = 0
    for (const [key, value] of this.map.entries()) {
      if (!key.startsWith(CHILD)) continue
      cluster++
      const node = (value as ChildRecord).node
      perNode[node] = (perNode[node] ?? 0) + 1
    }
    const members = this.memberInfos()
    const routing = this.router.size()
    return {
      node: this.nodeId,
      name: this.name,
      members: { alive: members.filter((m) => m.status === 'alive').length, total: members.length },
      children: { local: this.local.count(), cluster, perNode },
      ...this.counters,
      messagesRoutedOut: this.router.stats.routedOut,
      messagesRoutedIn: this.router.stats.routedIn,
      proxies: routing.proxies,
      heldMessages: routing.held,
    }
  }

  // ——— membership ———

  private configuredMembers(): string[] | 'auto' {
    const cfg = this.map.get(CONFIG_MEMBERS)
    if (Array.isArray(cfg)) return cfg as string[]
    return this.options.members
  }

  private memberRecord(nodeId: string): MemberRecord | undefined {
    return this.map.get(MEMBER + nodeId) as MemberRecord | undefined
  }

  private statusOf(nodeId: string): MemberStatus {
    const rec = this.memberRecord(nodeId)
    if (nodeId === this.nodeId) return this.shuttingDown ? 'shutting_down' : 'alive'
    if (rec === undefined) return 'uninitialized'
    if (rec.status === 'left') return 'dead'
    if (!this.up.has(nodeId)) {
      // A member known from the map but never connected to — this node just started, or the
      // member just joined and the map told us before its connection did — is not dead, only
      // not reached yet. Declaring it dead would restart its children (a duplicate), so for a
      // join grace after we first heard of it, it is unknown.
      if (this.seenUp.has(nodeId)) return 'dead'
      return this.inJoinGrace(nodeId) ? 'uninitialized' : 'dead'
    }
    return rec.status
  }

  private memberInfos(): MemberInfo[] {
    const configured = this.configuredMembers()
    if (configured !== 'auto') return configured.map((nodeId) => ({ nodeId, status: this.statusOf(nodeId) }))
    const out: MemberInfo[] = []
    for (const nodeId of this.memberIds) {
      if (!this.map.has(MEMBER + nodeId)) continue
      if (this.memberRecord(nodeId)?.status === 'left' && nodeId !== this.nodeId) continue
      out.push({ nodeId, status: this.statusOf(nodeId) })
    }
    return out.sort((a, b) => (a.nodeId < b.nodeId ? -1 : 1))
  }

  private isAlive(nodeId: string): boolean {
    return this.memberInfos().some((m) => m.nodeId === nodeId && m.status === 'alive')
  }

  /** Nodes that can answer for their children: alive or shutting-down members, and this node. */
  private aliveNodes(): string[] {
    const nodes = this.memberInfos()
      .filter((m) => m.nodeId !== this.nodeId && (m.status === 'alive' || m.status === 'shutting_down'))
      .map((m) => m.nodeId)
    if (!this.stopped) nodes.push(this.nodeId)
    return nodes
  }

  /** Emits member:up / member:down for every status change since the last look. */
  private diffMembers(): void {
    const now = new Map(this.memberInfos().map((m) => [m.nodeId, m.status]))
    for (const [nodeId, status] of now) {
      const was = this.lastStatuses.get(nodeId)
      if (status === 'alive' && was !== 'alive') this.emit('member:up', { nodeId })
      if (status !== 'alive' && was === 'alive') this.emit('member:down', { nodeId, status })
    }
    for (const [nodeId, was] of this.lastStatuses) {
      if (!now.has(nodeId) && was === 'alive') this.emit('member:down', { nodeId, status: 'dead' })
    }
    for (const [nodeId, status] of now) {
      if (status === 'dead') {
        if (!this.deadSince.has(nodeId)) this.deadSince.set(nodeId, Date.now())
      } else this.deadSince.delete(nodeId)
    }
    for (const nodeId of this.deadSince.keys()) if (!now.has(nodeId)) this.deadSince.delete(nodeId)
    this.lastStatuses = now
  }

  /**
   * With `members: 'auto'` the members are the nodes that run the horde: one dead for longer
   * than `deadMemberTimeout` has left. The coordinator records that in the map, so every node
   * agrees (and a quorum is not held hostage by nodes that crashed and never came back).
   * A node wrongly marked (it was only cut off) re-announces itself when it is back.
   */
  private reapDeadMembers(): void {
    if (this.configuredMembers() !== 'auto') return
    const members = this.memberInfos()
    // A side without quorum must not shrink the member list to win one.
    if (this.coordinator(members) !== this.nodeId || !this.strategy.hasQuorum(members)) return
    const now = Date.now()
    for (const [nodeId, since] of this.deadSince) {
      if (now - since < this.options.deadMemberTimeout) continue
      const rec = this.memberRecord(nodeId)
      this.deadSince.delete(nodeId)
      if (rec === undefined || rec.status === 'left') continue
      log('member %s dead for %d ms: marking it as left', nodeId, now - since)
      this.write(MEMBER + nodeId, { status: 'left', addresses: rec.addresses } satisfies MemberRecord)
    }
  }

  /** Re-announces this node if the map says otherwise (it was reaped while cut off). */
  private assertSelf(): void {
    if (this.shuttingDown) return
    if (this.memberRecord(this.nodeId)?.status !== 'alive') {
      this.write(MEMBER + this.nodeId, {
        status: 'alive',
        addresses: this.transport.addresses,
      } satisfies MemberRecord)
    }
  }

  private onPeerUp(nodeId: string): void {
    if (this.stopped || this.up.has(nodeId)) return
    this.up.add(nodeId)
    this.seenUp.add(nodeId)
    this.knownSince.delete(nodeId)
    this.scheduleAll()
    void this.syncWith(nodeId)
  }

  private onPeerDown(nodeId: string): void {
    if (!this.up.delete(nodeId)) return
    this.map.unlink(nodeId)
    this.scheduleAll()
  }

  // ——— replication ———

  /** Writes locally, gossips the delta, and reacts as the map changed. */
  /** Returns the encoded delta (what was gossiped), for callers that must also hand it on. */
  private write(key: string, value: unknown): Uint8Array {
    const bytes = this.publish(this.map.set(key, value))
    this.schedule(key)
    return bytes
  }

  private remove(key: string): void {
    if (!this.map.has(key)) return
    this.publish(this.map.delete(key))
    this.schedule(key)
  }

  private publish(delta: Delta<unknown>): Uint8Array {
    const bytes = encodeDelta(delta)
    if (this.stopped) return bytes
    this.counters.deltaBytesSent += bytes.length
    this.gossipOut.push(bytes)
    this.gossipTimer ??= setTimeout(() => this.flushGossip(), GOSSIP_DELAY)
    return bytes
  }

  private flushGossip(): void {
    this.gossipTimer = undefined
    const out = this.gossipOut
    this.gossipOut = []
    if (this.stopped) return
    for (const bytes of out) {
      try {
        this.transport.publish(this.topic, bytes)
      } catch (err) {
        // Gossip is best effort; anti-entropy delivers what it could not.
        log('publish failed: %s', (err as Error).message)
      }
    }
  }

  /**
   * With an explicit member list, only members write to this node's replica or act through
   * it; others are dropped and counted. (With 'auto', admission is the cluster key.)
   */
  private admits(from: string): boolean {
    const configured = this.configuredMembers()
    if (configured === 'auto' || configured.includes(from)) return true
    this.counters.nonMemberDropped++
    return false
  }

  private onGossip(bytes: Uint8Array, from: string): void {
    if (this.stopped || !this.admits(from)) return
    this.counters.deltaBytesReceived += bytes.length
    try {
      this.react(this.map.join(decodeDelta(bytes)))
    } catch (err) {
      this.counters.deltasDropped++
      log('dropped a malformed delta from %s: %s', from, (err as Error).message)
    }
  }

  private onSync(bytes: Uint8Array, from: string): Uint8Array {
    if (this.stopped || !this.admits(from)) return new Uint8Array(0)
    const link = this.map.link(from)
    this.counters.syncRounds++
    this.counters.syncBytesReceived += bytes.length
    if (bytes.length > 0) this.react(link.receive(bytes))
    const reply = link.generate() ?? new Uint8Array(0)
    this.counters.syncBytesSent += reply.length
    return reply
  }

  /** Runs the sync protocol with a peer until both sides have nothing to say (bounded). */
  private async syncWith(peer: string): Promise<void> {
    if (this.syncing.has(peer) || this.stopped) return
    this.syncing.add(peer)
    try {
      for (let round = 0; round < 16 && this.up.has(peer); round++) {
        const link = this.map.link(peer)
        const msg = link.generate()
        if (msg === null) return
        this.counters.syncRounds++
        this.counters.syncBytesSent += msg.length
        const reply = await this.transport.request(peer, this.syncProtocol, msg, {
          timeout: this.options.requestTimeout,
        })
        this.counters.syncBytesReceived += reply.length
        if (reply.length > 0) this.react(link.receive(reply))
        else if (link.idle) return
      }
    } catch (err) {
      log('sync with %s failed: %s', peer, (err as Error).message)
    } finally {
      this.syncing.delete(peer)
    }
  }

  /** One sync round with every peer, awaited: pushes this node's latest writes before it goes on. */
  private async pushToPeers(): Promise<void> {
    await Promise.all([...this.up].map((p) => this.syncWith(p)))
  }

  private react(diffs: Diff<unknown>[]): void {
    for (const d of diffs) this.schedule(d.key)
  }

  /** True while `nodeId`, never connected to, is within the join grace since we first heard of it. */
  private inJoinGrace(nodeId: string): boolean {
    let since = this.knownSince.get(nodeId)
    if (since === undefined) {
      since = Date.now()
      this.knownSince.set(nodeId, since)
      // Re-examine everything when the grace ends: the member may then count as dead.
      const timer = setTimeout(() => {
        this.graceTimers.delete(timer)
        this.scheduleAll()
      }, this.options.joinGrace)
      timer.unref()
      this.graceTimers.add(timer)
    }
    return Date.now() - since < this.options.joinGrace
  }

  private schedule(key: string): void {
    if (key.startsWith(CHILD)) this.dirty.add(key.slice(CHILD.length))
    else {
      if (key.startsWith(MEMBER)) this.memberIds.add(key.slice(MEMBER.length))
      this.dirtyAll = true
    }
    this.scheduleFlush()
  }

  private scheduleAll(): void {
    this.dirtyAll = true
    this.scheduleFlush()
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return
    this.flushScheduled = true
    setImmediate(() => {
      this.flushScheduled = false
      this.flush()
    })
  }

  /** Brings this node's running children in line with the map. */
  private flush(): void {
    if (this.stopped) return
    let ids: Iterable<string>
    if (this.dirtyAll) {
      this.dirtyAll = false
      this.diffMembers()
      const all = new Set<string>()
      for (const k of this.map.keys()) if (k.startsWith(CHILD)) all.add(k.slice(CHILD.length))
      for (const c of this.local.children()) all.add(c.id)
      ids = all
      this.dirty.clear()
    } else {
      ids = [...this.dirty]
      this.dirty.clear()
    }
    this.assertSelf()
    const members = this.memberInfos()
    const ctx: ReconcileContext = {
      members,
      quorum: this.strategy.hasQuorum(members),
      coordinator: this.coordinator(members),
      member: members.some((m) => m.nodeId === this.nodeId),
    }
    for (const id of ids) {
      this.reconcile(id, ctx)
      this.router.ready(id)
    }
    for (const w of [...this.waiters]) w()
  }

  /** The alive member with the lowest id decides where orphaned children go. */
  private coordinator(members: MemberInfo[]): string | undefined {
    let c: string | undefined
    for (const m of members) if (m.status === 'alive' && (c === undefined || m.nodeId < c)) c = m.nodeId
    return c
  }

  private reconcile(id: string, ctx: ReconcileContext): void {
    if (this.busy.has(id)) return // re-examined when the running action ends
    const key = CHILD + id
    const siblings = this.map.siblings(key) as ChildRecord[]
    const running = this.local.has(id)
    if (siblings.length === 0) {
      if (running) this.act(id, () => this.stopHere(id, 'shutdown'))
      return
    }
    let rec = siblings[0]!
    if (siblings.length > 1) {
      // Concurrent assignments (a healed partition): all nodes see the same candidates and
      // pick the same survivor — the strategy's choice if it is a candidate, else the winner.
      const preferred = this.survivor(rec.spec, ctx.members)
      rec = siblings.find((s) => s.node === preferred) ?? rec
      if (rec.node === this.nodeId && running) this.write(key, { node: this.nodeId, spec: rec.spec })
    }
    const ownerStatus = rec.node === this.nodeId ? (ctx.member ? 'alive' : 'dead') : this.statusOf(rec.node)

    if (rec.node === this.nodeId) {
      if (!ctx.member || this.shuttingDown) {
        // Leaving: the child goes to the node the strategy picks among the others.
        const others = ctx.members.filter((m) => m.nodeId !== this.nodeId)
        const target = this.strategy.chooseNode(rec.spec, others)
        if (running) this.act(id, () => this.handOff(id, rec, target))
        else if (target !== undefined) this.reassign(rec, target)
        return
      }
      if (!ctx.quorum) {
        if (running) this.act(id, () => this.stopHere(id, 'shutdown', false))
        return
      }
      if (!running) this.act(id, () => this.runHere(rec))
      else if (
        this.options.redistribution === 'active' &&
        rec.from === undefined &&
        this.strategy.deterministic !== false
      ) {
        const desired = this.strategy.chooseNode(rec.spec, ctx.members)
        if (desired !== undefined && desired !== this.nodeId)
          this.act(id, () => this.handOff(id, rec, desired))
      }
      return
    }

    if (running) {
      // Assigned elsewhere while it runs here: a planned move we made is finishing, or we ran
      // a duplicate during a partition. The survivor is the strategy's choice among the two.
      const preferred = this.survivor(rec.spec, ctx.members)
      if (rec.from === undefined && preferred === this.nodeId && ctx.member && ctx.quorum) {
        this.write(key, { node: this.nodeId, spec: rec.spec })
        this.emit('child:conflict', { id, node: this.nodeId, survivor: this.nodeId })
      } else {
        if (rec.from !== this.nodeId)
          this.emit('child:conflict', { id, node: this.nodeId, survivor: rec.node })
        this.act(id, () => this.stopHere(id, 'shutdown', false))
      }
      return
    }

    if (ownerStatus === 'alive' || ownerStatus === 'shutting_down' || ownerStatus === 'uninitialized') return
    // The owner is dead, left, or no longer a member: the coordinator reassigns the child.
    if (ctx.coordinator !== this.nodeId || !ctx.quorum) return
    const target = this.strategy.chooseNode(rec.spec, ctx.members)
    if (target === undefined || target === rec.node) return
    log('%s: owner %s is %s; reassigning to %s', id, rec.node, ownerStatus, target)
    this.counters.failovers++
    this.reassign(rec, target)
  }

  /** Where a duplicated child should survive: the strategy's choice, the same on every node. */
  private survivor(spec: ChildRecord['spec'], members: MemberInfo[]): string | undefined {
    return this.strategy.deterministic === false
      ? rendezvous(spec.id, members)
      : this.strategy.chooseNode(spec, members)
  }

  /** Assigns a child that is not running anywhere to `target` (temporary children are not restarted: forgotten). */
  private reassign(rec: ChildRecord, target: string): void {
    if (rec.spec.restart === 'temporary') this.remove(CHILD + rec.spec.id)
    else this.write(CHILD + rec.spec.id, { node: target, spec: rec.spec })
  }

  /** Runs one local action per child at a time; re-examines the child when it ends. */
  private act(id: string, action: () => Promise<unknown>): void {
    const p = action()
      .catch((err) => log('%s: %s', id, (err as Error).message))
      .finally(() => {
        this.busy.delete(id)
        this.schedule(CHILD + id)
      })
    this.busy.set(id, p)
  }

  // ——— local actions ———

  /**
   * Makes a local write durable: hands its delta to one other alive member and waits for the
   * acknowledgement (any one; unreachable ones are skipped). With no other member there is
   * nobody to hand it to.
   */
  private async replicate(delta: Uint8Array): Promise<void> {
    // Only peers that are up qualify: with none, skip building the member list on every start.
    if (this.up.size === 0) return
    for (const peer of this.aliveNodes()) {
      if (peer === this.nodeId || !this.up.has(peer)) continue
      try {
        await this.call(peer, { op: 'replicate', delta })
        return
      } catch (err) {
        log('replicate to %s failed: %s', peer, (err as Error).message)
      }
    }
  }

  private async startHere(
    spec: ChildRecord['spec'],
  ): Promise<{ id: string; node: string; delta: Uint8Array }> {
    const prior = this.busy.get(spec.id)
    if (prior !== undefined) await prior.catch(() => undefined)
    const existing = this.childRecord(spec.id)
    if (existing !== undefined || this.local.has(spec.id)) {
      throw new AlreadyStartedError(spec.id, existing?.node ?? this.nodeId)
    }
    if (this.shuttingDown) throw new NodeShuttingDownError(this.nodeId)
    const p = this.local.start(this.localSpec(spec))
    this.busy.set(
      spec.id,
      p.catch(() => undefined),
    )
    try {
      await p
      const delta = this.write(CHILD + spec.id, { node: this.nodeId, spec } satisfies ChildRecord)
      return { id: spec.id, node: this.nodeId, delta }
    } finally {
      this.busy.delete(spec.id)
    }
  }

  /** Starts a child the map assigns to this node (after a failover or a planned move). */
  private async runHere(rec: ChildRecord): Promise<void> {
    const opts = rec.hasSaved ? { restoreState: rec.saved } : {}
    try {
      await this.local.start(this.localSpec(rec.spec), opts)
      this.router.ready(rec.spec.id)
    } catch (err) {
      log('%s: could not start here: %s', rec.spec.id, (err as Error).message)
      this.emit('child:failed', { id: rec.spec.id, node: this.nodeId, reason: 'start_failed', error: err })
      if (this.childRecord(rec.spec.id)?.node === this.nodeId) this.remove(CHILD + rec.spec.id)
      return
    }
    const now = this.childRecord(rec.spec.id)
    if (now?.node === this.nodeId && now.from !== undefined) {
      // The move is complete: drop the carried state from the map.
      this.write(CHILD + rec.spec.id, { node: this.nodeId, spec: rec.spec })
    }
  }

  private async stopHere(id: string, reason: 'shutdown' | 'handoff', forget = true): Promise<void> {
    if (!this.local.has(id)) return
    this.expectedStops.add(id)
    try {
      await this.local.terminate(id, reason)
    } finally {
      this.expectedStops.delete(id)
    }
    if (forget && this.childRecord(id)?.node === this.nodeId) this.remove(CHILD + id)
  }

  private async terminateHere(id: string): Promise<void> {
    if (this.childRecord(id) === undefined && !this.local.has(id)) throw new NotFoundError(id)
    const prior = this.busy.get(id)
    if (prior !== undefined) await prior.catch(() => undefined)
    this.remove(CHILD + id)
    await this.stopHere(id, 'shutdown', false)
  }

  /**
   * A planned move: stop the child here (draining it, so its state can travel) and assign it,
   * with that state, to the node the strategy picks among the others.
   */
  private async handOff(id: string, rec: ChildRecord, target: string | undefined): Promise<void> {
    if (target === undefined) {
      // Nowhere to go: stop it but keep its record, so a node that joins later runs it.
      await this.stopHere(id, 'shutdown', false)
      return
    }
    let saved: unknown
    let hasSaved = false
    let pending: DrainResult['pending'] = []
    if (this.local.has(id)) {
      this.expectedStops.add(id)
      try {
        const result = await this.local.drain(id)
        pending = result.pending
        if ('saved' in result) {
          saved = result.saved
          hasSaved = true
        }
      } finally {
        this.expectedStops.delete(id)
      }
    }
    if (rec.spec.restart === 'temporary') {
      this.remove(CHILD + id)
      return
    }
    this.counters.handoffs++
    const moved: ChildRecord = { node: target, spec: rec.spec, from: this.nodeId }
    if (hasSaved) {
      moved.saved = saved
      moved.hasSaved = true
    }
    try {
      this.write(CHILD + id, moved)
    } catch (err) {
      // The saved state is not storable: move the child without it.
      log('%s: handoff state dropped: %s', id, (err as Error).message)
      this.write(CHILD + id, { node: target, spec: rec.spec, from: this.nodeId })
    }
    // Messages the child had accepted but not handled follow it, ahead of newer ones, each
    // with its nact sender (a ref that routes back here).
    for (const { message, sender } of pending) this.router.route(id, message, sender)
  }

  private async doStop(): Promise<void> {
    if (this.stopped) return
    this.shuttingDown = true
    log('stopping: handing off %d children', this.local.count())
    this.write(MEMBER + this.nodeId, { status: 'shutting_down', addresses: this.transport.addresses })
    await this.pushToPeers()
    this.scheduleAll()
    const deadline = this.options.requestTimeout + this.maxShutdown()
    try {
      await this.waitUntil(() => this.handedOff(), deadline, 'handoff')
    } catch (err) {
      log('stop: %s', (err as Error).message)
    }
    await Promise.all([...this.busy.values()].map((p) => p.catch(() => undefined)))
    this.write(MEMBER + this.nodeId, { status: 'left', addresses: this.transport.addresses })
    await this.pushToPeers()
    // Messages that reached this node during the move are on their way to the new owners.
    await this.router.drain(this.options.requestTimeout)
    this.stopped = true
    this.router.stop()
    clearInterval(this.syncTimer)
    for (const t of this.graceTimers) clearTimeout(t)
    for (const u of this.unsubscribe) u()
    await this.local.stopAll('shutdown')
    if (this.ownsTransport) await this.transport.stop()
  }

  /** No child runs here and every child we moved is running on its new node. */
  private handedOff(): boolean {
    if (this.local.count() > 0 || this.busy.size > 0) return false
    // Nobody to hand to: the records stay, for a node that joins later to run.
    if (!this.aliveNodes().some((n) => n !== this.nodeId)) return true
    for (const [key, value] of this.map.entries()) {
      if (!key.startsWith(CHILD)) continue
      const rec = value as ChildRecord
      if (rec.from === this.nodeId || rec.node === this.nodeId) return false
    }
    return true
  }

  private maxShutdown(): number {
    let max = 0
    for (const c of this.local.children()) {
      const s = this.childRecord(c.id)?.spec.shutdown ?? this.options.shutdown
      if (Number.isFinite(s) && s >= 0) max = Math.max(max, s)
    }
    return max
  }

  // ——— requests from other nodes ———

  private async onRequest(bytes: Uint8Array, from: string): Promise<Uint8Array> {
    let req: Request
    try {
      req = decodeRequest(bytes)
    } catch (err) {
      return encodeError(err)
    }
    // Anyone admitted by the cluster key may read a node's status; the rest is for members.
    if (req.op !== 'status' && !this.admits(from)) return encodeError(new NotMemberError(from))
    try {
      switch (req.op) {
        case 'start':
          log('start of %s proxied from %s', (req.spec as ChildSpec).id, from)
          return encodeOk(await this.startHere(this.normalizeSpec(req.spec)))
        case 'deliver':
          this.router.receiveBatch(req.batch, from)
          return encodeOk(null)
        case 'replicate':
          this.react(this.map.join(decodeDelta(req.delta)))
          return encodeOk(null)
        case 'terminate':
          await this.terminateHere(req.id)
          return encodeOk(null)
        case 'children':
          return encodeOk(this.localChildInfos())
        case 'status':
          return encodeOk(this.status())
      }
    } catch (err) {
      return encodeError(err)
    }
  }

  private async call(node: string, req: Request): Promise<unknown> {
    let reply: Uint8Array
    try {
      reply = await this.transport.request(node, this.rpcProtocol, encodeRequest(req), {
        timeout: this.options.requestTimeout,
      })
    } catch (err) {
      const e = err as Error
      if (e.name === 'RemoteError' || e.name === 'NoHandlerError') throw err
      throw new TimeoutError(
        `node ${node} did not answer '${req.op}' within ${this.options.requestTimeout} ms (${e.message}); retry`,
        this.options.requestTimeout,
      )
    }
    return decodeResponse(reply)
  }

  // ——— helpers ———

  private localChildInfos(): RemoteChild[] {
    return this.local
      .children()
      .map((c) => ({ id: c.id, behaviour: c.behaviour, restart: c.restart, status: c.status }))
  }

  /** Where a message for `id` goes now (see Router). */
  private locate(id: string): Location {
    const rec = this.childRecord(id)
    if (rec === undefined) return this.local.has(id) ? { kind: 'local' } : { kind: 'none' }
    if (rec.node === this.nodeId) return this.local.has(id) ? { kind: 'local' } : { kind: 'wait' }
    const status = this.statusOf(rec.node)
    return status === 'alive' || status === 'shutting_down'
      ? { kind: 'remote', node: rec.node }
      : { kind: 'wait' }
  }

  private childRecord(id: string): ChildRecord | undefined {
    return this.map.get(CHILD + id) as ChildRecord | undefined
  }

  /** Validates a spec from a caller or a peer and fills in its defaults. */
  private normalizeSpec(input: Partial<ChildSpec>): ChildRecord['spec'] {
    if (typeof input !== 'object' || input === null)
      throw new InvalidChildSpecError('a child spec must be an object')
    const spec: ChildSpec = { ...input, id: input.id ?? crypto.randomUUID() } as ChildSpec
    validateChildSpec(spec)
    if (!Object.hasOwn(this.options.behaviours, spec.behaviour))
      throw new UnknownBehaviourError(spec.behaviour)
    const shutdown = spec.shutdown ?? this.options.shutdown
    const out = {
      id: spec.id,
      behaviour: spec.behaviour,
      args: spec.args ?? null,
      restart: spec.restart ?? 'permanent',
      // Infinity is not JSON: the replicated spec says -1 for "wait as long as it takes".
      shutdown: Number.isFinite(shutdown) ? shutdown : -1,
    }
    try {
      assertValue(out.args)
    } catch (err) {
      throw new NotSerializableError(
        `child '${spec.id}': args must be JSON-like data: ${(err as Error).message}`,
      )
    }
    return out
  }

  /** The spec the local supervisor runs: the replicated one with -1 turned back into Infinity. */
  private localSpec(spec: ChildRecord['spec']): ChildSpec {
    return { ...spec, shutdown: spec.shutdown < 0 ? Number.POSITIVE_INFINITY : spec.shutdown }
  }

  private wireLocalEvents(): void {
    const l = this.local
    l.addEventListener('child:started', (e) =>
      this.emit('child:started', { id: e.detail.id, node: this.nodeId }),
    )
    l.addEventListener('child:restarted', (e) =>
      this.emit('child:restarted', { id: e.detail.id, node: this.nodeId, reason: e.detail.reason }),
    )
    l.addEventListener('child:stopped', (e) => {
      const { id, reason } = e.detail
      this.emit('child:stopped', { id, node: this.nodeId, reason })
      // A child that ended by itself (a transient or temporary child exiting) is done for good.
      if (!this.expectedStops.has(id) && this.childRecord(id)?.node === this.nodeId) this.remove(CHILD + id)
    })
    l.addEventListener('child:failed', (e) => {
      const { id, reason, error } = e.detail
      this.emit('child:failed', { id, node: this.nodeId, reason, error })
      if (this.childRecord(id)?.node === this.nodeId) this.remove(CHILD + id)
    })
    l.addEventListener('message:dead', (e) => this.emit('message:dead', e.detail))
  }

  private waitUntil(pred: () => boolean, timeout: number, what: string): Promise<void> {
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
        reject(new TimeoutError(`${what} not reached within ${timeout} ms`, timeout))
      }, timeout)
      this.waiters.add(check)
    })
  }

  private emit<K extends keyof HordeEventMap>(type: K, detail: HordeEventMap[K]['detail']): void {
    if (type === 'child:restarted') this.counters.restarts++
    else if (type === 'child:failed') this.counters.failed++
    else if (type === 'child:conflict') this.counters.conflicts++
    else if (type === 'message:dead') this.counters.deadLetters++
    this.dispatchEvent(new CustomEvent(type, { detail }))
  }
}

interface ReconcileContext {
  members: MemberInfo[]
  quorum: boolean
  coordinator: string | undefined
  member: boolean
}

/**
 * Starts this node's part of the horde `options.name` on a nact system and joins the cluster.
 *
 * @example
 * ```ts
 * import nact from 'nact'
 * import { startHorde } from 'nact-horde'
 *
 * const counter = { init: (args) => args.start ?? 0, handle: (n, msg) => n + (msg.add ?? 0) }
 * const horde = await startHorde(nact.start(), { name: 'workers', behaviours: { counter } })
 * await horde.startChild({ id: 'user-42', behaviour: 'counter', args: { start: 1 } })
 * ```
 */
export async function startHorde(system: unknown, options: HordeOptions): Promise<Horde> {
  const resolved = resolveHordeOptions(options)
  if (typeof system !== 'object' || system === null) {
    throw new InvalidOptionsError('startHorde needs a nact system (the value nact.start() returns)')
  }
  const owns = !isTransport(resolved.transport)
  const transport = isTransport(resolved.transport)
    ? resolved.transport
    : await createTransport(resolved.transport)
  const horde = new Horde(transport, owns, system, resolved)
  try {
    await horde.start()
  } catch (err) {
    if (owns) await transport.stop()
    throw err
  }
  return horde
}
