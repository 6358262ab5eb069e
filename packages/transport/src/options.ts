import { InvalidOptionsError } from './errors.js'

/** A log function (the `debug` package's shape); silent unless enabled. */
export type LogFn = (formatter: string, ...args: unknown[]) => void

/** Options of {@link createTransport}. Durations are in milliseconds, sizes in bytes. */
export interface TransportInit {
  /** Multiaddrs to listen on. @default ['/ip4/127.0.0.1/tcp/0'] */
  listen?: string[]
  /**
   * Peers to join through: `/ip4/<ip>/tcp/<port>`, `/ip6/…`, or `/dns4/<name>/tcp/<port>`
   * (also `/dns6`, `/dns`), each optionally ending in `/p2p/<node id>`. Without the id, the
   * node that answers is accepted and its id learned on connect; with it, another node
   * answering there is refused and reported (`peer:mismatch`, `stats().peerIdMismatches`).
   * A DNS name is resolved to all its addresses, each dialled, and re-resolved every
   * `resolveInterval` (a Kubernetes headless service). Every entry is retried forever, with
   * backoff capped at `redialMaxDelay`.
   * @default []
   */
  bootstrap?: string[]
  /**
   * Path of this node's key file, for a node id that survives restarts. Created (Ed25519,
   * mode 0600) when missing — its folder must exist — and reused after. Keep it on a volume
   * in a container; never share one file between two running nodes.
   * @default undefined (a new random id at every start)
   */
  identity?: string
  /** Longest wait between two dials of an unreachable bootstrap address or member, ms (100 … 300 000). @default 10 000 */
  redialMaxDelay?: number
  /** How long one dial may take before it counts as failed, ms (100 … 60 000). @default 5000 */
  dialTimeout?: number
  /**
   * Dials of discovered peers (peer exchange, announcements, mDNS) in flight at once; the rest
   * wait their turn, and each dial's `dialTimeout` counts from its start. On a host short of
   * CPU, dozens of handshakes at once all outlast the timeout together and are started again;
   * fewer at a time finish. Bootstrap addresses and members are redialled outside this bound.
   * @default 4
   */
  maxParallelDials?: number
  /** How often DNS names in `bootstrap` are resolved again, ms (100 … 3 600 000). @default 30 000 */
  resolveInterval?: number
  /**
   * Mean ms between two peer-list repairs of this node (100 … 3 600 000): the list of its peers
   * sent to one of them picked at random, jittered ±25 %. Two nodes that could not reach each
   * other when they met (and gave up dialling) connect within about this long of the link
   * coming back. @default 10 000
   */
  peerRepairInterval?: number
  /**
   * Resolves a host name of a `bootstrap` entry to its addresses (`family` 4 for `/dns4`, 6
   * for `/dns6`, 0 for `/dns`). For tests, or a custom discovery.
   * @default Node's `dns.promises.lookup(name, { all: true, family })`
   */
  resolveHost?: ResolveHost
  /** Connections libp2p keeps before pruning (its connection manager's `maxConnections`). @default 300 */
  maxConnections?: number
  /**
   * Inbound connections accepted per second from one host before more are refused (libp2p's
   * `inboundConnectionThreshold`, default 5 there: too few for a cluster starting on one host).
   * @default 64
   */
  inboundConnectionThreshold?: number
  /** Inbound connections still in their handshake at once (libp2p's `maxIncomingPendingConnections`). @default 64 */
  maxIncomingPendingConnections?: number
  /** Discover peers on the local network with mDNS. @default false */
  mdns?: boolean
  /** Shared secret: turns on a libp2p private network; peers without the same key cannot connect. @default undefined (open) */
  clusterKey?: string
  /** Silence after which a connected peer is reported down, ms (100 … 60 000). @default 3000 */
  failureTimeout?: number
  /** How often heartbeats are sent to each peer, ms (≥ 10, ≤ failureTimeout / 2). @default min(1000, failureTimeout / 3) */
  heartbeatInterval?: number
  /** Largest request, response or publication accepted, bytes (1 KiB … 256 MiB). @default 16 MiB */
  maxMessageBytes?: number
  /** Default request timeout, ms (1 … 600 000). @default 5000 */
  requestTimeout?: number
  /**
   * How publications travel. `'direct'`: straight to every connected peer that subscribes to
   * the topic, over the node's own authenticated stream to it — one hop, no signatures, no
   * relayed duplicates; the nodes of a cluster keep a connection to each other anyway (that is
   * how liveness is judged). `'gossipsub'`: through gossipsub — signed by the publisher and
   * relayed through the mesh, so it also reaches subscribers this node has no connection to,
   * at several times the CPU per message. Peer discovery uses gossipsub either way.
   * @default 'direct'
   */
  pubsub?: 'direct' | 'gossipsub'
  /** Where debug logs go. @default debug('horde:transport') */
  log?: LogFn
}

/** Resolves a host name to IP addresses; `family` 0 means either. */
export type ResolveHost = (hostname: string, family: 0 | 4 | 6) => Promise<string[]>

/** A parsed `bootstrap` entry. */
export interface BootstrapEntry {
  /** The entry as configured. */
  address: string
  /** `ip4` / `ip6` (an address) or `dns` / `dns4` / `dns6` (a name to resolve). */
  protocol: 'ip4' | 'ip6' | 'dns' | 'dns4' | 'dns6'
  host: string
  port: number
  /** The node id pinned with `/p2p/<id>`, if any. */
  expected: string | undefined
}

/** Default failure timeout, ms. */
export const DEFAULT_FAILURE_TIMEOUT = 3000
/** Default request timeout, ms. */
export const DEFAULT_REQUEST_TIMEOUT = 5000
/** Default maximum message size, bytes (16 MiB). */
export const DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024
/** Default longest wait between redials, ms. */
export const DEFAULT_REDIAL_MAX_DELAY = 10_000
/** Default dial timeout, ms. */
export const DEFAULT_DIAL_TIMEOUT = 5000
/** Default number of dials of discovered peers in flight at once. */
export const DEFAULT_MAX_PARALLEL_DIALS = 4
/** Default DNS re-resolution interval, ms. */
export const DEFAULT_RESOLVE_INTERVAL = 30_000
/** Default mean interval between two peer-list repairs, ms. */
export const DEFAULT_PEER_REPAIR_INTERVAL = 10_000
/** Default libp2p `maxConnections`. */
export const DEFAULT_MAX_CONNECTIONS = 300
/** Default libp2p `inboundConnectionThreshold` (per host, per second). */
export const DEFAULT_INBOUND_CONNECTION_THRESHOLD = 64
/** Default libp2p `maxIncomingPendingConnections`. */
export const DEFAULT_MAX_INCOMING_PENDING_CONNECTIONS = 64
/** Default listen address. */
export const DEFAULT_LISTEN = ['/ip4/127.0.0.1/tcp/0']

/** Options after defaults and validation. */
export interface ResolvedOptions {
  listen: string[]
  bootstrap: BootstrapEntry[]
  identity: string | undefined
  redialMaxDelay: number
  dialTimeout: number
  maxParallelDials: number
  resolveInterval: number
  peerRepairInterval: number
  resolveHost: ResolveHost | undefined
  maxConnections: number
  inboundConnectionThreshold: number
  maxIncomingPendingConnections: number
  mdns: boolean
  clusterKey: string | undefined
  failureTimeout: number
  heartbeatInterval: number
  maxMessageBytes: number
  requestTimeout: number
  pubsub: 'direct' | 'gossipsub'
}

function checkNumber(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    throw new InvalidOptionsError(`${name} must be a number between ${min} and ${max}, got ${String(value)}`)
  }
  return value
}

function checkInteger(name: string, value: unknown, min: number, max: number): number {
  checkNumber(name, value, min, max)
  if (!Number.isInteger(value))
    throw new InvalidOptionsError(`${name} must be a whole number, got ${String(value)}`)
  return value as number
}

const BOOTSTRAP_SHAPE = /^\/(ip4|ip6|dns|dns4|dns6)\/([^/]+)\/tcp\/(\d{1,5})(?:\/p2p\/([^/]+))?\/?$/

/** Parses one `bootstrap` entry; the multiaddr and peer id themselves are checked by createTransport. */
function parseBootstrap(address: string): BootstrapEntry {
  const m = BOOTSTRAP_SHAPE.exec(address)
  const port = Number(m?.[3])
  if (m === null || port < 1 || port > 65_535) {
    throw new InvalidOptionsError(
      `bootstrap address ${address} is not of the form /ip4/<ip>/tcp/<port>, /ip6/…, /dns4/<name>/tcp/<port> (or /dns6, /dns), optionally ending in /p2p/<node id>`,
    )
  }
  return {
    address,
    protocol: m[1] as BootstrapEntry['protocol'],
    host: m[2]!,
    port,
    expected: m[4],
  }
}

function checkStrings(name: string, value: unknown): string[] {
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string' && v.length > 0)) {
    throw new InvalidOptionsError(
      `${name} must be an array of multiaddr strings, got ${JSON.stringify(value)}`,
    )
  }
  return [...(value as string[])]
}

/** Applies defaults and checks bounds; throws {@link InvalidOptionsError} naming the bad option. */
export function resolveOptions(init: TransportInit = {}): ResolvedOptions {
  if (init === null || typeof init !== 'object') {
    throw new InvalidOptionsError('transport options must be an object')
  }
  const failureTimeout = checkNumber(
    'failureTimeout',
    init.failureTimeout ?? DEFAULT_FAILURE_TIMEOUT,
    100,
    60_000,
  )
  const heartbeatInterval = checkNumber(
    'heartbeatInterval',
    init.heartbeatInterval ?? Math.min(1000, Math.floor(failureTimeout / 3)),
    10,
    failureTimeout / 2,
  )
  const clusterKey = init.clusterKey
  if (clusterKey !== undefined && (typeof clusterKey !== 'string' || clusterKey.length === 0)) {
    throw new InvalidOptionsError('clusterKey must be a non-empty string (the same on every node)')
  }
  if (init.mdns !== undefined && typeof init.mdns !== 'boolean') {
    throw new InvalidOptionsError('mdns must be a boolean')
  }
  if (init.log !== undefined && typeof init.log !== 'function') {
    throw new InvalidOptionsError('log must be a function')
  }
  if (init.pubsub !== undefined && init.pubsub !== 'direct' && init.pubsub !== 'gossipsub') {
    throw new InvalidOptionsError(
      `pubsub must be 'direct' or 'gossipsub', got ${JSON.stringify(init.pubsub)}`,
    )
  }
  const bootstrap = checkStrings('bootstrap', init.bootstrap ?? []).map(parseBootstrap)
  if (init.identity !== undefined && (typeof init.identity !== 'string' || init.identity.length === 0)) {
    throw new InvalidOptionsError('identity must be the path of a key file (a non-empty string)')
  }
  if (init.resolveHost !== undefined && typeof init.resolveHost !== 'function') {
    throw new InvalidOptionsError('resolveHost must be a function (hostname, family) => Promise<string[]>')
  }
  return {
    listen: checkStrings('listen', init.listen ?? DEFAULT_LISTEN),
    bootstrap,
    identity: init.identity,
    redialMaxDelay: checkNumber(
      'redialMaxDelay',
      init.redialMaxDelay ?? DEFAULT_REDIAL_MAX_DELAY,
      100,
      300_000,
    ),
    dialTimeout: checkNumber('dialTimeout', init.dialTimeout ?? DEFAULT_DIAL_TIMEOUT, 100, 60_000),
    maxParallelDials: checkInteger(
      'maxParallelDials',
      init.maxParallelDials ?? DEFAULT_MAX_PARALLEL_DIALS,
      1,
      1000,
    ),
    resolveInterval: checkNumber(
      'resolveInterval',
      init.resolveInterval ?? DEFAULT_RESOLVE_INTERVAL,
      100,
      3_600_000,
    ),
    peerRepairInterval: checkNumber(
      'peerRepairInterval',
      init.peerRepairInterval ?? DEFAULT_PEER_REPAIR_INTERVAL,
      100,
      3_600_000,
    ),
    resolveHost: init.resolveHost,
    maxConnections: checkInteger(
      'maxConnections',
      init.maxConnections ?? DEFAULT_MAX_CONNECTIONS,
      1,
      100_000,
    ),
    inboundConnectionThreshold: checkInteger(
      'inboundConnectionThreshold',
      init.inboundConnectionThreshold ?? DEFAULT_INBOUND_CONNECTION_THRESHOLD,
      1,
      100_000,
    ),
    maxIncomingPendingConnections: checkInteger(
      'maxIncomingPendingConnections',
      init.maxIncomingPendingConnections ?? DEFAULT_MAX_INCOMING_PENDING_CONNECTIONS,
      1,
      100_000,
    ),
    mdns: init.mdns ?? false,
    clusterKey,
    failureTimeout,
    heartbeatInterval,
    maxMessageBytes: checkNumber(
      'maxMessageBytes',
      init.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
      1024,
      256 * 1024 * 1024,
    ),
    requestTimeout: checkNumber('requestTimeout', init.requestTimeout ?? DEFAULT_REQUEST_TIMEOUT, 1, 600_000),
    pubsub: init.pubsub ?? 'direct',
  }
}
