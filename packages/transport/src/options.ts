import { InvalidOptionsError } from './errors.js'

/** A log function (the `debug` package's shape); silent unless enabled. */
export type LogFn = (formatter: string, ...args: unknown[]) => void

/** Options of {@link createTransport}. Durations are in milliseconds, sizes in bytes. */
export interface TransportInit {
  /** Multiaddrs to listen on. @default ['/ip4/127.0.0.1/tcp/0'] */
  listen?: string[]
  /** Multiaddrs of peers to dial at start, each ending in `/p2p/<peer id>`. @default [] */
  bootstrap?: string[]
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

/** Default failure timeout, ms. */
export const DEFAULT_FAILURE_TIMEOUT = 3000
/** Default request timeout, ms. */
export const DEFAULT_REQUEST_TIMEOUT = 5000
/** Default maximum message size, bytes (16 MiB). */
export const DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024
/** Default listen address. */
export const DEFAULT_LISTEN = ['/ip4/127.0.0.1/tcp/0']

/** Options after defaults and validation. */
export interface ResolvedOptions {
  listen: string[]
  bootstrap: string[]
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
  const bootstrap = checkStrings('bootstrap', init.bootstrap ?? [])
  for (const addr of bootstrap) {
    if (!/\/p2p\/[^/]+$/.test(addr)) {
      throw new InvalidOptionsError(
        `bootstrap address ${addr} must end in /p2p/<peer id> (use t.addresses of that node)`,
      )
    }
  }
  return {
    listen: checkStrings('listen', init.listen ?? DEFAULT_LISTEN),
    bootstrap,
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
