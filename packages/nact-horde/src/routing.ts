import { createRequire } from 'node:module'
import { assertValue } from '@nact-horde/crdt'
import createDebug from 'debug'
import { Packr, Unpackr } from 'msgpackr'
import { NotSerializableError } from './errors.js'
import { type NactContext, type NactRef, nact } from './local/nact.js'
import { ProtocolError } from './protocol.js'

const log = createDebug('horde:routing')

/**
 * Location transparency: plain nact refs on the local system that reach a child, or an actor
 * on another node, wherever it runs.
 *
 * - `ref(id)` is a proxy actor on this node; what it receives goes to the child's owner.
 * - nact refs inside a message (at any depth: `replyTo`, `sender`, arrays) travel as markers
 *   naming their node; the receiving node turns each into a proxy actor of its own whose
 *   messages travel back. So a child can answer a `query` or talk to an actor on the caller's
 *   node with plain `dispatch`.
 * - Messages to one node go in order over one queue (batched, one batch in flight), so each
 *   sender's messages to a child arrive in the order sent.
 * - A message for a child that is moving or restarting waits (bounded) until it runs again;
 *   one that cannot be delivered becomes a `message:dead` event with its reason — never a
 *   silent drop.
 * - Each message carries its journey from node to node: how often it was passed on (hops) and
 *   its age (ms since it was first routed; an age, not a timestamp, as clocks differ between
 *   machines). So two nodes whose replicas disagree about the owner cannot pass it back and
 *   forth for ever: past MAX_HOPS it is `unreachable`, past `maxWait` `expired`, on whichever
 *   node it is. A message handed back to the node it came from waits there first (BOUNCE_DELAY),
 *   giving the replicas time to agree.
 * - Proxy actors that stay idle are stopped; a later message to one re-creates it on demand,
 *   so a ref kept in some actor's state never goes stale.
 */
export interface RouterHost {
  readonly nodeId: string
  /** Where a message for child `id` goes now. */
  locate(id: string): Location
  /** Hands a message to a child running here; false when it was not accepted. */
  deliverLocal(id: string, message: unknown, sender: NactRef | undefined): boolean
  /** Sends an encoded batch to `node`; resolves when that node has taken it. */
  sendBatch(node: string, batch: Uint8Array): Promise<void>
  /** Reports an undeliverable message. */
  dead(id: string, reason: DeadReason, message: unknown, error?: unknown): void
}

export type Location =
  | { kind: 'local' }
  | { kind: 'remote'; node: string }
  /** The child exists but runs nowhere right now (moving, restarting, its node just died). */
  | { kind: 'wait' }
  | { kind: 'none' }

/**
 * Why a message was not delivered (the `reason` of a `message:dead` event). Raised by the
 * router: `not_found` (no child with this id), `buffer_full` (more than `maxBuffer` held for
 * the child), `not_serializable` (not JSON-like data, Uint8Array or nact refs), `unreachable`
 * (the horde is stopping, or the message was passed on between nodes 4 times without reaching
 * its child), `expired` (not delivered within `maxWait` ms of being sent — its age travels with
 * it from node to node). Raised by the child's own node, for messages it had accepted:
 * `crashed` (handling it crashed the child, which restarts per its restart type), `stopped`
 * (the child stopped for good), `failed` (given up after exceeding its restart intensity),
 * `start_failed` (its first `init` failed).
 */
export type DeadReason =
  | 'not_found'
  | 'buffer_full'
  | 'not_serializable'
  | 'unreachable'
  | 'expired'
  | 'crashed'
  | 'stopped'
  | 'failed'
  | 'start_failed'

export interface RouterOptions {
  /** Messages held per child while it runs nowhere. @default 1000 */
  maxBuffer?: number
  /**
   * How long a message may take to reach its child, ms, counted from when it was first routed
   * (across every node it passes): older, it is no longer held nor passed on. @default 10000
   */
  maxWait?: number
  /** Proxy actors idle this long are stopped (re-created on use), ms. @default 60000 */
  idleTimeout?: number
  /** Items per batch on the wire. @default 512 */
  maxBatch?: number
}

const REF = '\u0000nact-ref'
/** Marker of a nact ref on the wire: node, system name, ref type, path parts or temp id. */
type RefMarker = { [REF]: [node: string, system: string, type: string, key: string[] | number] }

/**
 * On the wire: a message for a child (0) or for an actor on the receiving node (1), with the
 * times it was passed on so far and its age in ms. While queued here the last field holds the
 * local time it was first routed instead; it becomes an age just before the batch is packed.
 * A 5-field entry (no age, from an older version) is taken as age 0.
 */
type Item =
  | [kind: 0, id: string, message: unknown, sender: unknown, hops: number, age: number]
  | [kind: 1, ref: RefMarker, message: unknown, sender: unknown, hops: number, age: number]

/** A batch entry as received: without the age when it comes from an older version. */
type ReceivedItem =
  | [kind: 0, id: string, message: unknown, sender: unknown, hops: number, age?: number]
  | [kind: 1, ref: RefMarker, message: unknown, sender: unknown, hops: number, age?: number]

/** Times a message may be passed on to another node; one more is `unreachable`. */
export const MAX_HOPS = 4
/**
 * How long a message handed back to the node it came from waits before it is passed back again,
 * ms: about a sync round, for the two nodes' replicas to agree on the owner.
 */
export const BOUNCE_DELAY = 1000
/** How often held messages are retried and idle proxies looked for, ms. */
const SWEEP_INTERVAL = 250
/** How long a message for an id this node has never heard of waits for its record, ms. */
const NOT_FOUND_GRACE = 1000
const packr = new Packr({ useRecords: false })
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' })

// nact does not export its system registry; refs are resolved through it, so a proxy actor
// that was stopped while idle can be re-created when a message for it arrives.
const require = createRequire(import.meta.url)
const systemMap = require('nact/lib/system-map') as { find(system: string, ref: unknown): unknown }

/** A message's journey so far; kept while it is held, carried (as hops and age) on the wire. */
export interface Trip {
  /** Times it was passed on to another node. */
  hops: number
  /** When it was first routed, on this process's clock. */
  since: number
  /** The node that passed it to this one. */
  from?: string
  /** When this node first held it. */
  heldAt?: number
}

interface Held extends Trip {
  message: unknown
  sender: NactRef | undefined
  heldAt: number
}

interface Proxy {
  ref: NactRef
  lastUsed: number
}

export class Router {
  private readonly queues = new Map<string, { items: Item[]; flushing: boolean }>()
  /** Resolvers of drain() calls, run when the last queue empties. */
  private readonly drainWaiters = new Set<() => void>()
  private readonly held = new Map<string, Held[]>()
  private readonly proxies = new Map<string, Proxy>()
  private readonly parent: NactRef
  /** The parent's map of proxy actors (nact's own), once made lazy. */
  private proxyActors: { peek(name: string): unknown } | undefined
  /** Proxies by actor name, for the lookup nact makes on every dispatch. */
  private readonly proxyNames = new Map<string, Proxy>()
  private readonly sweepTimer: NodeJS.Timeout
  private readonly maxBuffer: number
  private readonly maxWait: number
  private readonly idleTimeout: number
  private readonly maxBatch: number
  private stopped = false
  /** `drain()` was called: hold nothing back for BOUNCE_DELAY any more. */
  private leaving = false
  /** Counters; `malformed` counts batch entries from other nodes dropped as not of this protocol. */
  readonly stats = { routedOut: 0, routedIn: 0, batchesOut: 0, dead: 0, malformed: 0 }

  constructor(
    private readonly host: RouterHost,
    private readonly system: NactRef,
    parentName: string,
    options: RouterOptions = {},
  ) {
    this.maxBuffer = options.maxBuffer ?? 1000
    this.maxWait = options.maxWait ?? 10_000
    this.idleTimeout = options.idleTimeout ?? 60_000
    this.maxBatch = options.maxBatch ?? 512
    this.parent = nact.spawn(system, (s) => s, parentName)
    this.makeProxiesLazy()
    this.sweepTimer = setInterval(() => this.sweep(), SWEEP_INTERVAL)
    this.sweepTimer.unref()
  }

  /** A nact ref on this node's system for child `id`, wherever it runs. */
  ref(id: string): NactRef {
    return this.proxy(`c${JSON.stringify([id])}`).ref
  }

  /**
   * Routes a message to child `id` (what a `ref(id)` proxy does with what it receives). `trip`
   * is the journey of a message that came from another node or was held here; none: a new one.
   */
  route(id: string, message: unknown, sender: NactRef | undefined, trip?: Trip): void {
    if (this.stopped) {
      this.dead(id, 'unreachable', message)
      return
    }
    const now = Date.now()
    const t: Trip = trip ?? { hops: 0, since: now }
    const where = this.host.locate(id)
    if (where.kind === 'local') {
      if (!this.host.deliverLocal(id, message, sender)) log('%s: not accepted locally', id)
      return
    }
    // Only the child's own node delivers a message past its time; the others give it up.
    if (now - t.since > this.maxWait) {
      this.dead(id, 'expired', message)
      return
    }
    switch (where.kind) {
      case 'remote': {
        // The node that sent us this believes we run the child, ours that it does: one of the
        // two replicas is behind (a move is in flight). Wait for them to agree before handing
        // it back; if ours catches up meanwhile, the sweep sends it on.
        if (where.node === t.from && !this.leaving && now - (t.heldAt ?? now) < BOUNCE_DELAY) {
          this.hold(id, message, sender, t)
          return
        }
        if (t.hops >= MAX_HOPS) {
          this.dead(id, 'unreachable', message)
          return
        }
        let wire: Item
        try {
          wire = [0, id, this.exportValue(message), this.exportSender(sender), t.hops + 1, t.since]
        } catch (err) {
          this.dead(id, 'not_serializable', message, err)
          return
        }
        this.enqueue(where.node, wire)
        return
      }
      case 'wait':
        this.hold(id, message, sender, t)
        return
      case 'none':
        // This node's replica may not have the child's record yet (it was just started on
        // another node): hold the message briefly before calling the id unknown.
        this.hold(id, message, sender, t)
        return
    }
  }

  /** A child may run here now: deliver what waited for it. */
  ready(id: string): void {
    const waiting = this.held.get(id)
    if (waiting === undefined) return
    this.held.delete(id)
    for (const h of waiting) this.route(id, h.message, h.sender, h)
  }

  /**
   * Takes a batch another node sent. Throws ProtocolError on bytes that are not a batch; an
   * entry that is not of the protocol is dropped and counted (`stats.malformed`).
   */
  receiveBatch(bytes: Uint8Array, from: string): void {
    let items: unknown
    try {
      items = unpackr.unpack(bytes)
    } catch {
      items = undefined
    }
    if (!Array.isArray(items)) {
      this.stats.malformed++
      throw new ProtocolError('a delivery batch must be a MessagePack array of entries')
    }
    const now = Date.now()
    for (const item of items as unknown[]) {
      if (!isItem(item)) {
        this.stats.malformed++
        log('dropped a malformed batch entry from %s', from)
        continue
      }
      this.stats.routedIn++
      try {
        const message = this.importValue(item[2])
        const sender = item[3] === null ? undefined : (this.importValue(item[3]) as NactRef)
        if (item[0] === 0) {
          this.route(item[1], message, sender, { hops: item[4], since: now - (item[5] ?? 0), from })
        } else {
          const ref = this.importRef(item[1])
          if (ref !== undefined) nact.dispatch(ref, message, sender)
        }
      } catch (err) {
        // Not expected (the entry's shape was checked), but one entry never fails the batch.
        this.stats.malformed++
        log('dropped a batch entry from %s that could not be taken: %O', from, err)
      }
    }
  }

  /** Number of live proxy actors and held messages: for memory accounting. */
  size(): { proxies: number; held: number; queued: number } {
    let held = 0
    for (const h of this.held.values()) held += h.length
    let queued = 0
    for (const q of this.queues.values()) queued += q.items.length
    return { proxies: this.proxies.size, held, queued }
  }

  /**
   * This node is leaving: sends on what it holds for children that run elsewhere (even back to
   * the node a message came from, without waiting BOUNCE_DELAY — held here it would be lost), and
   * resolves once every queued message has been handed to its node (or `timeout` ms pass).
   */
  async drain(timeout: number): Promise<void> {
    this.leaving = true
    for (const [id] of [...this.held]) if (this.host.locate(id).kind === 'remote') this.ready(id)
    if (this.queues.size === 0) return
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer)
        this.drainWaiters.delete(done)
        resolve()
      }
      const timer = setTimeout(done, timeout)
      this.drainWaiters.add(done)
    })
  }

  stop(): void {
    this.stopped = true
    clearInterval(this.sweepTimer)
    for (const [id, hs] of this.held) for (const h of hs) this.dead(id, 'unreachable', h.message)
    this.held.clear()
    nact.stop(this.parent)
    this.proxies.clear()
  }

  // ——— queues to other nodes ———

  private enqueue(node: string, item: Item): void {
    let q = this.queues.get(node)
    if (q === undefined) {
      q = { items: [], flushing: false }
      this.queues.set(node, q)
    }
    q.items.push(item)
    this.stats.routedOut++
    if (!q.flushing) void this.flush(node, q)
  }

  /** Sends the queue's items in order, one batch in flight at a time. */
  private async flush(node: string, q: { items: Item[]; flushing: boolean }): Promise<void> {
    q.flushing = true
    // Let the current tick's sends join the batch.
    await new Promise((r) => setImmediate(r))
    while (q.items.length > 0) {
      const batch = q.items.splice(0, this.maxBatch)
      // Queued entries hold the time they were first routed: on the wire, their age.
      const now = Date.now()
      for (const item of batch) item[5] = Math.max(0, now - item[5])
      let packed: Uint8Array
      try {
        packed = packr.pack(batch)
      } finally {
        for (const item of batch) item[5] = now - item[5]
      }
      try {
        await this.host.sendBatch(node, packed)
        this.stats.batchesOut++
      } catch (err) {
        log('batch to %s failed (%s): re-routing %d messages', node, (err as Error).message, batch.length)
        // The node did not take them: route each again, to the child's owner as now known
        // (it may have moved, or be waiting for a failover).
        for (const item of batch) this.reroute(item)
      }
    }
    q.flushing = false
    if (q.items.length > 0) return
    this.queues.delete(node)
    if (this.queues.size === 0) for (const done of [...this.drainWaiters]) done()
  }

  private reroute(item: Item): void {
    const message = this.importValue(item[2])
    const sender = item[3] === null ? undefined : (this.importValue(item[3]) as NactRef)
    if (item[0] === 0) {
      // The hop that failed does not count; the time it took does.
      const trip: Trip = { hops: item[4] - 1, since: item[5] }
      const where = this.host.locate(item[1])
      // The node we sent to is unreachable: hold the message until the child runs elsewhere.
      if (where.kind === 'remote' || where.kind === 'wait') this.hold(item[1], message, sender, trip)
      else this.route(item[1], message, sender, trip)
    } else {
      this.dead(`ref:${item[1][REF][0]}`, 'unreachable', message)
    }
  }

  // ——— messages waiting for their child ———

  private hold(id: string, message: unknown, sender: NactRef | undefined, trip: Trip): void {
    if (Date.now() - trip.since > this.maxWait) {
      this.dead(id, 'expired', message)
      return
    }
    let list = this.held.get(id)
    if (list === undefined) {
      list = []
      this.held.set(id, list)
    }
    if (list.length >= this.maxBuffer) {
      this.dead(id, 'buffer_full', message)
      return
    }
    const { hops, since, from } = trip
    list.push({ message, sender, hops, since, from, heldAt: trip.heldAt ?? Date.now() })
  }

  private sweep(): void {
    const now = Date.now()
    // A snapshot: a message handed back too soon is held again, under an id this loop would revisit.
    for (const [id, list] of [...this.held]) {
      const where = this.host.locate(id)
      if (where.kind === 'local' || (where.kind === 'remote' && !this.stopped)) {
        // Its owner is known again (a failover finished): deliver in order.
        this.ready(id)
        continue
      }
      // Ages came with the messages, so the list is not in age order: look at each.
      const keep: Held[] = []
      for (const h of list) {
        if (now - h.since > this.maxWait) this.dead(id, 'expired', h.message)
        // An unknown id's grace counts from when this node held it: the record may be on its way.
        else if (where.kind === 'none' && now - h.heldAt > NOT_FOUND_GRACE)
          this.dead(id, 'not_found', h.message)
        else keep.push(h)
      }
      if (keep.length === 0) this.held.delete(id)
      else if (keep.length !== list.length) this.held.set(id, keep)
    }
    for (const [key, p] of this.proxies) {
      if (now - p.lastUsed > this.idleTimeout && !this.hasBacklog(key)) this.retire(key)
    }
  }

  private dead(id: string, reason: DeadReason, message: unknown, error?: unknown): void {
    this.stats.dead++
    this.host.dead(id, reason, message, error)
  }

  // ——— refs across nodes ———

  /** Replaces nact refs with markers and checks the rest is JSON-like. */
  private exportValue(v: unknown): unknown {
    const out = this.exportWalk(v, 0)
    try {
      assertValue(out)
    } catch (err) {
      throw new NotSerializableError(
        `messages must be JSON-like data, Uint8Array or nact refs: ${(err as Error).message}`,
      )
    }
    return out
  }

  private exportWalk(v: unknown, depth: number): unknown {
    if (typeof v !== 'object' || v === null || v instanceof Uint8Array || depth > 64) return v
    if (isNactRef(v)) return this.exportRef(v)
    if (Array.isArray(v)) return v.map((x) => this.exportWalk(x, depth + 1))
    if (Object.getPrototypeOf(v) !== Object.prototype) return v // left for assertValue to refuse
    const o: Record<string, unknown> = {}
    for (const [k, x] of Object.entries(v)) o[k] = this.exportWalk(x, depth + 1)
    return o
  }

  /** nact passes a placeholder ("nobody") when there is no sender: that travels as null. */
  private exportSender(sender: NactRef | undefined): RefMarker | null {
    return sender !== undefined && isNactRef(sender) ? this.exportRef(sender) : null
  }

  private exportRef(ref: NactRef): RefMarker {
    const r = ref as NactRef & { path?: { parts: string[] }; id?: number }
    // A proxy of ours stands for a ref on another node: send the original, not a chain of hops.
    const proxied = this.proxyTarget(r)
    if (proxied !== undefined) return proxied
    const key = r.type === 'temp' ? (r.id ?? 0) : (r.path?.parts ?? [])
    return { [REF]: [this.host.nodeId, r.system.name ?? '', r.type ?? 'actor', key] }
  }

  private importValue(v: unknown): unknown {
    if (typeof v !== 'object' || v === null || v instanceof Uint8Array) return v
    if (isMarker(v)) return this.importRef(v)
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) v[i] = this.importValue(v[i])
      return v
    }
    const o = v as Record<string, unknown>
    for (const k of Object.keys(o)) o[k] = this.importValue(o[k])
    return o
  }

  /** The local ref a marker stands for: the original if it lives here, else a proxy. */
  private importRef(m: RefMarker): NactRef | undefined {
    const [node, system, type, key] = m[REF]
    if (node === this.host.nodeId) return rebuildRef(system, type, key)
    return this.proxy(`r${JSON.stringify([node, system, type, key])}`).ref
  }

  private proxyTarget(ref: NactRef & { path?: { parts: string[] } }): RefMarker | undefined {
    const parts = ref.path?.parts
    const parentParts = (this.parent as NactRef & { path?: { parts: string[] } }).path?.parts
    if (parts === undefined || parentParts === undefined || parts.length !== parentParts.length + 1)
      return undefined
    for (let i = 0; i < parentParts.length; i++) if (parts[i] !== parentParts[i]) return undefined
    const key = decodeProxyName(parts[parts.length - 1]!)
    if (key?.startsWith('r')) {
      const [node, system, type, k] = JSON.parse(key.slice(1)) as RefMarker[typeof REF]
      return { [REF]: [node, system, type, k] }
    }
    return undefined
  }

  /** The proxy actor for `key` (`c[id]` for a child, `r[node, system, type, key]` for a remote ref). */
  private proxy(key: string): Proxy {
    let p = this.proxies.get(key)
    if (p === undefined) {
      const handler = key.startsWith('c')
        ? this.childProxyHandler((JSON.parse(key.slice(1)) as [string])[0])
        : this.refProxyHandler(JSON.parse(key.slice(1)) as RefMarker[typeof REF])
      const name = encodeProxyName(key)
      const ref = nact.spawn(this.parent, handler, name)
      p = { ref, lastUsed: Date.now() }
      this.proxies.set(key, p)
      this.proxyNames.set(name, p)
    }
    p.lastUsed = Date.now()
    return p
  }

  private childProxyHandler(id: string) {
    const key = `c${JSON.stringify([id])}`
    return (state: unknown, message: unknown, ctx: NactContext) => {
      this.touch(key)
      this.route(id, message, ctx.sender)
      return state
    }
  }

  private refProxyHandler(target: RefMarker[typeof REF]) {
    const marker: RefMarker = { [REF]: target }
    const key = `r${JSON.stringify(target)}`
    return (state: unknown, message: unknown, ctx: NactContext) => {
      this.touch(key)
      let item: Item
      try {
        item = [1, marker, this.exportValue(message), this.exportSender(ctx.sender), 1, Date.now()]
      } catch (err) {
        this.dead(`ref:${target[0]}`, 'not_serializable', message, err)
        return state
      }
      this.enqueue(target[0], item)
      // A temporary ref (a query's reply-to) takes one answer: its proxy is done after it.
      if (target[2] === 'temp') this.retire(key)
      return state
    }
  }

  private retire(key: string): void {
    const p = this.proxies.get(key)
    if (p === undefined) return
    this.proxies.delete(key)
    this.proxyNames.delete(encodeProxyName(key))
    nact.stop(p.ref)
  }

  /** Whether the proxy actor for `key` is handling a message or has some waiting (nact's own mailbox). */
  private hasBacklog(key: string): boolean {
    const actor = this.proxyActors?.peek(encodeProxyName(key)) as
      | { busy?: boolean; mailbox?: { length: number } }
      | undefined
    return actor !== undefined && (actor.busy === true || (actor.mailbox?.length ?? 0) > 0)
  }

  private touch(key: string): void {
    const p = this.proxies.get(key)
    if (p !== undefined) p.lastUsed = Date.now()
  }

  /**
   * nact resolves a ref by walking its parent's `children` map; a proxy stopped while idle
   * would then drop messages silently. Make the lookup re-create it instead.
   */
  private makeProxiesLazy(): void {
    const concrete = systemMap.find(this.system.system.name ?? '', this.parent) as
      | { children: Map<string, unknown> }
      | undefined
    if (concrete === undefined) return
    const original = concrete.children
    const router = this
    const children = new (class extends Map<string, unknown> {
      /** The actor without the side effects of `get`. */
      peek(name: string): unknown {
        return super.get(name)
      }

      override get(name: string): unknown {
        const found = super.get(name)
        if (found !== undefined) {
          // Every dispatch to a proxy counts as use, not only the messages it has handled: a
          // proxy with a backlog older than the idle timeout must not be stopped with it.
          const p = router.proxyNames.get(name)
          if (p !== undefined) p.lastUsed = Date.now()
          return found
        }
        if (router.stopped) return found
        const key = decodeProxyName(name)
        if (key === undefined) return undefined
        router.proxy(key)
        return super.get(name)
      }
    })(original)
    concrete.children = children
    this.proxyActors = children
  }
}

function isNactRef(v: object): v is NactRef {
  const r = v as { type?: unknown; system?: { name?: unknown } }
  return (
    (r.type === 'actor' || r.type === 'temp' || r.type === 'system') &&
    typeof r.system === 'object' &&
    r.system !== null &&
    typeof r.system.name === 'string'
  )
}

/**
 * A batch entry as another node sent it: every field checked, so nothing of the wrong type
 * reaches a behaviour or the router's bookkeeping. 5 fields: an older sender, without the age.
 */
function isItem(v: unknown): v is ReceivedItem {
  if (!Array.isArray(v) || (v.length !== 5 && v.length !== 6)) return false
  const [kind, target, , , hops, age] = v as unknown[]
  if (!Number.isSafeInteger(hops) || (hops as number) < 0) return false
  if (v.length === 6 && !(typeof age === 'number' && age >= 0 && Number.isFinite(age))) return false
  return (kind === 0 && typeof target === 'string') || (kind === 1 && isMarker(target))
}

function isMarker(v: unknown): v is RefMarker {
  if (typeof v !== 'object' || v === null || !Object.hasOwn(v, REF)) return false
  const m = (v as RefMarker)[REF]
  return (
    Array.isArray(m) &&
    m.length === 4 &&
    typeof m[0] === 'string' &&
    typeof m[1] === 'string' &&
    typeof m[2] === 'string' &&
    (Array.isArray(m[3]) || typeof m[3] === 'number')
  )
}

function rebuildRef(system: string, type: string, key: string[] | number): NactRef {
  if (type === 'temp') return { type, system: { name: system }, id: key } as unknown as NactRef
  if (type === 'system')
    return { type, system: { name: system }, name: system, path: { parts: [] } } as unknown as NactRef
  return { type: 'actor', system: { name: system }, path: { parts: key } } as unknown as NactRef
}

/** Proxy actor names: `p.` + base64url of the key (always a valid nact name). */
function encodeProxyName(key: string): string {
  return `p.${Buffer.from(key, 'utf8').toString('base64url')}`
}

function decodeProxyName(name: string): string | undefined {
  if (!name.startsWith('p.')) return undefined
  const key = Buffer.from(name.slice(2), 'base64url').toString('utf8')
  return key.startsWith('c[') || key.startsWith('r[') ? key : undefined
}
