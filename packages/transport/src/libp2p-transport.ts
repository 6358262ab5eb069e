import type { GossipSub } from '@libp2p/gossipsub'
import type { Libp2p, PeerId, Stream } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { Libp2pOptions } from 'libp2p'
import type { Uint8ArrayList } from 'uint8arraylist'
import { BaseTransport } from './base-transport.js'
import {
  ADDRS_PER_PEER,
  copyBytes,
  decodeBatch,
  decodeFrame,
  encodeBatch,
  encodeError,
  encodePeerFrames,
  encodePeers,
  encodePublish,
  encodeRequest,
  encodeResponse,
  encodeTopics,
  FRAME_ERROR,
  FRAME_HEARTBEAT,
  FRAME_OVERHEAD,
  FRAME_PEERS,
  FRAME_PUBLISH,
  FRAME_REQUEST,
  FRAME_RESPONSE,
  FRAME_TOPICS,
  FrameDecoder,
  HEARTBEAT_FRAME,
  OversizeError,
  PEERS_PER_FRAME,
} from './codec.js'
import { InvalidOptionsError, PeerIdMismatchError, PeerUnreachableError } from './errors.js'
import { loadIdentity } from './identity.js'
import { defaultLog } from './log.js'
import { fastX25519, type X25519Stats } from './noise-crypto.js'
import {
  type BootstrapEntry,
  type LogFn,
  type ResolvedOptions,
  type ResolveHost,
  resolveOptions,
  type TransportInit,
} from './options.js'
import { Redial, type RedialContext, redialDelay } from './redial.js'
import type { Transport } from './transport.js'
import { Tuner, type TuningStats } from './tuning.js'

/** The libp2p protocol of our request/response and heartbeat streams. */
export const RPC_PROTOCOL = '/nact-horde/transport/1.0.0'
/** Prefix of the gossipsub topics that carry user topics. */
export const TOPIC_PREFIX = 'nact-horde/topic/'
/** The gossipsub topic of pubsub peer discovery (pubsub 'gossipsub' only). */
export const DISCOVERY_TOPIC = 'nact-horde/peer-discovery/1'
/**
 * Ms between a node's pubsub discovery announcements (pubsub 'gossipsub' only). Peers learn of
 * each other when they connect (each newly up peer is told of the others, and they of it), and
 * the peer-list repair (option `peerRepairInterval`) fills what that missed in either mode: the
 * broadcast only adds to it.
 */
export const DISCOVERY_INTERVAL = 10_000

/**
 * Dials of one discovered peer before it is given up until it is discovered again (the
 * failures back off from 200 ms, with jitter: about 6 s of waits in all).
 */
export const DISCOVERED_DIAL_ATTEMPTS = 6
export { PEERS_PER_FRAME }

/** One of our framed streams to a peer (either direction). */
class Channel {
  private readonly queue: Uint8Array[] = []
  private draining = false
  private readonly decoder: FrameDecoder

  constructor(
    readonly stream: Stream,
    readonly peerId: PeerId,
    readonly peer: string,
    private readonly owner: Libp2pTransport,
  ) {
    this.decoder = new FrameDecoder(owner.maxFrame)
    owner.tuner.stream(stream)
    stream.addEventListener('message', (event) => this.onData(event.data))
    stream.addEventListener('close', () => owner.channelClosed(this))
    // A stream the peer reset before this channel listened fires no 'close' event: without
    // this, an outbound channel would stay the peer's, dead, and never be reopened.
    if (stream.status !== 'open') queueMicrotask(() => owner.channelClosed(this))
  }

  get open(): boolean {
    return this.stream.status === 'open' && this.stream.writeStatus === 'writable'
  }

  send(frame: Uint8Array): boolean {
    if (!this.open) return false
    if (this.queue.length > 0 || this.stream.writableNeedsDrain) {
      this.queue.push(frame)
      this.drain()
      return true
    }
    try {
      this.stream.send(frame)
      return true
    } catch (err) {
      this.owner.logError('send to %s failed: %o', this.peer, err)
      return false
    }
  }

  private drain(): void {
    if (this.draining) return
    this.draining = true
    const flush = () => {
      this.draining = false
      while (this.queue.length > 0 && this.open && !this.stream.writableNeedsDrain) {
        this.stream.send(this.queue.shift()!)
      }
      if (this.queue.length > 0 && this.open) this.drain()
    }
    if (!this.stream.writableNeedsDrain) {
      // Nothing to wait for; flush on the next turn of the event loop, never in a microtask
      // chain that could starve it.
      setImmediate(flush)
      return
    }
    // Wait for the stream's 'drain' event itself: libp2p's onDrain() keeps returning the
    // promise it made for the first drain, already resolved, so awaiting it again while the
    // stream still needs a drain spun this loop forever in microtasks and froze the process.
    const onDrain = () => {
      this.stream.removeEventListener('close', onClose)
      flush()
    }
    const onClose = () => {
      this.stream.removeEventListener('drain', onDrain)
      this.draining = false
      this.queue.length = 0
    }
    this.stream.addEventListener('drain', onDrain, { once: true })
    this.stream.addEventListener('close', onClose, { once: true })
  }

  private onData(chunk: Uint8Array | Uint8ArrayList): void {
    let bodies: Uint8Array[]
    try {
      bodies = this.decoder.push(chunk)
    } catch (err) {
      // The framing is broken: nothing after this point can be trusted.
      this.owner.refused(err instanceof OversizeError ? 'oversize' : 'malformed', this.peer, err)
      this.stream.abort(err instanceof Error ? err : new Error(String(err)))
      return
    }
    for (const body of bodies) this.owner.onFrame(this, body)
  }
}

interface Session {
  /** Our outbound channel, once opened (or being opened). */
  out: Promise<Channel> | undefined
  /** The same channel once it is open, for sending without waiting on a promise. */
  ready: Channel | undefined
  channels: Set<Channel>
  /** When a frame last arrived from the peer (`performance.now()`: immune to wall-clock jumps). */
  lastSeen: number
  /** The topics the peer last announced it subscribes to (pubsub 'direct'). */
  topics: Set<string>
}

/** A discovered peer this node dials until it is connected (not yet a member). */
interface Discovered {
  peerId: PeerId
  /** Failed dials so far. */
  attempts: number
  /** A dial of it is under way. */
  dialling: boolean
  /** Cancels the wait before its next dial (the tie-break, or the backoff after a failure). */
  cancel: (() => void) | undefined
  /** The addresses last merged into the peer store, joined: merged again only when they change. */
  addrs: string
}

/** A member we keep connected to, redialled at its last known addresses. */
interface Known {
  peerId: PeerId
  redial: Redial
}

/** Whether a dial failed because the node at the address is not the one its `/p2p/` part named. */
function isUnexpectedPeer(err: unknown): boolean {
  const e = err as { name?: string; message?: string; errors?: unknown[] } | undefined
  if (e?.name === 'UnexpectedPeerError' || /unexpected peer|does not match expected/i.test(e?.message ?? ''))
    return true
  return Array.isArray(e?.errors) && e.errors.some(isUnexpectedPeer)
}

/** One address a bootstrap entry stands for (itself, or one of what its DNS name resolves to). */
interface Target {
  entry: BootstrapEntry
  /** The address dialled, without `/p2p/`. */
  dialled: string
  /** The node that answered there last (learned on connect). */
  peer: string | undefined
  redial: Redial
}

type Modules = {
  peerIdFromString: (s: string) => PeerId
  multiaddr: (s: string) => Multiaddr
  /** yamux's `StreamState.Established`, for the stream tuning. */
  yamuxEstablished: number
  /** What noise's X25519 did with key objects (see noise-crypto.ts). */
  x25519: X25519Stats
}

/** @internal the libp2p implementation of {@link Transport}. */
export class Libp2pTransport extends BaseTransport implements Transport {
  readonly nodeId: string
  readonly maxFrame: number
  readonly tuner: Tuner
  private readonly sessions = new Map<string, Session>()
  private readonly known = new Map<string, Known>()
  private readonly targets = new Map<string, Target>()
  /** Discovered peers being dialled, queued, or waiting to be dialled again. */
  private readonly discoveredPeers = new Map<string, Discovered>()
  /** Discovered peers waiting for a dial slot, in order. */
  private readonly dialQueue: Discovered[] = []
  /** Dials of discovered peers in flight. */
  private dialsInFlight = 0
  private readonly listenAddrs = new Map<string, string[]>()
  /**
   * Peers another node introduced to this one (a peer-exchange frame) and not up yet, with
   * when (performance.now()): one that comes up within `heardFor` of it was introduced to the
   * others already (see maybeIntroduce).
   */
  private readonly heard = new Map<string, number>()
  /** Peers identified (their listen addresses fresh) since they last went down. */
  private readonly identified = new Set<string>()
  /** Up peers told of this node's other peers since they came up. */
  private readonly listed = new Set<string>()
  /** Up peers whose introduction to the others was decided (made or skipped) since they came up. */
  private readonly introduced = new Set<string>()
  private resolveTimer: ReturnType<typeof setInterval> | undefined
  private readonly redialContext: RedialContext
  private readonly peerIds = new Map<string, PeerId>()
  private readonly timers = new Set<ReturnType<typeof setTimeout>>()
  private heartbeatTimer: ReturnType<typeof setInterval> | undefined
  private checkTimer: ReturnType<typeof setInterval> | undefined
  /** How often the silence check runs, ms. */
  private readonly checkInterval: number
  /** How late the silence check may fire before it counts as a stall of the event loop, ms. */
  private readonly stallThreshold: number

  constructor(
    private readonly node: Libp2p<{ pubsub?: GossipSub }>,
    private readonly options: ResolvedOptions,
    log: LogFn,
    private readonly modules: Modules,
  ) {
    super({ maxMessageBytes: options.maxMessageBytes, requestTimeout: options.requestTimeout, log })
    this.nodeId = node.peerId.toString()
    this.maxFrame = options.maxMessageBytes + FRAME_OVERHEAD
    this.tuner = new Tuner(modules.yamuxEstablished)
    // A stall the watch misses (up to threshold + interval = 3/8 failureTimeout), on top of a
    // heartbeat interval of silence (at most failureTimeout / 2), stays below failureTimeout:
    // so a stall is either detected and forgiven, or too short to make a live peer look dead.
    this.checkInterval = Math.max(
      10,
      Math.min(options.heartbeatInterval, Math.floor(options.failureTimeout / 8)),
    )
    this.stallThreshold = options.failureTimeout / 4
    this.redialContext = {
      cap: options.redialMaxDelay,
      dialTimeout: options.dialTimeout,
      later: (ms, fn) => {
        const timer = this.later(ms, fn)
        return () => {
          clearTimeout(timer)
          this.timers.delete(timer)
        }
      },
      random: Math.random,
      now: () => performance.now(),
    }
  }

  /** What the per-connection tuning did (see tuning.ts, noise-crypto.ts); for tests. */
  tuning(): TuningStats & { x25519: X25519Stats } {
    return { ...this.tuner.stats, x25519: { ...this.modules.x25519 } }
  }

  get addresses(): string[] {
    return this.node.getMultiaddrs().map((a) => a.toString())
  }

  logError(formatter: string, ...args: unknown[]): void {
    this.log(formatter, ...args)
  }

  async start(): Promise<void> {
    const node = this.node
    await node.handle(RPC_PROTOCOL, (stream, connection) => this.accept(stream, connection.remotePeer), {
      maxInboundStreams: 16,
      maxOutboundStreams: 16,
    })
    node.addEventListener('connection:open', (e) => this.tuner.connection(e.detail))
    node.addEventListener('peer:connect', (e) => this.onConnect(e.detail))
    node.addEventListener('peer:disconnect', (e) => this.onDisconnect(e.detail))
    node.addEventListener('peer:discovery', (e) => {
      this.discovered(e.detail.id, e.detail.multiaddrs)
    })
    node.addEventListener('peer:identify', (e) => {
      const { peerId, protocols, listenAddrs } = e.detail
      if (!protocols.includes(RPC_PROTOCOL)) return
      const id = peerId.toString()
      this.listenAddrs.set(
        id,
        listenAddrs.map((a) => a.toString()),
      )
      this.identified.add(id)
      this.maybeIntroduce(id)
    })
    node.services.pubsub?.addEventListener('message', (e) => {
      const msg = e.detail
      if (!msg.topic.startsWith(TOPIC_PREFIX)) return
      const topic = msg.topic.slice(TOPIC_PREFIX.length)
      const from = msg.type === 'signed' ? msg.from.toString() : 'unknown'
      this.deliverBatch(topic, msg.data, from, false)
    })
    await node.start()
    this.heartbeatTimer = setInterval(() => this.heartbeat(), this.options.heartbeatInterval)
    this.watchTick(performance.now(), this.checkInterval, this.stallThreshold)
    this.checkTimer = setInterval(() => this.checkSilence(), this.checkInterval)
    this.scheduleRepair()
    this.log('started %s on %o', this.nodeId, this.addresses)
    // A bootstrap address that names its node: known at once, so a request to that node can
    // dial it before the bootstrap dial has finished.
    for (const e of this.options.bootstrap) {
      if (
        e.expected === undefined ||
        e.expected === this.nodeId ||
        !(e.protocol === 'ip4' || e.protocol === 'ip6')
      )
        continue
      try {
        await node.peerStore.merge(this.peerIdOf(e.expected), {
          multiaddrs: [this.modules.multiaddr(`/${e.protocol}/${e.host}/tcp/${e.port}`)],
        })
      } catch (err) {
        this.log('cannot record bootstrap address %s: %s', e.address, (err as Error)?.message)
      }
    }
    if (this.options.bootstrap.length > 0) {
      void this.resolveBootstrap()
      if (this.options.bootstrap.some((e) => e.protocol.startsWith('dns'))) {
        this.resolveTimer = setInterval(() => void this.resolveBootstrap(), this.options.resolveInterval)
      }
    }
  }

  // ---- bootstrap ----------------------------------------------------------------------

  /**
   * Turns the bootstrap entries into dial targets: an IP address is one, a DNS name is one
   * per address it resolves to now. Targets a name no longer resolves to are dropped (their
   * members, once known, are still redialled at their own addresses); new ones dialled at once.
   */
  private async resolveBootstrap(): Promise<void> {
    const wanted = new Map<string, BootstrapEntry>()
    const resolved = new Set<BootstrapEntry>()
    await Promise.all(
      this.options.bootstrap.map(async (entry) => {
        try {
          for (const addr of await this.resolveEntry(entry)) wanted.set(addr, entry)
          resolved.add(entry)
        } catch (err) {
          this.log(
            'cannot resolve %s: %s (retrying in %d ms)',
            entry.address,
            (err as Error)?.message,
            this.options.resolveInterval,
          )
        }
      }),
    )
    if (this.stopped) return
    for (const [addr, target] of this.targets) {
      // A name that failed to resolve keeps its previous targets.
      if (!wanted.has(addr) && resolved.has(target.entry)) {
        target.redial.close()
        this.targets.delete(addr)
        this.log('bootstrap %s no longer resolves to %s', target.entry.address, addr)
      }
    }
    for (const [addr, entry] of wanted) {
      if (this.targets.has(addr)) continue
      const target: Target = {
        entry,
        dialled: addr,
        peer: undefined,
        redial: new Redial(
          this.redialContext,
          (signal) => this.dialTarget(target, signal),
          () => target.peer !== undefined && this.connected(this.peerIdOf(target.peer)),
        ),
      }
      this.targets.set(addr, target)
      target.redial.kick()
    }
  }

  private async resolveEntry(entry: BootstrapEntry): Promise<string[]> {
    const { protocol, host, port } = entry
    if (protocol === 'ip4' || protocol === 'ip6') return [`/${protocol}/${host}/tcp/${port}`]
    const family = protocol === 'dns4' ? 4 : protocol === 'dns6' ? 6 : 0
    const ips = await (this.options.resolveHost ?? defaultResolveHost)(host, family)
    return ips.map((ip) => `/${ip.includes(':') ? 'ip6' : 'ip4'}/${ip}/tcp/${port}`)
  }

  private async dialTarget(target: Target, signal: AbortSignal): Promise<void> {
    if (this.stopped) return
    // An address that names its node is dialled by that name too, so libp2p merges this dial
    // with any other to the same node (a request made right after start) instead of racing it.
    const { expected, protocol } = target.entry
    const named = expected !== undefined && (protocol === 'ip4' || protocol === 'ip6')
    let connection: Awaited<ReturnType<typeof this.node.dial>>
    try {
      const addr = named ? `${target.dialled}/p2p/${expected}` : target.dialled
      connection = await this.node.dial(this.modules.multiaddr(addr), { signal })
    } catch (err) {
      // Another node answers there: dial the bare address, so the connection gater names the
      // mismatch (refuseOutbound) instead of a handshake error nobody reads.
      if (!named || !isUnexpectedPeer(err)) throw err
      connection = await this.node.dial(this.modules.multiaddr(target.dialled), { signal })
    }
    const peer = connection.remotePeer.toString()
    target.peer = peer === this.nodeId ? undefined : peer
    if (peer === this.nodeId) {
      // Our own address (a seed listed in its own bootstrap list): nothing to join.
      target.redial.close()
      this.targets.delete(target.dialled)
    }
  }

  /**
   * libp2p's connection gater, after the handshake of an outbound connection: refuses a
   * bootstrap address's connection whose node is not the one its `/p2p/` part names.
   */
  refuseOutbound(peerId: PeerId, remoteAddr: Multiaddr): boolean {
    const dialled = stripPeer(remoteAddr.toString())
    const target = this.targets.get(dialled)
    const actual = peerId.toString()
    const expected = target?.entry.expected
    if (target === undefined || expected === undefined || expected === actual) return false
    const error = new PeerIdMismatchError(target.entry.address, expected, actual)
    this.counters.peerIdMismatches++
    this.log('refused %s: %s', dialled, error.message)
    const detail = { address: target.entry.address, dialled, expected, actual, error }
    queueMicrotask(() => {
      if (!this.stopped) this.dispatchEvent(new CustomEvent('peer:mismatch', { detail }))
    })
    return true
  }

  // ---- connections, discovery, redial ----------------------------------------------

  private later(ms: number, fn: () => void): ReturnType<typeof setTimeout> {
    const timer = setTimeout(() => {
      this.timers.delete(timer)
      if (!this.stopped) fn()
    }, ms)
    this.timers.add(timer)
    return timer
  }

  /** The PeerId of a node id, parsed once (parsing a base58 id costs ~15 µs; requests are per message). */
  private peerIdOf(id: string): PeerId {
    let peerId = this.peerIds.get(id)
    if (peerId === undefined) {
      peerId = this.modules.peerIdFromString(id)
      if (this.peerIds.size >= 4096) this.peerIds.clear()
      this.peerIds.set(id, peerId)
    }
    return peerId
  }

  private connected(peerId: PeerId): boolean {
    return this.node.getConnections(peerId).length > 0
  }

  /**
   * Starts queued dials of discovered peers while fewer than `maxParallelDials` are in flight.
   * Each dial's `dialTimeout` counts from its start, not from when it was queued: on a starved
   * host, two dozen handshakes at once all ran past the timeout together, were aborted near
   * their end and were started again, so the mesh never formed faster than the CPU let the
   * whole batch finish within one timeout.
   */
  private pumpDials(): void {
    while (this.dialsInFlight < this.options.maxParallelDials && this.dialQueue.length > 0) {
      const d = this.dialQueue.shift()!
      // Settled (connected) or replaced while it waited: skipped here, not searched for then.
      if (this.discoveredPeers.get(d.peerId.toString()) !== d) continue
      if (this.stopped || this.connected(d.peerId)) {
        this.discoveredPeers.delete(d.peerId.toString())
        continue
      }
      this.dialsInFlight++
      d.dialling = true
      const id = d.peerId.toString()
      const started = performance.now()
      this.node.dial(d.peerId, { signal: AbortSignal.timeout(this.options.dialTimeout) }).then(
        () => {
          this.log('dialled %s in %d ms', id, Math.round(performance.now() - started))
          this.dialDone(d, true)
        },
        (err: unknown) => {
          this.log(
            'dial %s failed after %d ms (attempt %d): %s',
            id,
            Math.round(performance.now() - started),
            d.attempts + 1,
            (err as Error)?.message,
          )
          this.known.get(id)?.redial.lost()
          this.dialDone(d, false)
        },
      )
    }
  }

  private dialDone(d: Discovered, ok: boolean): void {
    this.dialsInFlight--
    d.dialling = false
    const id = d.peerId.toString()
    if (this.discoveredPeers.get(id) === d) {
      if (ok || this.stopped || this.connected(d.peerId) || ++d.attempts >= DISCOVERED_DIAL_ATTEMPTS) {
        // Connected, or given up: a later discovery of it (a peer exchange, an announcement)
        // starts over.
        this.discoveredPeers.delete(id)
      } else {
        // Soon again, with jitter, rather than at the next announcement 10 s away.
        this.waitThenDial(d, redialDelay(d.attempts - 1, this.options.redialMaxDelay, Math.random()))
      }
    }
    if (!this.stopped) this.pumpDials()
  }

  private waitThenDial(d: Discovered, ms: number): void {
    const timer = this.later(ms, () => {
      d.cancel = undefined
      if (this.discoveredPeers.get(d.peerId.toString()) !== d) return
      if (this.connected(d.peerId)) {
        this.discoveredPeers.delete(d.peerId.toString())
        return
      }
      this.dialQueue.push(d)
      this.pumpDials()
    })
    d.cancel = () => {
      clearTimeout(timer)
      this.timers.delete(timer)
    }
  }

  /**
   * A member: kept connected for as long as this node runs, redialled with capped backoff at
   * its last known addresses whenever it drops — never given up on, so a partition of any
   * length heals.
   */
  private remember(peerId: PeerId): void {
    const id = peerId.toString()
    if (this.known.has(id)) return
    this.known.set(id, {
      peerId,
      redial: new Redial(
        this.redialContext,
        (signal) => this.dialMember(peerId, signal),
        () => this.connected(peerId),
      ),
    })
  }

  private async dialMember(peerId: PeerId, signal: AbortSignal): Promise<void> {
    const id = peerId.toString()
    // A bootstrap address that answered with this node redials it itself (and learns a new id
    // if the node comes back with one): one dialler per link.
    for (const t of this.targets.values()) {
      if (t.peer === id) throw new Error('redialled through its bootstrap address')
    }
    const addrs = (this.listenAddrs.get(id) ?? []).map((a) =>
      this.modules.multiaddr(`${stripPeer(a)}/p2p/${id}`),
    )
    try {
      await this.node.dial(addrs.length > 0 ? addrs : peerId, { signal })
    } catch (err) {
      this.log('redial %s failed: %s', id, (err as Error)?.message)
      throw err
    }
  }

  /**
   * A peer learned of (peer exchange, pubsub announcement, mDNS): dialled until connected, at
   * most `maxParallelDials` dials at a time, each peer once at a time however often it is
   * announced meanwhile; a failed dial is retried with backoff up to
   * {@link DISCOVERED_DIAL_ATTEMPTS} times.
   */
  private discovered(peerId: PeerId, addrs: Multiaddr[]): void {
    const id = peerId.toString()
    if (this.stopped || id === this.nodeId || this.connected(peerId)) return
    const key = addrs.map((a) => a.toString()).join(' ')
    let d = this.discoveredPeers.get(id)
    const merge =
      addrs.length > 0 && d?.addrs !== key
        ? this.node.peerStore.merge(peerId, { multiaddrs: addrs }).then(
            () => {},
            () => {},
          )
        : undefined
    if (d !== undefined) {
      // Already being dialled, queued or waiting: its next dial reads the merged addresses.
      if (addrs.length > 0) d.addrs = key
      return
    }
    d = { peerId, attempts: 0, dialling: false, cancel: undefined, addrs: key }
    this.discoveredPeers.set(id, d)
    // Tie-break so two peers that discover each other (a peer exchange tells both at once) do
    // not both dial and both pay for a handshake: one dials now, the other only if still
    // unconnected once that dial has had its full dialTimeout (plus jitter).
    const wait = dialsFirst(this.nodeId, id) ? 0 : this.options.dialTimeout * (1 + Math.random() / 4)
    const entry = d
    const go = () => {
      // The merge may settle after stop(): no timer may be left behind then.
      if (!this.stopped) this.waitThenDial(entry, wait)
    }
    if (merge === undefined) go()
    else void merge.then(go)
  }

  /** Forgets the pending dial of a peer that connected (either side dialled). */
  private settleDiscovered(id: string): void {
    const d = this.discoveredPeers.get(id)
    if (d === undefined || d.dialling) return
    d.cancel?.()
    d.cancel = undefined
    // A queue entry of it is skipped when its turn comes (see pumpDials).
    this.discoveredPeers.delete(id)
  }

  private onConnect(peerId: PeerId): void {
    const id = peerId.toString()
    this.settleDiscovered(id)
    this.known.get(id)?.redial.connected()
    for (const t of this.targets.values()) if (t.peer === id) t.redial.connected()
    this.outbound(peerId).catch((err: unknown) => {
      this.log('%s does not speak %s: %s', id, RPC_PROTOCOL, (err as Error)?.message)
    })
  }

  /** Ms of silence after which a peer is reported down. */
  get failureTimeout(): number {
    return this.options.failureTimeout
  }

  private onDisconnect(peerId: PeerId): void {
    const id = peerId.toString()
    const session = this.sessions.get(id)
    this.sessions.delete(id)
    if (session !== undefined) for (const c of session.channels) c.stream.abort(new Error('disconnected'))
    this.markDown(id, 'disconnected', true)
    this.known.get(id)?.redial.lost()
    for (const t of this.targets.values()) if (t.peer === id) t.redial.lost()
  }

  private session(id: string): Session {
    let s = this.sessions.get(id)
    if (s === undefined) {
      s = {
        out: undefined,
        ready: undefined,
        channels: new Set(),
        lastSeen: performance.now(),
        topics: new Set(),
      }
      this.sessions.set(id, s)
    }
    return s
  }

  /** Our long-lived outbound stream to `peerId`, opened once and reused. */
  private outbound(peerId: PeerId): Promise<Channel> {
    const id = peerId.toString()
    const s = this.session(id)
    if (s.out !== undefined) return s.out
    const opening: Promise<Channel> = this.node
      .dialProtocol(peerId, RPC_PROTOCOL, { signal: AbortSignal.timeout(this.options.dialTimeout) })
      .then((stream) => {
        const channel = this.attach(stream, peerId)
        channel.send(HEARTBEAT_FRAME)
        // Tell the peer what to send us directly (a fresh stream may be a fresh peer).
        if (this.direct && this.subscriptions.size > 0) channel.send(this.topicsFrame())
        if (s.out === opening) s.ready = channel
        return channel
      })
    s.out = opening
    opening.catch(() => {
      if (this.sessions.get(id)?.out === opening) this.sessions.get(id)!.out = undefined
    })
    return opening
  }

  private accept(stream: Stream, peerId: PeerId): void {
    if (this.stopped) {
      stream.abort(new Error('stopping'))
      return
    }
    this.attach(stream, peerId)
  }

  private attach(stream: Stream, peerId: PeerId): Channel {
    const channel = new Channel(stream, peerId, peerId.toString(), this)
    this.session(channel.peer).channels.add(channel)
    return channel
  }

  channelClosed(channel: Channel): void {
    const s = this.sessions.get(channel.peer)
    if (s === undefined) return
    s.channels.delete(channel)
    if (s.ready === channel) s.ready = undefined
    if (s.out !== undefined) {
      // Forget a closed outbound channel so the next send reopens one.
      s.out.then(
        (c) => {
          if (c === channel && this.sessions.get(channel.peer) === s) s.out = undefined
        },
        () => {},
      )
    }
  }

  /**
   * Peer exchange, once per time a peer comes up. The peer is told of this node's other peers
   * (one frame, or more past PEERS_PER_FRAME peers or maxMessageBytes) as soon as it is up.
   * The others are told of it (a frame each) once it is identified on this connection —
   * unless another node introduced it to this one shortly before: the node a newcomer reaches
   * first (its seed) has not heard of it and introduces it to all its peers, which then do not repeat that when the newcomer reaches them. Each node
   * introducing each peer it reached to all the others cost a forming mesh n³/2 frames, nearly
   * all telling a node what it knew; the lists a newcomer receives from every node it reaches
   * are n² frames, and fill what its seed did not know (two meshes joining through a bridge).
   */
  private maybeIntroduce(id: string): void {
    if (!this.upPeers.has(id)) return
    if (!this.listed.has(id)) {
      this.listed.add(id)
      const others = this.addressedPeers().filter((p) => p !== id)
      // In frames the newcomer reads whole: at most PEERS_PER_FRAME peers, within its message size.
      for (const frame of encodePeerFrames(this.withAddresses(others), this.maxMessageBytes)) {
        this.counters.introductions++
        void this.sendTo(id, frame)
      }
    }
    if (!this.identified.has(id) || this.introduced.has(id)) return
    this.introduced.add(id)
    const heardAt = this.heard.get(id)
    this.heard.delete(id)
    if (heardAt !== undefined && performance.now() - heardAt <= this.heardFor) return
    const addrs = this.listenAddrs.get(id)
    if (addrs === undefined || addrs.length === 0) return
    const frame = encodePeers([{ id, addrs }])
    for (const p of this.upPeers) {
      if (p === id || !this.listenAddrs.has(p)) continue
      this.counters.introductions++
      void this.sendTo(p, frame)
    }
  }

  /**
   * The peer-list repair: every `peerRepairInterval` (jittered), this node's peers (at most
   * {@link PEERS_PER_FRAME}, picked at random) to one up peer picked at random — one frame per
   * node per interval (more only where maxMessageBytes is too small for the list), so a
   * cluster pays n frames where a broadcast cost n². A peer missed by
   * the exchange on connecting (a link refused then, two meshes joined through a node that has
   * since gone) is learned of within a few intervals, hop by hop.
   */
  private scheduleRepair(): void {
    this.later(this.options.peerRepairInterval * (0.75 + Math.random() / 2), () => {
      this.repairPeers()
      this.scheduleRepair()
    })
  }

  private repairPeers(): void {
    const up = this.addressedPeers()
    if (up.length < 2) return
    const to = up.splice(Math.floor(Math.random() * up.length), 1)[0]!
    this.counters.peerRepairs++
    for (const frame of encodePeerFrames(
      this.withAddresses(sample(up, PEERS_PER_FRAME)),
      this.maxMessageBytes,
    ))
      void this.sendTo(to, frame)
  }

  /** The up peers whose listen addresses this node knows (identify told them): those peer exchange can name. */
  private addressedPeers(): string[] {
    return [...this.upPeers].filter((p) => this.listenAddrs.has(p))
  }

  /**
   * `ids` (from addressedPeers) with their listen addresses, as a peer-exchange frame lists
   * them: at most ADDRS_PER_PEER each, the most a receiver reads (identify does not bound them).
   */
  private withAddresses(ids: string[]): Array<{ id: string; addrs: string[] }> {
    return ids.map((p) => ({ id: p, addrs: this.listenAddrs.get(p)!.slice(0, ADDRS_PER_PEER) }))
  }

  /**
   * How long an introduction received means that its peer was introduced to the others: long
   * enough for the dials it starts (queued, with tie-break waits, on a loaded host).
   */
  private get heardFor(): number {
    return 4 * this.options.dialTimeout
  }

  /** A peer down (or disconnected before it was up) is forgotten by peer exchange too. */
  protected override markDown(nodeId: string, reason: string, closed = false): boolean {
    this.identified.delete(nodeId)
    this.listed.delete(nodeId)
    this.introduced.delete(nodeId)
    return super.markDown(nodeId, reason, closed)
  }

  private async sendTo(id: string, frame: Uint8Array): Promise<boolean> {
    try {
      const channel = await this.outbound(this.peerIdOf(id))
      return channel.send(frame)
    } catch {
      return false
    }
  }

  // ---- liveness ---------------------------------------------------------------------

  private heartbeat(): void {
    for (const s of this.sessions.values()) {
      s.out?.then(
        (c) => c.send(HEARTBEAT_FRAME),
        () => {},
      )
    }
    // An up peer whose outbound stream closed or failed to open: reopen it, or it would
    // stop hearing from us and report us down.
    for (const id of this.upPeers) {
      const s = this.sessions.get(id)
      const c = s?.channels.values().next().value
      if (s !== undefined && s.out === undefined && c !== undefined) this.outbound(c.peerId).catch(() => {})
    }
    // A connected peer that speaks our protocol (identify said so) and is not up: the stream
    // each side opened on connecting failed (a protocol negotiation timed out on a starved host,
    // a stream reset). Nothing else would open another — the connection stays, so neither side
    // dials again — and the pair would never be up.
    for (const id of this.identified) {
      if (this.upPeers.has(id) || this.sessions.get(id)?.out !== undefined) continue
      const peerId = this.peerIdOf(id)
      if (this.connected(peerId)) this.outbound(peerId).catch(() => {})
    }
  }

  private checkSilence(): void {
    const now = performance.now()
    if (this.watchTick(now, this.checkInterval, this.stallThreshold) > 0) {
      // The event loop was blocked. What the peers sent meanwhile may still be unread (after a
      // busy block timers can run before that I/O): judging them now could find every one of
      // them silent. Each gets a fresh failureTimeout from the wake instead.
      for (const s of this.sessions.values()) if (s.lastSeen < now) s.lastSeen = now
      return
    }
    for (const id of [...this.upPeers]) {
      const s = this.sessions.get(id)
      if (s !== undefined && now - s.lastSeen <= this.options.failureTimeout) continue
      // Silent past the failure timeout (no TCP reset seen): down, and drop the connection
      // so a fresh one is dialled if it comes back.
      this.markDown(id, `silent for ${this.options.failureTimeout} ms`)
      this.sessions.delete(id)
      this.node.hangUp(this.peerIdOf(id)).catch(() => {})
    }
  }

  // ---- frames -------------------------------------------------------------------------

  refused(kind: 'oversize' | 'malformed', from: string, err: unknown): void {
    if (kind === 'oversize') this.counters.droppedOversize++
    else this.counters.droppedMalformed++
    this.log('dropped %s input from %s: %s', kind, from, (err as Error)?.message)
  }

  onFrame(channel: Channel, body: Uint8Array): void {
    let frame: ReturnType<typeof decodeFrame>
    try {
      frame = decodeFrame(body)
    } catch (err) {
      this.refused('malformed', channel.peer, err)
      return
    }
    const peer = channel.peer
    this.session(peer).lastSeen = performance.now()
    // Up = connected and speaking our protocol (this valid frame proves it).
    if (!this.upPeers.has(peer) && this.connected(channel.peerId) && this.markUp(peer)) {
      this.remember(channel.peerId)
      // Make sure we have our own channel to it too (for heartbeats and requests).
      this.outbound(channel.peerId).catch(() => {})
      // Identify may have finished before it was up.
      this.maybeIntroduce(peer)
    }
    switch (frame.type) {
      case FRAME_REQUEST: {
        if (frame.data.length > this.maxMessageBytes) {
          this.counters.droppedOversize++
          channel.send(encodeError(frame.id, 3, 'request exceeds maxMessageBytes'))
          return
        }
        const { id, protocol } = frame
        // Copy: the frame may share a buffer with what arrives next.
        void this.runHandler(protocol, copyBytes(frame.data), peer).then((result) => {
          if (this.stopped) return
          channel.send(
            result.ok ? encodeResponse(id, result.data) : encodeError(id, result.code, result.message),
          )
        })
        return
      }
      case FRAME_RESPONSE:
        this.settle(peer, frame.id, { ok: true, data: copyBytes(frame.data) })
        return
      case FRAME_ERROR:
        this.settle(peer, frame.id, { ok: false, code: frame.code, message: frame.message })
        return
      case FRAME_HEARTBEAT:
        return
      case FRAME_PUBLISH:
        // Copies: the frame may share a buffer with what arrives next.
        this.deliverBatch(frame.topic, frame.batch, peer, true)
        return
      case FRAME_TOPICS:
        this.session(peer).topics = new Set(frame.topics)
        return
      case FRAME_PEERS:
        for (const p of frame.peers.slice(0, PEERS_PER_FRAME)) {
          if (p.id !== this.nodeId && !this.upPeers.has(p.id)) {
            // Bounded: an id heard of and never up costs at most an introduction made twice.
            if (this.heard.size >= 4096) this.heard.clear()
            this.heard.set(p.id, performance.now())
          }
          try {
            this.discovered(
              this.peerIdOf(p.id),
              p.addrs.slice(0, ADDRS_PER_PEER).map((a) => this.modules.multiaddr(a)),
            )
          } catch (err) {
            this.refused('malformed', peer, err)
          }
        }
        return
    }
  }

  /** Hands each payload of a received batch to the topic's subscribers; a bad batch is dropped and counted. */
  private deliverBatch(topic: string, batch: Uint8Array, from: string, copy: boolean): void {
    let payloads: Uint8Array[]
    try {
      payloads = decodeBatch(batch, this.maxMessageBytes)
    } catch (err) {
      this.refused(err instanceof OversizeError ? 'oversize' : 'malformed', from, err)
      return
    }
    for (const p of payloads) this.deliver(topic, copy ? copyBytes(p) : p, from)
  }

  // ---- BaseTransport ------------------------------------------------------------------

  private get direct(): boolean {
    return this.options.pubsub === 'direct'
  }

  /** The gossipsub service, which runs with pubsub 'gossipsub' only. */
  private get gossipsub(): GossipSub {
    const pubsub = this.node.services.pubsub
    if (pubsub === undefined) throw new Error("gossipsub is not running: pubsub is 'direct'")
    return pubsub
  }

  private topicsFrame(): Uint8Array {
    return encodeTopics([...this.subscriptions.keys()])
  }

  protected sendBatch(topic: string, payloads: Uint8Array[]): void {
    if (this.direct) {
      // One frame, to every up peer that announced the topic, on the stream already open to it.
      const frame = encodePublish(topic, encodeBatch(payloads))
      for (const id of this.upPeers) {
        const s = this.sessions.get(id)
        if (s === undefined || !s.topics.has(topic)) continue
        if (s.ready?.send(frame)) continue
        void this.sendTo(id, frame)
      }
      return
    }
    this.gossipsub.publish(TOPIC_PREFIX + topic, encodeBatch(payloads)).catch((err: unknown) => {
      this.log('publish on %s failed: %s', topic, (err as Error)?.message)
    })
  }

  /**
   * Announces this node's topics on every open outbound stream. A stream still opening sends
   * the list current when it opens, and a peer without one gets it when it connects: never a
   * dial just for this.
   */
  private announceTopics(): void {
    const frame = this.topicsFrame()
    for (const s of this.sessions.values()) s.ready?.send(frame)
  }

  protected topicSubscribed(topic: string): void {
    if (this.direct) this.announceTopics()
    else this.gossipsub.subscribe(TOPIC_PREFIX + topic)
  }

  protected topicUnsubscribed(topic: string): void {
    if (this.direct) this.announceTopics()
    else this.gossipsub.unsubscribe(TOPIC_PREFIX + topic)
  }

  protected async sendRequest(nodeId: string, id: number, protocol: string, data: Uint8Array): Promise<void> {
    const frame = encodeRequest(id, protocol, data)
    // The common case: our stream to the peer is open; send without waiting on anything.
    const ready = this.sessions.get(nodeId)?.ready
    if (ready?.send(frame)) return
    let peerId: PeerId
    try {
      peerId = this.peerIdOf(nodeId)
    } catch {
      throw new PeerUnreachableError(nodeId, `${nodeId} is not a valid node id: use a peer's t.nodeId`)
    }
    let channel: Channel
    try {
      channel = await this.outbound(peerId)
    } catch (err) {
      if (!this.isPending(id)) return // timed out or aborted meanwhile: already settled
      throw new PeerUnreachableError(
        nodeId,
        `cannot reach ${nodeId} (${(err as Error)?.message}): check it runs and is connected (t.peers())`,
      )
    }
    if (!this.isPending(id)) return
    if (channel.send(frame)) return
    // The stream closed under us (the peer may still be connected): one fresh stream.
    const s = this.sessions.get(nodeId)
    if (s !== undefined && s.out !== undefined && (await s.out.catch(() => undefined)) === channel) {
      s.out = undefined
      if (s.ready === channel) s.ready = undefined
    }
    let retry: Channel | undefined
    try {
      retry = await this.outbound(peerId)
    } catch {
      // reported below
    }
    if (!this.isPending(id)) return
    if (retry === undefined || !retry.send(frame)) {
      throw new PeerUnreachableError(nodeId, `the stream to ${nodeId} closed: retry when it is up`)
    }
  }

  protected async close(): Promise<void> {
    clearInterval(this.heartbeatTimer)
    clearInterval(this.checkTimer)
    clearInterval(this.resolveTimer)
    for (const k of this.known.values()) k.redial.close()
    for (const t of this.targets.values()) t.redial.close()
    this.discoveredPeers.clear()
    this.dialQueue.length = 0
    for (const t of this.timers) clearTimeout(t)
    this.timers.clear()
    for (const s of this.sessions.values()) {
      for (const c of s.channels) await c.stream.close().catch(() => c.stream.abort(new Error('stopping')))
    }
    this.sessions.clear()
    await this.node.stop()
  }
}

/** At most `k` of `xs`, picked at random (all of them, in order, when there are no more). */
function sample<T>(xs: T[], k: number): T[] {
  if (xs.length <= k) return xs
  const copy = xs.slice()
  for (let i = 0; i < k; i++) {
    const j = i + Math.floor(Math.random() * (copy.length - i))
    const x = copy[i]!
    copy[i] = copy[j]!
    copy[j] = x
  }
  return copy.slice(0, k)
}

/**
 * Whether node `self`, rather than `peer`, dials first when both learn of each other at once.
 * A hash of the pair picks the side, so each node dials about half of its peers: with "the
 * lower id dials", the lowest node of a cluster made all the dials of its links, one
 * `maxParallelDials` batch after another, while the highest made none.
 */
function dialsFirst(self: string, peer: string): boolean {
  const lower = self < peer
  const pair = lower ? `${self}/${peer}` : `${peer}/${self}`
  let h = 0x811c9dc5 // FNV-1a
  for (let i = 0; i < pair.length; i++) h = Math.imul(h ^ pair.charCodeAt(i), 0x01000193)
  return ((h >>> 16) & 1) === 0 ? lower : !lower
}

/** A multiaddr string without its trailing `/p2p/<id>`. */
function stripPeer(addr: string): string {
  const i = addr.indexOf('/p2p/')
  return i < 0 ? addr : addr.slice(0, i)
}

const defaultResolveHost: ResolveHost = async (hostname, family) => {
  const { lookup } = await import('node:dns/promises')
  return (await lookup(hostname, { all: true, family })).map((a) => a.address)
}

/** Derives the libp2p private-network key file (PSK v1, base16) from a cluster key string. */
async function pskFromClusterKey(clusterKey: string): Promise<Uint8Array> {
  const { createHash } = await import('node:crypto')
  const hex = createHash('sha256').update(`nact-horde cluster key\u0000${clusterKey}`).digest('hex')
  return new TextEncoder().encode(`/key/swarm/psk/1.0.0/\n/base16/\n${hex}`)
}

/**
 * Starts a libp2p node (TCP, noise, yamux, identify, ping; gossipsub with pubsub 'gossipsub') and returns it as a
 * {@link Transport}. It dials the `bootstrap` addresses (resolving DNS names), then every peer
 * it discovers, and keeps its members connected: redialled forever, with backoff capped at
 * `redialMaxDelay`.
 *
 * @throws {InvalidOptionsError} when an option is out of range or not a valid multiaddr
 * @throws {IdentityError} when the `identity` key file cannot be created, read or decoded
 * @example
 * ```ts
 * const a = await createTransport()
 * const b = await createTransport({ bootstrap: a.addresses })
 * ```
 */
export async function createTransport(init: TransportInit = {}): Promise<Transport> {
  const options = resolveOptions(init)
  const log = init.log ?? defaultLog()
  // libp2p is loaded only now, after the Promise.withResolvers polyfill has run.
  const [
    { createLibp2p },
    { tcp },
    { noise },
    { defaultCrypto },
    { yamux },
    { identify },
    { ping },
    { StreamState },
    { peerIdFromString },
    { multiaddr },
  ] = await Promise.all([
    import('libp2p'),
    import('@libp2p/tcp'),
    import('@chainsafe/libp2p-noise'),
    import('@chainsafe/libp2p-noise/crypto'),
    import('@chainsafe/libp2p-yamux'),
    import('@libp2p/identify'),
    import('@libp2p/ping'),
    import('@chainsafe/libp2p-yamux/stream'),
    import('@libp2p/peer-id'),
    import('@multiformats/multiaddr'),
  ])
  for (const addr of [...options.listen, ...options.bootstrap.map((e) => e.address)]) {
    try {
      multiaddr(addr)
    } catch (err) {
      throw new InvalidOptionsError(`${addr} is not a valid multiaddr: ${(err as Error).message}`)
    }
  }
  for (const { address, expected } of options.bootstrap) {
    if (expected === undefined) continue
    try {
      peerIdFromString(expected)
    } catch {
      throw new InvalidOptionsError(
        `bootstrap address ${address} does not end in a valid node id: drop the /p2p/ part, or copy the whole address a node printed`,
      )
    }
  }
  let privateKey: Awaited<ReturnType<typeof loadIdentity>> | undefined
  if (options.identity !== undefined) {
    const crypto = await import('@libp2p/crypto/keys')
    privateKey = await loadIdentity(options.identity, crypto)
  }
  // The gater runs inside libp2p, which exists before the transport does.
  let transport: Libp2pTransport | undefined
  // gossipsub runs (and is loaded) only when it carries the topics: with 'direct' its streams,
  // heartbeats and signed announcements were a large part of forming a mesh (bench/RESULTS.md,
  // "scale: 24 processes mesh and idle"), for discovery that the peer exchange and its repair
  // (option peerRepairInterval) already do.
  const peerDiscovery: NonNullable<Libp2pOptions['peerDiscovery']> = []
  let pubsubService = {}
  if (options.pubsub === 'gossipsub') {
    const [{ gossipsub }, { pubsubPeerDiscovery }] = await Promise.all([
      import('@libp2p/gossipsub'),
      import('@libp2p/pubsub-peer-discovery'),
    ])
    peerDiscovery.push(pubsubPeerDiscovery({ interval: DISCOVERY_INTERVAL, topics: [DISCOVERY_TOPIC] }))
    pubsubService = {
      pubsub: gossipsub({
        allowPublishToZeroTopicPeers: true,
        ignoreDuplicatePublishError: true,
        emitSelf: false,
      }),
    }
  }
  if (options.mdns) {
    const { mdns } = await import('@libp2p/mdns')
    peerDiscovery.push(mdns())
  }
  let connectionProtector: ReturnType<typeof import('@libp2p/pnet').preSharedKey> | undefined
  if (options.clusterKey !== undefined) {
    const { preSharedKey } = await import('@libp2p/pnet')
    connectionProtector = preSharedKey({ psk: await pskFromClusterKey(options.clusterKey) })
  }
  const noiseCrypto = fastX25519(defaultCrypto)
  const node = await createLibp2p({
    start: false,
    ...(privateKey === undefined ? {} : { privateKey }),
    addresses: { listen: options.listen },
    connectionManager: {
      maxConnections: options.maxConnections,
      inboundConnectionThreshold: options.inboundConnectionThreshold,
      maxIncomingPendingConnections: options.maxIncomingPendingConnections,
      dialTimeout: options.dialTimeout,
    },
    connectionGater: {
      denyOutboundEncryptedConnection: (peerId, maConn) =>
        transport?.refuseOutbound(peerId, maConn.remoteAddr) ?? false,
    },
    transports: [tcp()],
    connectionEncrypters: [noise({ crypto: noiseCrypto })],
    // Our heartbeats keep every connection busy and judge liveness: yamux's keep-alive pings
    // (one at once on each new connection, then every 30 s) only cost a frame and a reply.
    streamMuxers: [yamux({ enableKeepAlive: false })],
    ...(connectionProtector === undefined ? {} : { connectionProtector }),
    peerDiscovery,
    // Our heartbeats judge liveness; libp2p's monitor aborts connections on one slow ping.
    connectionMonitor: { enabled: false },
    services: {
      identify: identify(),
      ping: ping(),
      ...pubsubService,
    },
  })
  transport = new Libp2pTransport(node as unknown as Libp2p<{ pubsub?: GossipSub }>, options, log, {
    peerIdFromString,
    multiaddr,
    yamuxEstablished: StreamState.Established,
    x25519: noiseCrypto.x25519,
  })
  try {
    await transport.start()
  } catch (err) {
    await Promise.resolve(node.stop()).catch(() => {})
    throw err
  }
  return transport
}
