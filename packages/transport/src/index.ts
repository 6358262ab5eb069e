/**
 * The cluster transport of nact-horde: a libp2p node (TCP, noise, yamux, identify,
 * gossipsub) with discovery, peer liveness, batched pub/sub and multiplexed
 * request/response — and an in-memory network with the same {@link Transport} interface
 * for fast, deterministic tests.
 *
 * @example
 * ```ts
 * import { createTransport } from '@nact-horde/transport'
 *
 * const a = await createTransport({ clusterKey: 'secret' })
 * const b = await createTransport({ clusterKey: 'secret', bootstrap: a.addresses })
 * a.handle('/echo/1', (bytes) => bytes)
 * b.subscribe('news', (bytes, from) => console.log(from, bytes))
 * await new Promise((r) => a.addEventListener('peer:up', r, { once: true }))
 * a.publish('news', new TextEncoder().encode('hello'))
 * const reply = await b.request(a.nodeId, '/echo/1', new Uint8Array([1, 2, 3]), { timeout: 1000 })
 * await Promise.all([a.stop(), b.stop()])
 * ```
 *
 * @packageDocumentation
 * @module @nact-horde/transport
 */
// Must stay the first import: libp2p needs Promise.withResolvers (Node ≥ 22).
import './polyfill.js'

export { MAX_PUBLISH_BYTES } from './base-transport.js'
export {
  AbortError,
  IdentityError,
  InvalidOptionsError,
  MessageTooLargeError,
  NoHandlerError,
  PeerIdMismatchError,
  PeerUnreachableError,
  RemoteError,
  TimeoutError,
  TransportError,
  TransportStoppedError,
} from './errors.js'
export {
  createTransport,
  DISCOVERY_INTERVAL,
  DISCOVERY_TOPIC,
  RPC_PROTOCOL,
  TOPIC_PREFIX,
} from './libp2p-transport.js'
export { DEBUG_NAMESPACE } from './log.js'
export {
  createMemoryNetwork,
  type LinkOptions,
  type MemoryNetwork,
  type MemoryNetworkOptions,
  type MemoryTransportInit,
} from './memory-network.js'
/** @internal noise's crypto with cheaper X25519 key handling; exported for bench/noise.bench.mjs. */
export { fastX25519 } from './noise-crypto.js'
export {
  DEFAULT_DIAL_TIMEOUT,
  DEFAULT_FAILURE_TIMEOUT,
  DEFAULT_INBOUND_CONNECTION_THRESHOLD,
  DEFAULT_LISTEN,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_INCOMING_PENDING_CONNECTIONS,
  DEFAULT_MAX_MESSAGE_BYTES,
  DEFAULT_MAX_PARALLEL_DIALS,
  DEFAULT_PEER_REPAIR_INTERVAL,
  DEFAULT_REDIAL_MAX_DELAY,
  DEFAULT_REQUEST_TIMEOUT,
  DEFAULT_RESOLVE_INTERVAL,
  type LogFn,
  type ResolveHost,
  type TransportInit,
} from './options.js'
export type {
  Listener,
  ListenerOptions,
  PeerEventDetail,
  PeerMismatchEventDetail,
  RequestHandler,
  RequestOptions,
  StallEventDetail,
  SubscriptionHandler,
  Transport,
  TransportEvents,
  TransportStats,
} from './transport.js'
