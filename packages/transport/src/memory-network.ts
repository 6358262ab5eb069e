import { BaseTransport, type HandlerResult } from './base-transport.js'
import { copyBytes } from './codec.js'
import { InvalidOptionsError, PeerUnreachableError, type TimeoutError } from './errors.js'
import { defaultLog } from './log.js'
import { resolveOptions, type TransportInit } from './options.js'
import { mulberry32 } from './random.js'
import type { Transport } from './transport.js'

/** Behaviour of a simulated link. */
export interface LinkOptions {
  /** Probability in [0, 1] that a message on the link is lost. @default 0 */
  loss?: number
  /** Delay in ms before a message on the link is delivered. @default 0 */
  delay?: number
}

/** Options of {@link createMemoryNetwork}. */
export interface MemoryNetworkOptions {
  /** Seed of the PRNG that decides losses; a random seed (see `network.seed`) when omitted. */
  seed?: number
  /** Link behaviour for every pair without its own {@link MemoryNetwork.setLink} setting. */
  defaults?: LinkOptions
}

/** Options of a memory transport: those of {@link TransportInit} that apply, plus a chosen id. */
export interface MemoryTransportInit
  extends Pick<TransportInit, 'maxMessageBytes' | 'requestTimeout' | 'failureTimeout' | 'log'> {
  /** The node id; `memory-<n>` (n counting from 1 in this network) when omitted. Must be unique in the network. */
  nodeId?: string
}

/**
 * An in-process network of transports with the {@link Transport} interface, whose links can
 * be cut (both ways or one way), delayed and made lossy, and whose nodes can be paused —
 * deterministically under a seed, except that silence is timed with real timers.
 *
 * Liveness: two members are up for each other while both run, no partition separates them,
 * and neither has fallen silent for the other. `partition()` takes peers across the cut down
 * at once (the `peer:down` events follow in a microtask, not after a failure timeout);
 * `heal()` brings them up at once. Silence is judged like the libp2p transport judges it: a
 * node sees a peer down `failureTimeout` ms (the observer's own option) after it stopped
 * hearing it — because of {@link MemoryNetwork.cutOneWay} or {@link MemoryNetwork.pause}.
 * Loss and delay never change liveness, only whether and when messages arrive.
 *
 * Requests: across a partition, to a node that is not a member, or from a node to a paused
 * node it has given up on (it hung up), `request()` rejects at once with
 * {@link PeerUnreachableError}. When the request or its reply is dropped by a one-way cut or
 * held by a pause, the sender cannot tell sooner than its timeout: the request then rejects at
 * its timeout, with {@link PeerUnreachableError} rather than {@link TimeoutError} (or earlier,
 * if the sender sees the peer go down meanwhile). A lossy or slow link gives
 * {@link TimeoutError}, as a real one would.
 */
export interface MemoryNetwork {
  /** The seed of the loss PRNG (print it to replay a failing test). */
  readonly seed: number
  /** Ids of the running members (paused ones included). */
  readonly nodeIds: string[]
  /**
   * Creates and joins a new member; it is up with every reachable member when this resolves
   * (except paused ones: it meets those when they resume).
   */
  createTransport(init?: MemoryTransportInit): Promise<Transport>
  /** Cuts every link between a node of `a` and a node of `b` (cuts accumulate until heal()). */
  partition(a: string[], b: string[]): void
  /**
   * Drops every message (publication, request, reply) that `from` sends to `to`; what `to`
   * sends to `from` still arrives. `to` stops hearing `from`, so `to` sees `from` down
   * `failureTimeout` ms (`to`'s option) after the cut, like heartbeats that stop in one
   * direction; `from` still hears `to` and keeps seeing it up. Nobody hangs up. Cuts
   * accumulate until {@link MemoryNetwork.heal}; cutting both ways is not a partition (each
   * side sees the other down only after its failure timeout). Ids need not be members yet.
   * @throws {InvalidOptionsError} if `from` and `to` are the same or not non-empty strings
   */
  cutOneWay(from: string, to: string): void
  /**
   * Freezes a member's networking, as SIGSTOP or a long GC pause would freeze the process:
   *
   * - nothing reaches it: publications, requests, replies and its own `peer:up` / `peer:down`
   *   events are queued, in order (messages already in flight when the pause starts too);
   * - nothing it sends leaves: its publications, requests and replies are queued, in order;
   * - every other member sees it down `failureTimeout` ms (that member's option) after the
   *   pause started, hangs up on it (so it will see that member down when it resumes), and
   *   from then on drops what it would send it; a request from such a member rejects at once
   *   with {@link PeerUnreachableError};
   * - members created during the pause meet it only when it resumes.
   *
   * What a pause does **not** stop: the node's process is this one, so its own code and timers
   * keep running — its request timeouts still expire (with {@link PeerUnreachableError}),
   * `publish()` and `request()` still return, and `peers()` keeps showing what it last knew.
   * A pause of a paused node does nothing.
   * @throws {InvalidOptionsError} if `nodeId` is not a member, or is still resuming
   */
  pause(nodeId: string): void
  /**
   * Ends a {@link MemoryNetwork.pause}: the node first gets everything queued for it, in
   * order (including `peer:down` for every member that gave up on it), then a `stall` event
   * whose `ms` is the length of the pause, then its queued outbound traffic leaves, and
   * finally it and the members that gave up on it see each other up again. Resolves when all
   * of that happened (the events themselves are dispatched asynchronously, as always).
   * Resuming a node that is not paused does nothing.
   */
  resume(nodeId: string): Promise<void>
  /** Removes every cut, one-way ones included, and brings the peers they separated up. Paused nodes stay paused. */
  heal(): void
  /** Sets loss and delay of the link between `a` and `b`, in both directions; an omitted field follows the network defaults. */
  setLink(a: string, b: string, options: LinkOptions): void
  /** Sets the default loss and delay, for every link field not set by {@link MemoryNetwork.setLink}. */
  setDefaults(options: LinkOptions): void
}

function checkLink(options: LinkOptions): Required<LinkOptions> {
  const loss = options.loss ?? 0
  const delay = options.delay ?? 0
  if (typeof loss !== 'number' || !(loss >= 0 && loss <= 1)) {
    throw new InvalidOptionsError(`link loss must be a probability in [0, 1], got ${String(loss)}`)
  }
  if (typeof delay !== 'number' || !(delay >= 0 && delay <= 600_000)) {
    throw new InvalidOptionsError(`link delay must be ms in [0, 600000], got ${String(delay)}`)
  }
  return { loss, delay }
}

const pairKey = (a: string, b: string) => (a < b ? `${a}\u0000${b}` : `${b}\u0000${a}`)
/** Key of a direction: what `from` sends to (or hears from) `to`, depending on the map. */
const dirKey = (from: string, to: string) => `${from}\u0000${to}`

/** Why an observer no longer hears a peer. */
type Silence = 'one-way cut' | 'paused'

/** A paused member: what waits for it, what it sent, and since when. */
interface Pause {
  since: number
  inbox: Array<() => void>
  outbox: Array<() => void>
  /** resume() is replaying the inbox: new arrivals still queue behind it. */
  resuming: boolean
}

class Network implements MemoryNetwork {
  readonly seed: number
  private readonly random: () => number
  private readonly members = new Map<string, MemoryTransport>()
  private readonly cuts = new Set<string>()
  /** One-way cuts, by dirKey(from, to): what `from` sends `to` is dropped. */
  private readonly oneWay = new Set<string>()
  private readonly paused = new Map<string, Pause>()
  /** By dirKey(observer, subject): the observer gave up on the subject after a silence. */
  private readonly silent = new Map<string, Silence>()
  /** By dirKey(observer, subject): the observer's failure timeout is running for the subject. */
  private readonly silenceTimers = new Map<string, ReturnType<typeof setTimeout>>()
  private readonly links = new Map<string, LinkOptions>()
  private defaults: Required<LinkOptions>
  private counter = 0

  constructor(options: MemoryNetworkOptions) {
    this.seed = options.seed ?? Math.floor(Math.random() * 2 ** 32)
    if (!Number.isInteger(this.seed)) throw new InvalidOptionsError('seed must be an integer')
    this.random = mulberry32(this.seed)
    this.defaults = checkLink(options.defaults ?? {})
  }

  get nodeIds(): string[] {
    return [...this.members.keys()]
  }

  async createTransport(init: MemoryTransportInit = {}): Promise<Transport> {
    const options = resolveOptions({
      maxMessageBytes: init.maxMessageBytes,
      requestTimeout: init.requestTimeout,
      failureTimeout: init.failureTimeout,
      log: init.log,
    })
    const nodeId = init.nodeId ?? `memory-${++this.counter}`
    if (typeof nodeId !== 'string' || nodeId.length === 0 || this.members.has(nodeId)) {
      throw new InvalidOptionsError(
        `nodeId ${String(nodeId)} is empty or already used in this memory network`,
      )
    }
    const t = new MemoryTransport(this, nodeId, options.failureTimeout, {
      maxMessageBytes: options.maxMessageBytes,
      requestTimeout: options.requestTimeout,
      log: init.log ?? defaultLog(`memory:${nodeId}`),
    })
    this.members.set(nodeId, t)
    for (const other of this.members.values()) {
      if (other === t) continue
      // A frozen node cannot complete a handshake: the newcomer meets it when it resumes.
      if (this.paused.has(other.nodeId)) this.silent.set(dirKey(nodeId, other.nodeId), 'paused')
      this.reconsider(other.nodeId, nodeId)
      this.reconsider(nodeId, other.nodeId)
    }
    await Promise.resolve()
    return t
  }

  leave(t: MemoryTransport): void {
    if (this.members.get(t.nodeId) !== t) return
    this.members.delete(t.nodeId)
    this.paused.delete(t.nodeId)
    for (const [key, timer] of this.silenceTimers) {
      const [o, s] = key.split('\u0000') as [string, string]
      if (o === t.nodeId || s === t.nodeId) {
        clearTimeout(timer)
        this.silenceTimers.delete(key)
      }
    }
    for (const key of [...this.silent.keys()]) {
      const [o, s] = key.split('\u0000') as [string, string]
      if (o === t.nodeId || s === t.nodeId) this.silent.delete(key)
    }
    for (const other of this.members.values()) other.peerDown(t.nodeId, 'stopped')
  }

  member(nodeId: string): MemoryTransport | undefined {
    return this.members.get(nodeId)
  }

  allMembers(): Iterable<MemoryTransport> {
    return this.members.values()
  }

  reachable(a: string, b: string): boolean {
    return a !== b && this.members.has(a) && this.members.has(b) && !this.cuts.has(pairKey(a, b))
  }

  partition(a: string[], b: string[]): void {
    for (const x of a) {
      for (const y of b) {
        if (x === y) throw new InvalidOptionsError(`${x} cannot be on both sides of a partition`)
        this.cuts.add(pairKey(x, y))
        this.members.get(x)?.peerDown(y, 'partitioned')
        this.members.get(y)?.peerDown(x, 'partitioned')
      }
    }
  }

  cutOneWay(from: string, to: string): void {
    if (typeof from !== 'string' || typeof to !== 'string' || from.length === 0 || to.length === 0) {
      throw new InvalidOptionsError('cutOneWay(from, to) takes two node ids (t.nodeId)')
    }
    if (from === to) throw new InvalidOptionsError(`cutOneWay: ${from} cannot be cut from itself`)
    this.oneWay.add(dirKey(from, to))
    this.reconsider(to, from)
  }

  pause(nodeId: string): void {
    if (!this.members.has(nodeId)) {
      throw new InvalidOptionsError(
        `pause: ${String(nodeId)} is not a member of this network (see net.nodeIds)`,
      )
    }
    const current = this.paused.get(nodeId)
    if (current?.resuming) {
      throw new InvalidOptionsError(
        `pause: ${nodeId} is still resuming: await net.resume() before pausing it again`,
      )
    }
    if (current !== undefined) return
    this.paused.set(nodeId, { since: performance.now(), inbox: [], outbox: [], resuming: false })
    for (const other of this.members.keys()) if (other !== nodeId) this.reconsider(other, nodeId)
  }

  resume(nodeId: string): Promise<void> {
    const pause = this.paused.get(nodeId)
    const t = this.members.get(nodeId)
    if (pause === undefined || pause.resuming || t === undefined) return Promise.resolve()
    pause.resuming = true
    const ms = Math.round(performance.now() - pause.since)
    return new Promise((resolve) => {
      // One queued item per microtask: the peer events an item causes are dispatched (in
      // their own microtask) before the next item runs, so the node sees everything in order.
      const step = () => {
        if (this.paused.get(nodeId) !== pause) return resolve() // stopped meanwhile
        const next = pause.inbox.shift()
        if (next !== undefined) {
          next()
          queueMicrotask(step)
          return
        }
        this.paused.delete(nodeId)
        t.stalled(ms)
        for (const send of pause.outbox) send()
        for (const other of this.members.keys()) {
          if (other === nodeId) continue
          this.reconsider(other, nodeId)
          this.reconsider(nodeId, other)
        }
        resolve()
      }
      queueMicrotask(step)
    })
  }

  heal(): void {
    const cut = [...this.cuts]
    this.cuts.clear()
    const oneWay = [...this.oneWay]
    this.oneWay.clear()
    for (const key of cut) {
      const [a, b] = key.split('\u0000') as [string, string]
      this.reconsider(a, b)
      this.reconsider(b, a)
    }
    for (const key of oneWay) {
      const [from, to] = key.split('\u0000') as [string, string]
      this.reconsider(to, from)
    }
  }

  /** What keeps `observer` from hearing `subject`, if anything. */
  private silenceCause(observer: string, subject: string): Silence | undefined {
    const pause = this.paused.get(subject)
    if (pause !== undefined && !pause.resuming) return 'paused'
    if (this.oneWay.has(dirKey(subject, observer))) return 'one-way cut'
    return undefined
  }

  /**
   * Whether `observer` should see `subject` up: both members, no partition between them, the
   * observer has not given up on the subject, and the subject has not hung up on the
   * (paused) observer.
   */
  private upFor(observer: string, subject: string): boolean {
    return (
      this.reachable(observer, subject) &&
      !this.silent.has(dirKey(observer, subject)) &&
      this.silent.get(dirKey(subject, observer)) !== 'paused'
    )
  }

  /**
   * Brings what `observer` thinks of `subject` in line with the links and pauses: starts the
   * observer's failure timeout when it stops hearing the subject, forgets a silence whose
   * cause is gone, and marks the subject up or down accordingly.
   */
  private reconsider(observer: string, subject: string): void {
    const t = this.members.get(observer)
    if (t === undefined || !this.members.has(subject)) return
    const key = dirKey(observer, subject)
    const cause = this.silenceCause(observer, subject)
    if (cause === undefined) {
      clearTimeout(this.silenceTimers.get(key))
      this.silenceTimers.delete(key)
      this.silent.delete(key)
    } else if (this.silent.has(key)) {
      this.silent.set(key, cause)
    } else if (!this.silenceTimers.has(key)) {
      const timer = setTimeout(() => {
        this.silenceTimers.delete(key)
        const still = this.silenceCause(observer, subject)
        if (still === undefined || this.members.get(observer) !== t) return
        this.silent.set(key, still)
        this.apply(observer, subject, `silent for ${t.failureTimeout} ms (${still})`)
        // Giving up on a paused node hangs up on it: it will see the observer down too.
        if (still === 'paused')
          this.apply(subject, observer, `${observer} hung up while this node was paused`, true)
      }, t.failureTimeout)
      this.silenceTimers.set(key, timer)
    }
    this.apply(observer, subject, 'partitioned')
    this.apply(subject, observer, 'partitioned')
  }

  /** Marks `subject` up or down at `observer`, as {@link Network.upFor} says. */
  private apply(observer: string, subject: string, reason: string, closed = false): void {
    const t = this.members.get(observer)
    if (t === undefined) return
    if (this.upFor(observer, subject)) t.peerUp(subject)
    else t.peerDown(subject, reason, closed)
  }

  /** Queues `item` for a paused (or resuming) node; false when the node is not paused. */
  enqueueFor(nodeId: string, item: () => void): boolean {
    const pause = this.paused.get(nodeId)
    if (pause === undefined) return false
    pause.inbox.push(item)
    return true
  }

  /** Why a request from `from` to `to` cannot be answered now, if the network knows. */
  blockedReason(from: string, to: string): string | undefined {
    if (this.oneWay.has(dirKey(from, to))) return `a one-way cut drops what ${from} sends to ${to}`
    if (this.oneWay.has(dirKey(to, from))) return `a one-way cut drops what ${to} sends back`
    if (this.paused.has(to)) return `${to} is paused`
    if (this.paused.has(from)) return `${from} (this node) is paused`
    return undefined
  }

  setLink(a: string, b: string, options: LinkOptions): void {
    checkLink(options)
    this.links.set(pairKey(a, b), { ...options })
  }

  setDefaults(options: LinkOptions): void {
    this.defaults = checkLink(options)
  }

  /**
   * Carries one message from `from` to `to`: dropped across a cut, or by the link's loss,
   * else `deliver` runs after the link's delay — always asynchronously.
   */
  send(from: MemoryTransport, to: string, deliver: (target: MemoryTransport) => void): boolean {
    if (!this.reachable(from.nodeId, to)) return false
    const held = this.paused.get(from.nodeId)
    if (held !== undefined) {
      // Nothing leaves a paused node: it goes out, through the links of that time, on resume.
      held.outbox.push(() => {
        this.send(from, to, deliver)
      })
      return true
    }
    // We gave up on a paused node and hung up on it: nothing to send on.
    if (this.silent.get(dirKey(from.nodeId, to)) === 'paused') return false
    // Dropped on a one-way cut; the sender cannot tell.
    if (this.oneWay.has(dirKey(from.nodeId, to))) return true
    const own = this.links.get(pairKey(from.nodeId, to))
    const link = { loss: own?.loss ?? this.defaults.loss, delay: own?.delay ?? this.defaults.delay }
    if (link.loss > 0 && this.random() < link.loss) {
      from.countLoss()
      return true
    }
    const run = () => {
      const target = this.members.get(to)
      if (target === undefined || !this.reachable(from.nodeId, to)) return
      if (this.oneWay.has(dirKey(from.nodeId, to))) return
      const pause = this.paused.get(to)
      if (pause === undefined) deliver(target)
      else
        pause.inbox.push(() => {
          if (this.members.get(to) === target) deliver(target)
        })
    }
    if (link.delay > 0) setTimeout(run, link.delay)
    else queueMicrotask(run)
    return true
  }
}

class MemoryTransport extends BaseTransport implements Transport {
  readonly nodeId: string
  readonly addresses: string[]

  constructor(
    private readonly network: Network,
    nodeId: string,
    /** Silence after which this node sees a peer it no longer hears down, ms. */
    readonly failureTimeout: number,
    options: ConstructorParameters<typeof BaseTransport>[0],
  ) {
    super(options)
    this.nodeId = nodeId
    this.addresses = [`/memory/${nodeId}`]
  }

  peerUp(nodeId: string): void {
    if (!this.network.enqueueFor(this.nodeId, () => this.markUp(nodeId))) this.markUp(nodeId)
  }

  /** `closed`: the peer closed the connection (it stopped, or hung up on this node); else silence. */
  peerDown(nodeId: string, reason: string, closed = reason === 'stopped'): void {
    if (!this.network.enqueueFor(this.nodeId, () => this.markDown(nodeId, reason, closed)))
      this.markDown(nodeId, reason, closed)
  }

  override stalled(ms: number): void {
    super.stalled(ms)
  }

  protected override unreachableReason(nodeId: string): string | undefined {
    return this.network.blockedReason(this.nodeId, nodeId)
  }

  countLoss(): void {
    this.counters.droppedLoss++
  }

  protected sendBatch(topic: string, payloads: Uint8Array[]): void {
    for (const peer of this.network.allMembers()) {
      if (peer === this || !peer.subscriptions.has(topic)) continue
      this.network.send(this, peer.nodeId, (target) => {
        for (const p of payloads) target.deliver(topic, copyBytes(p), this.nodeId)
      })
    }
  }

  protected topicSubscribed(): void {}
  protected topicUnsubscribed(): void {}

  protected async sendRequest(nodeId: string, id: number, protocol: string, data: Uint8Array): Promise<void> {
    const copy = copyBytes(data)
    const sent = this.network.send(this, nodeId, (target) => {
      void target.answer(this.nodeId, id, protocol, copy)
    })
    if (!sent) throw new PeerUnreachableError(nodeId)
  }

  private async answer(from: string, id: number, protocol: string, data: Uint8Array): Promise<void> {
    const result = await this.runHandler(protocol, data, from)
    const reply: HandlerResult = result.ok ? { ok: true, data: copyBytes(result.data) } : result
    this.network.send(this, from, (caller) => caller.settle(this.nodeId, id, reply))
  }

  protected async close(): Promise<void> {
    this.network.leave(this)
  }
}

/**
 * Creates an in-process network for fast, deterministic tests of the layers above the
 * transport.
 *
 * @example
 * ```ts
 * const net = createMemoryNetwork({ seed: 42 })
 * const a = await net.createTransport()
 * const b = await net.createTransport()
 * net.setLink(a.nodeId, b.nodeId, { loss: 0.1, delay: 5 })
 * net.partition([a.nodeId], [b.nodeId])   // a and b see each other down now
 * net.heal()                                // and up again
 * ```
 */
export function createMemoryNetwork(options: MemoryNetworkOptions = {}): MemoryNetwork {
  return new Network(options)
}
