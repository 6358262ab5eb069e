/**
 * The contract every transport implements: the libp2p one and the in-memory one. Code
 * above the transport (the supervisor) depends only on these types.
 *
 * @module
 */
import type { PeerIdMismatchError } from './errors.js'

/** Detail of the `peer:up` and `peer:down` events. */
export interface PeerEventDetail {
  /** The node that came up or went down. */
  nodeId: string
  /**
   * On `peer:down`: how it was lost — `closed` (its connection was closed or reset: the process
   * is gone, or the peer hung up) or `silent` (nothing heard for `failureTimeout`: it may be
   * dead, paused, or cut off). The layer above weighs the two differently.
   */
  reason?: 'closed' | 'silent'
}

/** Detail of the `stall` event. */
export interface StallEventDetail {
  /**
   * How long this node's event loop was blocked, ms. The libp2p transport measures how late
   * its liveness timer fired, so this is a lower bound (short by at most one check interval,
   * `failureTimeout / 8`); the memory network reports the exact length of a `pause()`.
   */
  ms: number
}

/** Detail of the `peer:mismatch` event (libp2p transport). */
export interface PeerMismatchEventDetail {
  /** The bootstrap address as configured (before any DNS resolution). */
  address: string
  /** The address that was dialled (after DNS resolution). */
  dialled: string
  /** The node id the address pinned with `/p2p/<id>`. */
  expected: string
  /** The node id of the node that answered there. */
  actual: string
  /** The same, as a typed error whose message says what to do. */
  error: PeerIdMismatchError
}

/** Events a {@link Transport} dispatches. */
export interface TransportEvents {
  /** A peer that runs our transport is connected and answering (once per up-period). */
  'peer:up': CustomEvent<PeerEventDetail>
  /** A peer that was up disconnected or fell silent for `failureTimeout` (once per down). */
  'peer:down': CustomEvent<PeerEventDetail>
  /**
   * This node's event loop was blocked (a long GC pause, a busy loop, SIGSTOP, a VM stall)
   * for more than a quarter of `failureTimeout` (libp2p), or the memory network resumed it
   * from a `pause()`, so what it believes about its peers may be stale: the peers may have given up on it meanwhile, and their input is only now being
   * read. The libp2p transport gives every peer a fresh `failureTimeout` from the wake before
   * reporting it down for silence; layers above should re-validate before acting on
   * suspicions formed around the stall. Dispatched asynchronously, once per stall.
   */
  stall: CustomEvent<StallEventDetail>
  /**
   * A bootstrap address pinned a node id (`…/p2p/<id>`) and another node answered there
   * (libp2p only). The connection was refused and the address is retried with backoff; the
   * same is logged and counted in `stats().peerIdMismatches`. Once per refused connection.
   */
  'peer:mismatch': CustomEvent<PeerMismatchEventDetail>
}

/** Receives the payloads published on a topic, with the publisher's node id. */
export type SubscriptionHandler = (data: Uint8Array, from: string) => void

/** Answers a request; what it returns (or resolves) is the response, what it throws becomes a {@link RemoteError} at the caller. */
export type RequestHandler = (data: Uint8Array, from: string) => Uint8Array | Promise<Uint8Array>

/** Per-request options. */
export interface RequestOptions {
  /** ms to wait for the response; defaults to the transport's `requestTimeout`. */
  timeout?: number
  /** Aborts the request; the promise then rejects with an {@link AbortError}. */
  signal?: AbortSignal
}

/** Counters of what a transport did and, above all, of what it refused. */
export interface TransportStats {
  /** Payloads passed to `publish()`. */
  published: number
  /** Payloads delivered to local subscribers. */
  delivered: number
  /** Requests sent by `request()` (including to self). */
  requestsSent: number
  /** Requests answered by local handlers for other nodes or self. */
  requestsHandled: number
  /** Inbound frames or gossip refused because they exceed `maxMessageBytes`. */
  droppedOversize: number
  /** Inbound frames or gossip refused because they could not be decoded. */
  droppedMalformed: number
  /** Messages dropped by a simulated lossy link (memory network only; 0 for libp2p). */
  droppedLoss: number
  /** Connections refused because a bootstrap address's `/p2p/<id>` named another node (libp2p only). */
  peerIdMismatches: number
  /**
   * Peer-exchange frames sent (libp2p only): a peer this node reached without another node
   * having introduced it is told of this node's other peers (one frame, more past 256 peers or
   * maxMessageBytes), and they of it, one frame each.
   */
  introductions: number
  /**
   * Peer-list repairs sent (libp2p only): every `peerRepairInterval` (jittered), this node's
   * peers to one of them picked at random (none while it has fewer than two peers).
   */
  peerRepairs: number
}

/** Options of addEventListener (Node's, without depending on the DOM lib). */
export type ListenerOptions =
  | boolean
  | {
      /** Remove the listener after its first call. */
      once?: boolean
      /** As for `EventTarget.addEventListener`. */
      passive?: boolean
      /** Remove the listener when this signal aborts. */
      signal?: AbortSignal
      /** As for `EventTarget.addEventListener` (these events do not propagate). */
      capture?: boolean
    }

/** A plain event listener (function or object). */
export type Listener =
  | ((event: Event) => void)
  | {
      /** Called with each event. */
      handleEvent(event: Event): void
    }

/**
 * A cluster transport: identity, pub/sub, request/response and peer liveness.
 *
 * Events: `peer:up` and `peer:down`, both `CustomEvent<{ nodeId }>`, and `stall`
 * (`CustomEvent<{ ms }>`), and, for libp2p, `peer:mismatch` (see {@link TransportEvents}).
 */
export interface Transport extends EventTarget {
  /** This node's id (a libp2p peer id string for the libp2p transport). */
  readonly nodeId: string
  /** Ms of silence after which a peer is reported down (when the transport judges silence). */
  readonly failureTimeout?: number
  /** Addresses others can bootstrap from; for libp2p each ends in `/p2p/<nodeId>`. */
  readonly addresses: string[]

  /**
   * Publishes `data` on `topic` to every subscribed peer (not to this node's own
   * subscribers). Fire and forget: publishing with no subscribers is not an error;
   * payloads are batched per topic within a tick.
   * @throws {MessageTooLargeError} if `data` exceeds `maxMessageBytes` or `MAX_PUBLISH_BYTES` (≈ 4 MiB, a gossipsub limit)
   */
  publish(topic: string, data: Uint8Array): void
  /** Subscribes to `topic`; returns a function that removes this handler. */
  subscribe(topic: string, handler: SubscriptionHandler): () => void
  /** Registers the handler for `protocol` (replacing any previous one); returns a function that removes it. */
  handle(protocol: string, handler: RequestHandler): () => void
  /**
   * Sends `data` to the `protocol` handler on `nodeId` and resolves with its response.
   * Rejects with {@link TimeoutError}, {@link AbortError}, {@link PeerUnreachableError},
   * {@link RemoteError}, {@link NoHandlerError}, {@link MessageTooLargeError} or
   * {@link TransportStoppedError}; never hangs past its timeout.
   */
  request(nodeId: string, protocol: string, data: Uint8Array, options?: RequestOptions): Promise<Uint8Array>
  /** The peers currently up (never this node). */
  peers(): string[]
  /** Counters, including the dropped-message counts. */
  stats(): TransportStats
  /** Stops gracefully: pending requests reject with {@link TransportStoppedError}. Safe to call twice. */
  stop(): Promise<void>

  /** Listens to `peer:up` / `peer:down` (`event.detail.nodeId`) or `stall` (`event.detail.ms`), dispatched asynchronously. */
  addEventListener<K extends keyof TransportEvents>(
    type: K,
    listener: (event: TransportEvents[K]) => void,
    options?: ListenerOptions,
  ): void
  /** Listens to an event by name, with a plain listener. */
  addEventListener(type: string, listener: Listener | null, options?: ListenerOptions): void
  /** Removes a listener added with {@link Transport.addEventListener}. */
  removeEventListener<K extends keyof TransportEvents>(
    type: K,
    listener: (event: TransportEvents[K]) => void,
    options?: ListenerOptions,
  ): void
  /** Removes a plain listener by event name. */
  removeEventListener(type: string, listener: Listener | null, options?: ListenerOptions): void
}
