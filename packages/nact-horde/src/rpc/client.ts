import type { Transport } from '@nact-horde/transport'
import { MessageTooLargeError, NodeShuttingDownError, NodeUnreachableError, TimeoutError } from '../errors.js'
import { decodeResponse, encodeRequest, type Request } from '../protocol.js'

/**
 * Sends a request of this horde's protocol to one node and decodes the answer. Transport
 * failures become the horde error that says what happened — only a request that ran out of
 * time is a TimeoutError; an unreachable node, a message too large and a stopped transport
 * each have their own — and errors the remote node raised arrive as their own classes.
 */
export class RpcClient {
  constructor(
    private readonly transport: Transport,
    private readonly protocol: string,
    private readonly timeout: number,
  ) {}

  async call(node: string, req: Request): Promise<unknown> {
    let reply: Uint8Array
    try {
      reply = await this.transport.request(node, this.protocol, encodeRequest(req), { timeout: this.timeout })
    } catch (err) {
      throw mapTransportError(err, node, req.op, this.timeout)
    }
    return decodeResponse(reply)
  }
}

/** The horde error for a transport error of a request to `node`. */
export function mapTransportError(err: unknown, node: string, op: string, timeout: number): unknown {
  const e = err as Error
  switch (e?.name) {
    case 'TimeoutError':
      return new TimeoutError(`node ${node} did not answer '${op}' within ${timeout} ms; retry`, timeout)
    case 'PeerUnreachableError':
    case 'NoHandlerError':
      return new NodeUnreachableError(node, e.message)
    case 'MessageTooLargeError':
      return new MessageTooLargeError(e.message)
    case 'TransportStoppedError':
      return new NodeShuttingDownError()
    default:
      return err
  }
}
