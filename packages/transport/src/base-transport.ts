import {
  copyBytes,
  ERROR_NO_HANDLER,
  ERROR_REMOTE,
  ERROR_TOO_LARGE,
  MAX_TOPIC_BYTES,
  utf8Length,
} from './codec.js'
import {
  AbortError,
  MessageTooLargeError,
  NoHandlerError,
  PeerUnreachableError,
  RemoteError,
  TimeoutError,
  TransportStoppedError,
} from './errors.js'
import type { LogFn } from './options.js'
import type {
  PeerEventDetail,
  RequestHandler,
  RequestOptions,
  SubscriptionHandler,
  TransportStats,
} from './transport.js'

/** What running a local handler gave: a response, or an error code and message for the caller. */
export type HandlerResult = { ok: true; data: Uint8Array } | { ok: false; code: number; message: string }

/**
 * Largest publication: gossipsub frames its RPCs with a 4 MiB length-prefix limit, so a
 * publication (plus signature, topic and framing) must stay below it whatever
 * `maxMessageBytes` says. Larger data goes by request.
 */
export const MAX_PUBLISH_BYTES = 4 * 1024 * 1024 - 64 * 1024

/** A topic is a non-empty string of at most {@link MAX_TOPIC_BYTES} UTF-8 bytes. */
function checkTopic(topic: unknown): void {
  if (typeof topic !== 'string' || topic.length === 0) throw new TypeError('topic must be a non-empty string')
  // Cheap for the usual short names: 3 bytes per UTF-16 unit is the most UTF-8 can take.
  if (topic.length * 3 > MAX_TOPIC_BYTES && utf8Length(topic) > MAX_TOPIC_BYTES) {
    throw new TypeError(`topic must be at most ${MAX_TOPIC_BYTES} bytes of UTF-8`)
  }
}

interface Pending {
  nodeId: string
  protocol: string
  resolve: (data: Uint8Array) => void
  reject: (err: Error) => void
}

/** Options the shared logic needs. */
export interface BaseOptions {
  maxMessageBytes: number
  requestTimeout: number
  log: LogFn
}

/**
 * What the libp2p and memory transports share: subscriptions and batching, handlers,
 * pending requests with their timeouts and aborts, peer up/down bookkeeping, counters
 * and the stop lifecycle. Subclasses only move bytes.
 */
export abstract class BaseTransport extends EventTarget {
  abstract readonly nodeId: string
  abstract readonly addresses: string[]

  protected readonly log: LogFn
  protected readonly maxMessageBytes: number
  /** min(maxMessageBytes, {@link MAX_PUBLISH_BYTES}). */
  protected readonly maxPublishBytes: number
  protected readonly requestTimeout: number
  protected readonly subscriptions = new Map<string, Set<SubscriptionHandler>>()
  protected readonly handlers = new Map<string, RequestHandler>()
  protected readonly counters: TransportStats = {
    published: 0,
    delivered: 0,
    requestsSent: 0,
    requestsHandled: 0,
    droppedOversize: 0,
    droppedMalformed: 0,
    droppedLoss: 0,
    peerIdMismatches: 0,
    introductions: 0,
    peerRepairs: 0,
  }
  protected readonly upPeers = new Set<string>()
  protected stopped = false

  private stopping: Promise<void> | undefined
  private readonly pending = new Map<number, Pending>()
  private nextRequestId = 1
  private readonly batches = new Map<string, { payloads: Uint8Array[]; bytes: number }>()
  private flushScheduled = false
  private lastTick: number | undefined

  constructor(options: BaseOptions) {
    super()
    this.log = options.log
    this.maxMessageBytes = options.maxMessageBytes
    this.maxPublishBytes = Math.min(options.maxMessageBytes, MAX_PUBLISH_BYTES)
    this.requestTimeout = options.requestTimeout
  }

  /** Sends one batch of payloads published on `topic` to the topic's subscribers. */
  protected abstract sendBatch(topic: string, payloads: Uint8Array[]): void
  /** This node now has a subscriber for `topic` (first handler added). */
  protected abstract topicSubscribed(topic: string): void
  /** This node no longer has a subscriber for `topic` (last handler removed). */
  protected abstract topicUnsubscribed(topic: string): void
  /**
   * Sends a request frame; rejects (typically with PeerUnreachableError) if it cannot be sent.
   * A request may be settled (timed out, aborted) while this waits for a stream: check
   * {@link BaseTransport.isPending} after each wait and give up quietly when it is not.
   */
  protected abstract sendRequest(
    nodeId: string,
    id: number,
    protocol: string,
    data: Uint8Array,
  ): Promise<void>
  /** Releases the network resources; called once by stop(). */
  protected abstract close(): Promise<void>

  /**
   * Why a request to `nodeId` that got no answer in time could not have been answered, when
   * the transport knows (the memory network does: a pause, a one-way cut); the request then
   * rejects with {@link PeerUnreachableError} instead of {@link TimeoutError}.
   */
  protected unreachableReason(_nodeId: string): string | undefined {
    return undefined
  }

  /**
   * Feeds the stall watch with a periodic timer's tick (`now` from `performance.now()`; the
   * timer is due every `interval` ms). A tick more than `threshold` ms late means the event
   * loop was blocked: reports the stall (see {@link BaseTransport.stalled}) and returns how
   * late the tick was, else returns 0.
   */
  protected watchTick(now: number, interval: number, threshold: number): number {
    const last = this.lastTick
    this.lastTick = now
    if (last === undefined) return 0
    const late = now - last - interval
    if (late <= threshold) return 0
    this.stalled(Math.round(late))
    return late
  }

  /** Reports that this node's event loop was blocked for `ms`: dispatches `stall` asynchronously. */
  protected stalled(ms: number): void {
    if (this.stopped) return
    this.log('event loop was blocked for %d ms', ms)
    queueMicrotask(() => {
      if (!this.stopped) this.dispatchEvent(new CustomEvent('stall', { detail: { ms } }))
    })
  }

  publish(topic: string, data: Uint8Array): void {
    checkTopic(topic)
    if (!(data instanceof Uint8Array)) throw new TypeError('publish data must be a Uint8Array')
    if (this.stopped) {
      this.log('publish on %s after stop ignored', topic)
      return
    }
    if (data.length > this.maxPublishBytes) {
      throw new MessageTooLargeError(data.length, this.maxPublishBytes, 'publication')
    }
    this.counters.published++
    let batch = this.batches.get(topic)
    if (
      batch !== undefined &&
      batch.bytes + data.length + 8 * (batch.payloads.length + 2) > this.maxPublishBytes
    ) {
      this.flushTopic(topic)
      batch = undefined
    }
    if (batch === undefined) {
      batch = { payloads: [], bytes: 0 }
      this.batches.set(topic, batch)
    }
    // Copy: the caller may reuse its buffer before the batch leaves.
    batch.payloads.push(copyBytes(data))
    batch.bytes += data.length
    if (!this.flushScheduled) {
      this.flushScheduled = true
      queueMicrotask(() => this.flushAll())
    }
  }

  private flushTopic(topic: string): void {
    const batch = this.batches.get(topic)
    if (batch === undefined) return
    this.batches.delete(topic)
    try {
      this.sendBatch(topic, batch.payloads)
    } catch (err) {
      this.log('publishing on %s failed: %o', topic, err)
    }
  }

  protected flushAll(): void {
    this.flushScheduled = false
    for (const topic of [...this.batches.keys()]) this.flushTopic(topic)
  }

  subscribe(topic: string, handler: SubscriptionHandler): () => void {
    checkTopic(topic)
    if (typeof handler !== 'function') throw new TypeError('handler must be a function')
    if (this.stopped) return () => {}
    let set = this.subscriptions.get(topic)
    if (set === undefined) {
      set = new Set()
      this.subscriptions.set(topic, set)
      this.topicSubscribed(topic)
    }
    // A wrapper, so the same function subscribed twice gets two independent unsubscribes.
    const entry: SubscriptionHandler = (data, from) => handler(data, from)
    set.add(entry)
    return () => {
      const current = this.subscriptions.get(topic)
      if (current === undefined || !current.delete(entry)) return
      if (current.size === 0) {
        this.subscriptions.delete(topic)
        if (!this.stopped) this.topicUnsubscribed(topic)
      }
    }
  }

  /** Hands a received payload to the local subscribers of `topic`. */
  protected deliver(topic: string, data: Uint8Array, from: string): void {
    const set = this.subscriptions.get(topic)
    if (set === undefined || this.stopped) return
    for (const handler of set) {
      this.counters.delivered++
      try {
        handler(data, from)
      } catch (err) {
        this.log('subscriber of %s threw: %o', topic, err)
      }
    }
  }

  handle(protocol: string, handler: RequestHandler): () => void {
    if (typeof protocol !== 'string' || protocol.length === 0)
      throw new TypeError('protocol must be a string')
    if (typeof handler !== 'function') throw new TypeError('handler must be a function')
    this.handlers.set(protocol, handler)
    return () => {
      if (this.handlers.get(protocol) === handler) this.handlers.delete(protocol)
    }
  }

  /** Runs the local handler for a request from `from`; never throws. */
  protected async runHandler(protocol: string, data: Uint8Array, from: string): Promise<HandlerResult> {
    const handler = this.handlers.get(protocol)
    if (handler === undefined) return { ok: false, code: ERROR_NO_HANDLER, message: protocol }
    this.counters.requestsHandled++
    try {
      const result = await handler(data, from)
      if (!(result instanceof Uint8Array)) {
        return {
          ok: false,
          code: ERROR_REMOTE,
          message: 'the handler returned something other than a Uint8Array',
        }
      }
      if (result.length > this.maxMessageBytes) {
        return {
          ok: false,
          code: ERROR_TOO_LARGE,
          message: new MessageTooLargeError(result.length, this.maxMessageBytes, 'response').message,
        }
      }
      return { ok: true, data: result }
    } catch (err) {
      return { ok: false, code: ERROR_REMOTE, message: err instanceof Error ? err.message : String(err) }
    }
  }

  request(
    nodeId: string,
    protocol: string,
    data: Uint8Array,
    options: RequestOptions = {},
  ): Promise<Uint8Array> {
    if (this.stopped) return Promise.reject(new TransportStoppedError())
    if (typeof nodeId !== 'string' || typeof protocol !== 'string' || !(data instanceof Uint8Array)) {
      return Promise.reject(new TypeError('request(nodeId: string, protocol: string, data: Uint8Array)'))
    }
    if (data.length > this.maxMessageBytes) {
      return Promise.reject(new MessageTooLargeError(data.length, this.maxMessageBytes, 'request'))
    }
    const { signal } = options
    const timeout = options.timeout ?? this.requestTimeout
    if (signal?.aborted) return Promise.reject(new AbortError(`request ${protocol} to ${nodeId} was aborted`))
    this.counters.requestsSent++
    const id = this.nextRequestId++
    let resolve!: (value: Uint8Array) => void
    let reject!: (err: Error) => void
    const promise = new Promise<Uint8Array>((res, rej) => {
      resolve = res
      reject = rej
    })
    // No AbortController per request: settling removes the entry from `pending`, which is
    // what a send still waiting for its stream checks (an abort() per completed request
    // built a DOMException with a stack each time: ~15 µs of every round trip).
    const cleanup = () => {
      this.pending.delete(id)
      clearTimeout(timer)
      if (signal !== undefined) signal.removeEventListener('abort', onAbort)
    }
    const onAbort = () => {
      cleanup()
      reject(new AbortError(`request ${protocol} to ${nodeId} was aborted by its signal`))
    }
    const expire = () => {
      if (this.pending.get(id) !== entry) return // settled during the extra turn
      cleanup()
      const reason = this.unreachableReason(nodeId)
      reject(
        reason === undefined
          ? new TimeoutError(
              `no response to ${protocol} from ${nodeId} within ${timeout} ms: the peer may be overloaded or gone; retry or raise the timeout`,
              timeout,
            )
          : new PeerUnreachableError(
              nodeId,
              `no response to ${protocol} from ${nodeId} within ${timeout} ms: ${reason}; retry when it is reachable`,
            ),
      )
    }
    // After the loop was blocked (busy), timers can run before the I/O that waited meanwhile:
    // the response may already be waiting unread. One more turn lets it in before we give up.
    const timer = setTimeout(() => setImmediate(expire), timeout)
    if (signal !== undefined) signal.addEventListener('abort', onAbort, { once: true })
    const entry: Pending = {
      nodeId,
      protocol,
      resolve: (value) => {
        cleanup()
        resolve(value)
      },
      reject: (err) => {
        cleanup()
        reject(err)
      },
    }
    this.pending.set(id, entry)
    if (nodeId === this.nodeId) {
      // To self: the local handler directly, still asynchronously and on a copy.
      void this.runHandler(protocol, copyBytes(data), nodeId).then((result) =>
        this.settle(nodeId, id, result.ok ? { ok: true, data: copyBytes(result.data) } : result),
      )
    } else {
      this.sendRequest(nodeId, id, protocol, data).catch((err: unknown) => {
        this.pending.get(id)?.reject(err instanceof Error ? err : new PeerUnreachableError(nodeId))
      })
    }
    return promise
  }

  /** Whether request `id` still waits for its response (not answered, timed out or aborted). */
  protected isPending(id: number): boolean {
    return this.pending.has(id)
  }

  /** Completes request `id` with what the node `from` answered; ignores late or foreign answers. */
  protected settle(from: string, id: number, result: HandlerResult): void {
    const pending = this.pending.get(id)
    if (pending === undefined || pending.nodeId !== from) return
    if (result.ok) {
      pending.resolve(result.data)
    } else if (result.code === ERROR_NO_HANDLER) {
      pending.reject(new NoHandlerError(from, pending.protocol))
    } else if (result.code === ERROR_TOO_LARGE) {
      pending.reject(new MessageTooLargeError(-1, this.maxMessageBytes, `the response from ${from}`))
    } else {
      pending.reject(new RemoteError(from, pending.protocol, result.message))
    }
  }

  /** Rejects every pending request to `nodeId`. */
  protected failRequestsTo(nodeId: string, err: Error): void {
    for (const pending of [...this.pending.values()]) if (pending.nodeId === nodeId) pending.reject(err)
  }

  peers(): string[] {
    return [...this.upPeers]
  }

  stats(): TransportStats {
    return { ...this.counters }
  }

  /** Records `nodeId` as up; emits `peer:up` once per up-period. Returns whether it changed. */
  protected markUp(nodeId: string): boolean {
    if (this.stopped || nodeId === this.nodeId || this.upPeers.has(nodeId)) return false
    this.upPeers.add(nodeId)
    this.log('peer up %s', nodeId)
    this.emitPeerEvent('peer:up', nodeId)
    return true
  }

  /** Records `nodeId` as down; emits `peer:down` once, and fails its pending requests. */
  protected markDown(nodeId: string, reason: string, closed = false): boolean {
    if (!this.upPeers.delete(nodeId)) return false
    this.log('peer down %s (%s)', nodeId, reason)
    this.failRequestsTo(
      nodeId,
      new PeerUnreachableError(
        nodeId,
        `peer ${nodeId} went down (${reason}) before answering: retry when it is up`,
      ),
    )
    if (!this.stopped) this.emitPeerEvent('peer:down', nodeId, closed ? 'closed' : 'silent')
    return true
  }

  private emitPeerEvent(type: 'peer:up' | 'peer:down', nodeId: string, reason?: 'closed' | 'silent'): void {
    const detail: PeerEventDetail = reason === undefined ? { nodeId } : { nodeId, reason }
    // Asynchronous, so a listener never runs inside the call that changed the state.
    queueMicrotask(() => {
      if (!this.stopped) this.dispatchEvent(new CustomEvent(type, { detail }))
    })
  }

  stop(): Promise<void> {
    this.stopping ??= this.doStop()
    return this.stopping
  }

  private async doStop(): Promise<void> {
    this.flushAll()
    this.stopped = true
    const err = new TransportStoppedError('the transport was stopped before the response arrived')
    for (const pending of [...this.pending.values()]) pending.reject(err)
    this.upPeers.clear()
    try {
      await this.close()
    } catch (e) {
      this.log('error while stopping: %o', e)
    }
    this.log('stopped')
  }
}
