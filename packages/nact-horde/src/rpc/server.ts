import createDebug from 'debug'
import type { ChildSpec } from '../behaviour.js'
import { NotMemberError } from '../errors.js'
import { decodeRequest, encodeError, encodeOk, type RemoteChild, type Request } from '../protocol.js'

const log = createDebug('horde:rpc')

/** What answering requests needs; each handler is the part that owns the operation. */
export interface RpcHandlers {
  /** The one admission check (see Replicator). */
  admits(from: string): boolean
  /** Starts a child here; resolves with the encoded delta of its record. */
  start(spec: Partial<ChildSpec>, from: string): Promise<{ id: string; node: string; delta: Uint8Array }>
  terminate(id: string): Promise<void>
  deliver(batch: Uint8Array, from: string): void
  /** Joins a replicated write (already admitted); false if the bytes were refused. */
  replicate(delta: Uint8Array, from: string): boolean
  children(): RemoteChild[]
  status(): unknown
}

/**
 * The handler of this horde's request protocol. Anyone admitted by the cluster key may read a
 * node's status; every other operation is for members only (a non-member gets NotMemberError).
 */
export function requestHandler(h: RpcHandlers): (bytes: Uint8Array, from: string) => Promise<Uint8Array> {
  return async (bytes, from) => {
    let req: Request
    try {
      req = decodeRequest(bytes)
    } catch (err) {
      return encodeError(err)
    }
    if (req.op !== 'status' && !h.admits(from)) return encodeError(new NotMemberError(from))
    try {
      switch (req.op) {
        case 'start':
          log('start of %s proxied from %s', (req.spec as ChildSpec).id, from)
          return encodeOk(await h.start(req.spec, from))
        case 'deliver':
          h.deliver(req.batch, from)
          return encodeOk(null)
        case 'replicate':
          return encodeOk(h.replicate(req.delta, from))
        case 'terminate':
          await h.terminate(req.id)
          return encodeOk(null)
        case 'children':
          return encodeOk(h.children())
        case 'status':
          return encodeOk(h.status())
      }
    } catch (err) {
      return encodeError(err)
    }
  }
}
