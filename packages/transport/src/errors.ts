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

/**
 * The key file of `identity` could not be created, read or decoded. `path` names the file;
 * the message says what to do (create its folder, fix its permissions, or remove a file that
 * is not a key so a new one is made — which gives the node a new id).
 */
export class IdentityError extends TransportError {
  /** Always `'IdentityError'`: tell errors apart by `name` or class. */
  override name = 'IdentityError'
  /** The key file. */
  readonly path: string
  constructor(path: string, message: string) {
    super(message)
    this.path = path
  }
}

/**
 * A bootstrap address pinned a node id (`…/p2p/<id>`) but the node that answered there has
 * another id — typically a node restarted without its `identity` file, or an address now used
 * by another node. Reported in the `peer:mismatch` event and counted in
 * `stats().peerIdMismatches`; the connection is refused and the address is retried (with
 * backoff), so the node joins once the expected peer is back there. Remove the `/p2p/<id>`
 * part to accept whichever node answers.
 */
export class PeerIdMismatchError extends TransportError {
  /** Always `'PeerIdMismatchError'`: tell errors apart by `name` or class. */
  override name = 'PeerIdMismatchError'
  /** The bootstrap address as configured. */
  readonly address: string
  /** The node id the address pinned. */
  readonly expected: string
  /** The node id of the node that answered. */
  readonly actual: string
  constructor(address: string, expected: string, actual: string) {
    super(
      `the node at ${address} is ${actual}, not ${expected} as its /p2p/ part says: ` +
        'drop the /p2p/<id> part to accept whichever node answers, or give that node back its identity file',
    )
    this.address = address
    this.expected = expected
    this.actual = actual
  }
}
