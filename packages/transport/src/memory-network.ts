import { BaseTransport, type HandlerResult } from './base-transport.js'
import { copyBytes } from './codec.js'
import { InvalidOptionsError, PeerUnreachableError } from './errors.js'
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
 * be cut, delayed and made lossy — deterministically under a seed.
 *
 * Liveness: two members are up for each other while both run and no partition separates
 * them. `partition()` takes peers across the cut down at once (the `peer:down` events follow
 * in a microtask, not after a failure timeout); `heal()` brings them up at once. Loss and
 * delay never change liveness, only whether and when messages arrive.
 */
export interface MemoryNetwork {
  /** The seed of the loss PRNG (print it to replay a failing test). */
  readonly seed: number
  /** Ids of the running members. */
  readonly nodeIds: string[]
  /** Creates and joins a new member; it is up with every reachable member when this resolves. */
  createTransport(init?: MemoryTransportInit): Promise<Transport>
  /** Cuts every link between a node of `a` and a node of `b` (cuts accumulate until heal()). */
  partition(a: string[], b: string[]): void
  /** Removes every cut. */
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

class Network implements MemoryNetwork {
  readonly seed: number
  private readonly random: () => number
  private readonly members = new Map<string, MemoryTransport>()
  private readonly cuts = new Set<string>()
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
    const t = new MemoryTransport(this, nodeId, {
      maxMessageBytes: options.maxMessageBytes,
      requestTimeout: options.requestTimeout,
      log: init.log ?? defaultLog(`memory:${nodeId}`),
    })
    this.members.set(nodeId, t)
    for (const other of this.members.values()) {
      if (other !== t && this.reachable(nodeId, other.nodeId)) {
        other.peerUp(nodeId)
        t.peerUp(other.nodeId)
      }
    }
    await Promise.resolve()
    return t
  }

  leave(t: MemoryTransport): void {
    if (this.members.get(t.nodeId) !== t) return
    this.members.delete(t.nodeId)
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

  heal(): void {
    const cut = [...this.cuts]
    this.cuts.clear()
    for (const key of cut) {
      const [a, b] = key.split('\u0000') as [string, string]
      const ta = this.members.get(a)
      const tb = this.members.get(b)
      if (ta !== undefined && tb !== undefined) {
        ta.peerUp(b)
        tb.peerUp(a)
      }
    }
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
    const own = this.links.get(pairKey(from.nodeId, to))
    const link = { loss: own?.loss ?? this.defaults.loss, delay: own?.delay ?? this.defaults.delay }
    if (link.loss > 0 && this.random() < link.loss) {
      from.countLoss()
      return true
    }
    const run = () => {
      const target = this.members.get(to)
      if (target !== undefined && this.reachable(from.nodeId, to)) deliver(target)
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
    options: ConstructorParameters<typeof BaseTransport>[0],
  ) {
    super(options)
    this.nodeId = nodeId
    this.addresses = [`/memory/${nodeId}`]
  }

  peerUp(nodeId: string): void {
    this.markUp(nodeId)
  }

  peerDown(nodeId: string, reason: string): void {
    this.markDown(nodeId, reason)
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
