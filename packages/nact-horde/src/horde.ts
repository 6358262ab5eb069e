import { assertValue } from '@nact-horde/crdt'
import { createTransport, type Transport } from '@nact-horde/transport'
import createDebug from 'debug'
import { type ChildSpec, type RestartType, validateChildSpec } from './behaviour.js'
import type { DistributionStrategy } from './distribution/strategy.js'
import {
  AlreadyStartedError,
  InvalidChildSpecError,
  InvalidOptionsError,
  MessageTooLargeError,
  NoAliveNodesError,
  NodeShuttingDownError,
  NodeUnreachableError,
  NotFoundError,
  NotMemberError,
  NotSerializableError,
  QuorumNotMetError,
  TimeoutError,
  UnknownBehaviourError,
} from './errors.js'
import { LocalSupervisor } from './local/local-supervisor.js'
import type { NactRef } from './local/nact.js'
import { Collector } from './membership/collection.js'
import { Membership } from './membership/membership.js'
import type { MembershipView } from './membership/view.js'
import { type Counters, newCounters } from './observability/counters.js'
import { type HordeOptions, isTransport, type ResolvedHordeOptions, resolveHordeOptions } from './options.js'
import { encodedSize, Reconciler } from './placement/reconciler.js'
import type { RemoteChild } from './protocol.js'
import type {
  ChildCounts,
  ChildInfo,
  HordeEventMap,
  HordeMetrics,
  HordeStatus,
  MemberStatus,
} from './public-types.js'
import { type Location, Router } from './routing.js'
import { RpcClient } from './rpc/client.js'
import { requestHandler } from './rpc/server.js'
import { CONFIG_MEMBERS, type ReplicatedSpec } from './state/records.js'
import { Replicator } from './state/replicator.js'
import { TypedEventTarget } from './typed-event-target.js'

export type {
  ChildCounts,
  ChildInfo,
  HordeEventMap,
  HordeMetrics,
  HordeStatus,
  MemberStatus,
} from './public-types.js'

const log = createDebug('horde:supervisor')

/**
 * One node's part of a distributed supervisor. Create it with {@link startHorde}.
 *
 * A façade that wires the parts and forwards to them:
 * - `state/` — the replicated map (the replicator): records, gossip, anti-entropy, admission;
 * - `membership/` — this node's view: peers up, suspicions (replicated votes), downing by
 *   agreement, stale-view detection;
 * - `placement/` — pure decisions ((records, view, strategy) → actions) and the reconciler
 *   that carries them out, one action per child at a time, with fenced writes;
 * - `rpc/` — requests between nodes; `routing.ts` — messages to children anywhere.
 */
export class Horde extends TypedEventTarget<HordeEventMap> {
  /** This node's id (its transport's). */
  readonly nodeId: string
  /** The horde's name. */
  readonly name: string
  private readonly counters: Counters = newCounters()
  private readonly replicator: Replicator
  private readonly membership: Membership
  private readonly collector: Collector
  private readonly reconciler: Reconciler
  private readonly local: LocalSupervisor
  private readonly router: Router
  private readonly rpc: RpcClient
  private readonly strategy: DistributionStrategy
  private readonly unsubscribe: (() => void)[] = []
  private lastStatuses = new Map<string, MemberStatus>()
  private syncTimer: NodeJS.Timeout | undefined
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
    const ns = encodeURIComponent(options.name)
    this.topic = `nact-horde/${ns}/delta`
    this.rpcProtocol = `/nact-horde/${ns}/rpc/1`
    this.syncProtocol = `/nact-horde/${ns}/sync/1`
    this.rpc = new RpcClient(transport, this.rpcProtocol, options.requestTimeout)
    this.replicator = new Replicator({
      transport,
      counters: this.counters,
      topic: this.topic,
      syncProtocol: this.syncProtocol,
      requestTimeout: options.requestTimeout,
      admits: (from) => this.admits(from),
      changed: (key) => {
        this.membership.keyChanged(key)
        this.collector.keyChanged(key)
        this.reconciler.keyChanged(key)
      },
      // The coordinator relays child-record gossip: any member would do, and the one every
      // node picks alike gathers the most writes per frame. Not while this node does not see
      // it alive (suspected, unreachable): writes then go to every member directly.
      relay: () => {
        const view = this.membership.view()
        const c = view.coordinator
        if (c === undefined || c === this.nodeId || !this.membership.isUp(c)) return undefined
        return view.members.some((m) => m.nodeId === c && m.status === 'alive') ? c : undefined
      },
    })
    this.membership = new Membership({
      transport,
      replicator: this.replicator,
      counters: this.counters,
      members: options.members,
      failureTimeout: options.failureTimeout,
      joinGrace: options.joinGrace,
      deadMemberTimeout: options.deadMemberTimeout,
      changed: () => this.reconciler.viewChanged(),
      longStall: () => this.reconciler.afterLongStall(),
    })
    this.collector = new Collector({
      replicator: this.replicator,
      counters: this.counters,
      self: this.nodeId,
      ttl: options.tombstoneTtl,
      memberIds: () => this.membership.memberIds(),
      isUp: (nodeId) => this.membership.isUp(nodeId),
      renewed: () => this.reconciler.scheduleAll(),
    })
    this.local = new LocalSupervisor({
      system,
      behaviours: options.behaviours,
      node: this.nodeId,
      name: options.name,
      maxRestarts: options.maxRestarts,
      maxSeconds: options.maxSeconds,
      defaultShutdown: options.shutdown,
      maxBuffer: options.maxBuffer,
      startTimeout: options.startTimeout,
    })
    this.router = new Router(
      {
        nodeId: this.nodeId,
        locate: (id) => this.locate(id),
        deliverLocal: (id, message, sender) => this.local.send(id, message, sender),
        sendBatch: async (node, batch) => {
          await this.rpc.call(node, { op: 'deliver', batch })
        },
        dead: (id, reason, message, error) => this.emit('message:dead', { id, reason, message, error }),
      },
      system as NactRef,
      `horde-refs-${encodeURIComponent(options.name).replace(/%/g, '_')}-${Math.random().toString(36).slice(2, 10)}`,
      { maxBuffer: options.maxBuffer, maxWait: options.maxWait, idleTimeout: options.refIdleTimeout },
    )
    this.reconciler = new Reconciler({
      self: this.nodeId,
      replicator: this.replicator,
      membership: this.membership,
      local: this.local,
      router: this.router,
      strategy: this.strategy,
      redistribution: options.redistribution,
      counters: this.counters,
      tombstoneTtl: options.tombstoneTtl,
      maxValueBytes: options.maxValueBytes,
      actionBound: options.requestTimeout + options.startTimeout + this.boundedShutdown(),
      events: {
        conflict: (id, survivor) => this.emit('child:conflict', { id, node: this.nodeId, survivor }),
        startFailed: (id, error) =>
          this.emit('child:failed', { id, node: this.nodeId, reason: 'start_failed', error }),
        membersChanged: (view) => this.diffMembers(view),
        flushed: (view) => this.leaveIfRemoved(view),
      },
    })
    this.wireLocalEvents()
  }

  /** This node's transport addresses, for others to bootstrap from. */
  get addresses(): string[] {
    return this.transport.addresses
  }

  /** @internal Joins the cluster: announces this node and starts anti-entropy. */
  async start(): Promise<void> {
    const t = this.transport
    const r = this.replicator
    this.unsubscribe.push(
      t.subscribe(this.topic, (bytes, from) => r.onGossip(bytes, from)),
      t.subscribe(r.relayTopic(this.nodeId), (bytes, from) => r.onRelay(bytes, from)),
      t.handle(this.syncProtocol, (bytes, from) => r.onSync(bytes, from)),
      t.handle(
        this.rpcProtocol,
        requestHandler({
          admits: (from) => this.admits(from),
          start: async (spec) => {
            const s = this.normalizeSpec(spec)
            return {
              id: s.id,
              node: this.nodeId,
              delta: await this.reconciler.startLocal(s, () => this.shuttingDown),
            }
          },
          terminate: (id) => this.reconciler.terminate(id),
          deliver: (batch, from) => this.router.receiveBatch(batch, from),
          replicate: (delta, from) => r.joinFrom(from, delta) !== undefined,
          children: () => this.localChildInfos(),
          status: () => this.status(),
        }),
      ),
    )
    const onUp = (e: Event) => {
      const { nodeId } = (e as CustomEvent<{ nodeId: string }>).detail
      this.membership.peerUp(nodeId)
      void this.replicator.syncWith(nodeId, (p) => this.membership.isUp(p))
    }
    const onDown = (e: Event) => {
      const d = (e as CustomEvent<{ nodeId: string; reason?: string }>).detail
      this.membership.peerDown(d.nodeId, d.reason === 'closed')
    }
    const onStall = (e: Event) =>
      this.membership.stalled((e as CustomEvent<{ ms: number }>).detail?.ms ?? 0, true)
    t.addEventListener('peer:up', onUp)
    t.addEventListener('peer:down', onDown)
    t.addEventListener('stall', onStall)
    this.unsubscribe.push(
      () => t.removeEventListener('peer:up', onUp),
      () => t.removeEventListener('peer:down', onDown),
      () => t.removeEventListener('stall', onStall),
    )
    this.membership.announce('alive')
    this.membership.start()
    for (const p of this.membership.upPeers())
      void this.replicator.syncWith(p, (x) => this.membership.isUp(x))
    this.syncTimer = setInterval(() => this.periodic(), this.options.syncInterval)
    this.syncTimer.unref()
    this.reconciler.scheduleAll()
  }

  private periodic(): void {
    if (this.stopped) return
    const view = this.membership.view()
    this.membership.reap(view)
    this.collector.collect(view)
    this.reconciler.sweep()
    void this.replicator.syncRound(this.membership.upPeers(), this.options.syncFanout, (x) =>
      this.membership.isUp(x),
    )
  }

  private get shuttingDown(): boolean {
    return this.membership.isShuttingDown
  }

  // ——— public API ———

  /**
   * Starts a child somewhere in the cluster (the distribution strategy picks the node) and
   * resolves with where it runs. Rejects with AlreadyStartedError (its `node` says where),
   * UnknownBehaviourError, NoAliveNodesError, QuorumNotMetError, NodeShuttingDownError,
   * InvalidChildSpecError, NotSerializableError, NodeUnreachableError, MessageTooLargeError or
   * TimeoutError.
   */
  async startChild(input: Partial<ChildSpec> & { behaviour: string }): Promise<{
    /** The child's id (generated when the spec gave none). */
    id: string
    /** The node it runs on. */
    node: string
  }> {
    const spec = this.normalizeSpec(input)
    if (this.shuttingDown) throw new NodeShuttingDownError(this.nodeId)
    const view = this.membership.view()
    if (!view.selfMember) throw new NotMemberError(this.nodeId)
    const members = view.members
    if (!this.strategy.hasQuorum(members)) throw new QuorumNotMetError()
    const existing = this.replicator.placement(spec.id)
    if (existing !== undefined) throw new AlreadyStartedError(spec.id, existing.node)
    const target = this.strategy.chooseNode(spec, members)
    if (target === undefined) throw new NoAliveNodesError()
    if (target === this.nodeId) {
      const delta = await this.reconciler.startLocal(spec, () => this.shuttingDown)
      const holder = await this.replicate(delta)
      if (holder === null) {
        // Members are reachable in this node's view, yet none took the record: if this node
        // went away now, the child would be lost. It runs here and its record spreads when the
        // network lets it — but the start is not confirmed durable, so it does not succeed.
        throw new NodeUnreachableError(
          this.nodeId,
          `child '${spec.id}' runs on ${this.nodeId}, but no other member acknowledged its record; check with whichChildren() once the network is whole`,
        )
      }
      return { id: spec.id, node: this.nodeId }
    }
    // The owner answers with the record it wrote: joining it here means that, once this call
    // resolves, two nodes hold the record, so a crash of either does not lose the child.
    const reply = (await this.rpc.call(target, { op: 'start', spec })) as {
      id: string
      node: string
      delta: Uint8Array
    }
    if (reply?.delta instanceof Uint8Array) this.replicator.joinFrom(target, reply.delta)
    return { id: reply.id, node: reply.node }
  }

  /** Stops a child wherever it runs, for good (wins over a concurrent move). Rejects with NotFoundError. */
  async terminateChild(id: string): Promise<void> {
    if (typeof id !== 'string') throw new InvalidChildSpecError('terminateChild needs a child id (a string)')
    const rec = this.replicator.placement(id)
    if (rec === undefined && !this.local.has(id)) throw new NotFoundError(id)
    if (rec === undefined || rec.node === this.nodeId || !this.membership.isUp(rec.node)) {
      // Here, or the owner cannot be asked: the tombstone reaches it through the map.
      await this.reconciler.terminate(id)
      await this.pushToPeers()
      return
    }
    await this.rpc.call(rec.node, { op: 'terminate', id })
  }

  /**
   * Every child in the cluster with its node and status. Members that cannot be asked (not
   * reachable, or not answering within the request timeout) are skipped: the answer may then
   * be partial — {@link Horde.childrenReport} says whether it is whole.
   */
  async whichChildren(): Promise<ChildInfo[]> {
    return (await this.childrenReport()).children
  }

  /**
   * {@link Horde.whichChildren} and {@link Horde.countChildren} in one call, saying whether the
   * answer is whole: `complete` is false when a member that is not down (by agreement) or gone
   * could not be asked — it is suspected, not reached yet, or did not answer — and `unreached`
   * names those members. During a partition each side sees only its own children: a
   * `complete: false` answer is the signal not to take its counts as the cluster's.
   */
  async childrenReport(): Promise<{
    /** The children of the members that answered, sorted by id. */
    children: ChildInfo[]
    /** Counts: `specs` from this node's replica, `active` from the members that answered. */
    counts: ChildCounts
    /** Every member that is not down or gone answered. */
    complete: boolean
    /** Members that should have answered and did not (sorted). */
    unreached: string[]
  }> {
    const out: ChildInfo[] = []
    const asked = this.reachableNodes()
    const unreached = new Set(
      this.membership
        .view()
        .members.filter((m) => m.status !== 'dead' && m.nodeId !== this.nodeId && !asked.includes(m.nodeId))
        .map((m) => m.nodeId),
    )
    await Promise.all(
      asked.map(async (node) => {
        try {
          const list =
            node === this.nodeId
              ? this.localChildInfos()
              : ((await this.rpc.call(node, { op: 'children' })) as RemoteChild[])
          for (const c of list) out.push({ ...c, node, restart: c.restart as RestartType })
        } catch (err) {
          unreached.add(node)
          log('whichChildren: skipping %s: %s', node, (err as Error).message)
        }
      }),
    )
    const children = out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    const specs = this.clusterChildren().total
    const active = children.filter((c) => c.status === 'running').length
    return {
      children,
      counts: { specs, active, workers: specs, supervisors: 0 },
      complete: unreached.size === 0,
      unreached: [...unreached].sort(),
    }
  }

  /** The children running (or restarting) on this node only; no network. */
  localChildren(): ChildInfo[] {
    return this.localChildInfos().map((c) => ({ ...c, node: this.nodeId, restart: c.restart as RestartType }))
  }

  /** Children counts, cluster-wide (partial while members cannot be asked: see {@link Horde.childrenReport}). */
  async countChildren(): Promise<ChildCounts> {
    return (await this.childrenReport()).counts
  }

  /** This node's view of the cluster, as `nact-horde status` prints it. */
  status(): HordeStatus {
    const { total, perNode } = this.clusterChildren()
    return {
      node: this.nodeId,
      name: this.name,
      addresses: this.addresses,
      members: this.members().map((x) => ({ ...x, children: perNode[x.nodeId] ?? 0 })),
      children: total,
    }
  }

  /**
   * Every member this node knows of, with its status: `alive`; `suspected` (this node cannot
   * reach it, but the cluster has not agreed that it is down: its children stay where they
   * are); `dead` (downed by agreement, or left: its children fail over); `shutting_down`;
   * `uninitialized` (listed or announced, not reached yet). No side effects.
   */
  members(): {
    /** The member's node id. */
    nodeId: string
    /** Its status, as this node sees it. */
    status: MemberStatus
  }[] {
    return this.membership.view().members.map((m) => ({ nodeId: m.nodeId, status: m.status }))
  }

  /** Resolves once the distribution strategy has a quorum; rejects with TimeoutError after `timeout` ms. */
  waitForQuorum(timeout = this.options.requestTimeout): Promise<void> {
    return this.reconciler.waitUntil(
      () => this.strategy.hasQuorum(this.membership.view().members),
      timeout,
      () => new TimeoutError(`quorum not reached within ${timeout} ms`, timeout),
    )
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
    this.replicator.write(CONFIG_MEMBERS, [...new Set(nodeIds)].sort())
    await this.pushToPeers()
  }

  /**
   * Leaves the cluster gracefully: refuses new starts, hands every child to the remaining
   * members (stopping each within its shutdown time, carrying its state where the behaviour
   * exports it) and resolves once they run there. Safe to call twice. Resolves within
   * `requestTimeout` × 3 + `startTimeout` + the longest child shutdown, whatever the children do.
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

  /** What this node has done and sees, for dashboards and alerts (see also the Prometheus exporter). No side effects. */
  metrics(): HordeMetrics {
    const { total, perNode } = this.clusterChildren()
    const members = this.membership.view().members
    const routing = this.router.size()
    const count = (s: MemberStatus) => members.filter((m) => m.status === s).length
    return {
      node: this.nodeId,
      name: this.name,
      members: {
        alive: count('alive'),
        suspected: count('suspected'),
        dead: count('dead'),
        total: members.length,
      },
      children: { local: this.local.count(), cluster: total, perNode },
      ...this.counters,
      messagesRoutedOut: this.router.stats.routedOut,
      messagesRoutedIn: this.router.stats.routedIn,
      proxies: routing.proxies,
      heldMessages: routing.held,
      replicaIds: this.replicator.map.stats().replicaIds,
      retiredReplicaIds: this.replicator.map.stats().retired,
      firstSyncBytes: this.replicator.firstSyncBytes(),
    }
  }

  // ——— wiring ———

  /**
   * The one admission check: with an explicit member list only members write to this node's
   * replica or act through it; others are dropped and counted. (With 'auto', admission is the
   * cluster key.)
   */
  private admits(from: string): boolean {
    const configured = this.replicator.memberList() ?? this.options.members
    if (configured === 'auto' || configured.includes(from)) return true
    // A member just removed from the list is heard until it announces that it left: it hands
    // its children over first. (A stranger never had a member record here: its writes were refused.)
    const rec = this.replicator.member(from)
    if (rec !== undefined && rec.status !== 'left') return true
    this.counters.nonMemberDropped++
    return false
  }

  /** Removed from the member list and every child handed over: announce that this node left. */
  private leaveIfRemoved(view: MembershipView): void {
    if (view.selfMember || this.shuttingDown || this.stopped) return
    if (this.replicator.member(this.nodeId)?.status === 'left' || !this.handedOff()) return
    log('removed from the member list and handed over: leaving')
    this.membership.announce('left')
  }

  /** Emits member:up / member:down for every status change since the last view. */
  private diffMembers(view: MembershipView): void {
    const now = new Map(view.members.map((m) => [m.nodeId, m.status]))
    for (const [nodeId, status] of now) {
      const was = this.lastStatuses.get(nodeId)
      if (status === 'alive' && was !== 'alive') this.emit('member:up', { nodeId })
      else if (
        status !== 'alive' &&
        was !== undefined &&
        was !== status &&
        (was === 'alive' || status === 'dead')
      )
        this.emit('member:down', { nodeId, status })
    }
    for (const [nodeId, was] of this.lastStatuses) {
      if (!now.has(nodeId) && was !== 'dead') this.emit('member:down', { nodeId, status: 'dead' })
    }
    this.lastStatuses = now
  }

  /** Nodes that can answer for their children: members not dead that this node reaches, and itself. */
  private reachableNodes(): string[] {
    const nodes = this.membership
      .view()
      .members.filter(
        (m) =>
          m.nodeId !== this.nodeId &&
          (m.status === 'alive' || m.status === 'shutting_down') &&
          this.membership.isUp(m.nodeId),
      )
      .map((m) => m.nodeId)
    if (!this.stopped) nodes.push(this.nodeId)
    return nodes
  }

  /** Children the map places (tombstones excluded), in all and per node: kept up to date, O(1). */
  private clusterChildren(): { total: number; perNode: Record<string, number> } {
    return this.replicator.placementCounts()
  }

  /**
   * Makes a local write durable: hands its delta to one other reachable member and waits for
   * the acknowledgement (any one; unreachable ones are skipped). Resolves with the member that
   * holds it, `undefined` when there is nobody to hand it to (no other member reachable), or
   * `null` when every reachable member failed to take it.
   */
  private async replicate(delta: Uint8Array): Promise<string | undefined | null> {
    let tried = false
    for (const peer of this.reachableNodes()) {
      if (peer === this.nodeId) continue
      tried = true
      try {
        if ((await this.rpc.call(peer, { op: 'replicate', delta })) !== false) return peer
      } catch (err) {
        log('replicate to %s failed: %s', peer, (err as Error).message)
      }
    }
    return tried ? null : undefined
  }

  /** One sync round with every peer, awaited: pushes this node's latest writes before it goes on. */
  private async pushToPeers(): Promise<void> {
    await Promise.all(
      this.membership.upPeers().map((p) => this.replicator.syncWith(p, (x) => this.membership.isUp(x), true)),
    )
  }

  private async doStop(): Promise<void> {
    if (this.stopped) return
    this.membership.setShuttingDown()
    log('stopping: handing off %d children', this.local.count())
    this.membership.announce('shutting_down')
    await this.pushToPeers()
    this.reconciler.scheduleAll()
    const deadline = this.options.requestTimeout + this.boundedShutdown()
    try {
      await this.reconciler.waitUntil(
        () => this.handedOff(),
        deadline,
        () => new TimeoutError(`handoff not complete within ${deadline} ms`, deadline),
      )
    } catch (err) {
      log('stop: %s', (err as Error).message)
    }
    await this.reconciler.settle()
    this.membership.announce('left')
    await this.pushToPeers()
    // Messages that reached this node during the move are on their way to the new owners.
    await this.router.drain(this.options.requestTimeout)
    this.stopped = true
    this.reconciler.stop()
    this.membership.stop()
    this.replicator.stop()
    this.router.stop()
    clearInterval(this.syncTimer)
    for (const u of this.unsubscribe) u()
    await this.local.stopAll('shutdown')
    if (this.ownsTransport) await this.transport.stop()
  }

  /** No child runs here and every child we moved is running on its new node. */
  private handedOff(): boolean {
    if (this.local.count() > 0 || !this.reconciler.idle) return false
    // Nobody to hand to: the records stay, for a node that joins later to run.
    if (!this.reachableNodes().some((n) => n !== this.nodeId)) return true
    for (const id of this.replicator.childIds()) {
      const rec = this.replicator.placement(id)
      if (rec !== undefined && (rec.from === this.nodeId || rec.node === this.nodeId)) return false
    }
    return true
  }

  /** The longest shutdown a child of this node may take (finite; an unbounded one counts as the default). */
  private boundedShutdown(): number {
    let max = Number.isFinite(this.options.shutdown) ? this.options.shutdown : 5000
    for (const c of this.local?.children() ?? []) {
      const s = this.replicator.placement(c.id)?.spec.shutdown ?? -1
      if (s >= 0) max = Math.max(max, s)
    }
    return max
  }

  private localChildInfos(): RemoteChild[] {
    return this.local
      .children()
      .map((c) => ({ id: c.id, behaviour: c.behaviour, restart: c.restart, status: c.status }))
  }

  /** Where a message for `id` goes now (see Router). */
  private locate(id: string): Location {
    const rec = this.replicator.placement(id)
    if (rec === undefined) return this.local.has(id) ? { kind: 'local' } : { kind: 'none' }
    if (rec.node === this.nodeId) return this.local.has(id) ? { kind: 'local' } : { kind: 'wait' }
    return this.membership.isUp(rec.node) ? { kind: 'remote', node: rec.node } : { kind: 'wait' }
  }

  /** Validates a spec from a caller or a peer and fills in its defaults. */
  private normalizeSpec(input: Partial<ChildSpec>): ReplicatedSpec {
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
    const size = encodedSize(out.args)
    if (size > this.options.maxValueBytes) {
      throw new MessageTooLargeError(
        `child '${spec.id}': its args are ${size} bytes encoded, more than maxValueBytes (${this.options.maxValueBytes}); pass a reference to the data instead`,
      )
    }
    return out
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
      if (!this.reconciler.expectedStops.has(id) && this.replicator.placement(id)?.node === this.nodeId)
        this.reconciler.tombstone(id)
    })
    l.addEventListener('child:failed', (e) => {
      const { id, reason, error } = e.detail
      this.emit('child:failed', { id, node: this.nodeId, reason, error })
      if (this.replicator.placement(id)?.node === this.nodeId) this.reconciler.tombstone(id)
    })
    l.addEventListener('message:dead', (e) => this.emit('message:dead', e.detail))
  }

  private emit<K extends keyof HordeEventMap>(type: K, detail: HordeEventMap[K]['detail']): void {
    if (type === 'child:restarted') this.counters.restarts++
    else if (type === 'child:failed') this.counters.failed++
    else if (type === 'child:conflict') this.counters.conflicts++
    else if (type === 'message:dead') this.counters.deadLetters++
    this.dispatchEvent(new CustomEvent(type, { detail }))
  }
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
  try {
    const horde = new Horde(transport, owns, system, resolved)
    await horde.start()
    return horde
  } catch (err) {
    // A value only a part refuses (e.g. a fractional maxBuffer) must not leak the transport.
    if (owns) await transport.stop()
    throw err
  }
}
