/**
 * Error classes thrown or rejected by transports. Tell them apart by class or by `name`,
 * not by message text.
 *
 * @module
 */

/** Base class of every error raised by this package. */
export class TransportError extends Error {
  /** Always `'TransportError'`: tell errors apart by `name` or class. */
  override name = 'TransportError'
}

/** A request got no answer within its timeout. */
export class TimeoutError extends TransportError {
  /** Always `'TimeoutError'`: tell errors apart by `name` or class. */
  override name = 'TimeoutError'
  /** The timeout that expired, in ms. */
  readonly timeout: number
  constructor(message: string, timeout: number) {
    super(message)
    this.timeout = timeout
  }
}

/** The caller's `AbortSignal` aborted the request. */
export class AbortError extends TransportError {
  /** Always `'AbortError'`: tell errors apart by `name` or class. */
  override name = 'AbortError'
}

/** The target node is not connected and could not be reached (unknown, down, or across a partition). */
export class PeerUnreachableError extends TransportError {
  /** Always `'PeerUnreachableError'`: tell errors apart by `name` or class. */
  override name = 'PeerUnreachableError'
  /** The node that could not be reached. */
  readonly nodeId: string
  constructor(nodeId: string, message?: string) {
    super(
      message ??
        `peer ${nodeId} is not reachable: check that it is running and connected (t.peers()), then retry`,
    )
    this.nodeId = nodeId
  }
}

/** The handler on the remote node threw (or returned something that is not a Uint8Array). */
export class RemoteError extends TransportError {
  /** Always `'RemoteError'`: tell errors apart by `name` or class. */
  override name = 'RemoteError'
  /** The node whose handler failed. */
  readonly nodeId: string
  /** The protocol whose handler failed. */
  readonly protocol: string
  /** The message of the error thrown by the remote handler. */
  readonly remoteMessage: string
  constructor(nodeId: string, protocol: string, remoteMessage: string) {
    super(`the '${protocol}' handler on ${nodeId} failed: ${remoteMessage}`)
    this.nodeId = nodeId
    this.protocol = protocol
    this.remoteMessage = remoteMessage
  }
}

/** The remote node has no handler registered for the requested protocol. */
export class NoHandlerError extends TransportError {
  /** Always `'NoHandlerError'`: tell errors apart by `name` or class. */
  override name = 'NoHandlerError'
  /** The node that has no handler. */
  readonly nodeId: string
  /** The protocol nobody handles there. */
  readonly protocol: string
  constructor(nodeId: string, protocol: string) {
    super(`${nodeId} has no handler for '${protocol}': call t.handle('${protocol}', …) on that node first`)
    this.nodeId = nodeId
    this.protocol = protocol
  }
}

/** A message (request, response or publication) is larger than `maxMessageBytes`. */
export class MessageTooLargeError extends TransportError {
  /** Always `'MessageTooLargeError'`: tell errors apart by `name` or class. */
  override name = 'MessageTooLargeError'
  /** Size of the refused message, in bytes (-1 when the remote refused it and did not say). */
  readonly size: number
  /** The configured limit, in bytes. */
  readonly limit: number
  constructor(size: number, limit: number, what = 'message') {
    const sized = size >= 0 ? `${what} of ${size} bytes` : what
    super(`${sized} exceeds maxMessageBytes (${limit}): split it, or raise maxMessageBytes on every node`)
    this.size = size
    this.limit = limit
  }
}

/** The transport was stopped; create a new one to send again. */
export class TransportStoppedError extends TransportError {
  /** Always `'TransportStoppedError'`: tell errors apart by `name` or class. */
  override name = 'TransportStoppedError'
  constructor(message = 'the transport is stopped: create a new transport to communicate again') {
    super(message)
  }
}

/** `createTransport` (or a memory network) was given options it cannot use. */
export class InvalidOptionsError extends TransportError {
  /** Always `'InvalidOptionsError'`: tell errors apart by `name` or class. */
  override name = 'InvalidOptionsError'
}
