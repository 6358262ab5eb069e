import { Packr, Unpackr } from 'msgpackr'
import type { ChildSpec } from './behaviour.js'
import {
  AlreadyStartedError,
  HordeError,
  InvalidChildSpecError,
  MessageTooLargeError,
  NoAliveNodesError,
  NodeShuttingDownError,
  NodeUnreachableError,
  NotFoundError,
  NotMemberError,
  NotSerializableError,
  QuorumNotMetError,
  StartTimeoutError,
  TimeoutError,
  UnknownBehaviourError,
} from './errors.js'

/**
 * The request/response messages between the nodes of one horde, MessagePack-encoded:
 * `[op, …args]` requests, `['ok', result]` / `['err', name, message, data]` responses. Every
 * field is checked on arrival: a peer's bytes never reach a behaviour unchecked.
 */
export type Request =
  | { op: 'start'; spec: ChildSpec }
  | { op: 'terminate'; id: string }
  | { op: 'children' }
  | { op: 'status' }
  /** An encoded CRDT delta the receiver must hold before it answers (a durable write). */
  | { op: 'replicate'; delta: Uint8Array }
  /** Messages for children or actors on the receiving node (see routing.ts). */
  | { op: 'deliver'; batch: Uint8Array }

export interface RemoteChild {
  id: string
  behaviour: string
  restart: string
  status: 'running' | 'restarting'
}

const packr = new Packr({ useRecords: false })
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' })

/** A request or response that is not of this protocol. */
export class ProtocolError extends HordeError {
  override name = 'ProtocolError'
}

export function encodeRequest(req: Request): Uint8Array {
  switch (req.op) {
    case 'start':
      return packr.pack(['start', req.spec])
    case 'terminate':
      return packr.pack(['terminate', req.id])
    case 'children':
      return packr.pack(['children'])
    case 'status':
      return packr.pack(['status'])
    case 'replicate':
      return packr.pack(['replicate', req.delta])
    case 'deliver':
      return packr.pack(['deliver', req.batch])
  }
}

export function decodeRequest(bytes: Uint8Array): Request {
  let msg: unknown
  try {
    msg = unpackr.unpack(bytes)
  } catch {
    throw new ProtocolError('request is not valid MessagePack')
  }
  if (!Array.isArray(msg) || typeof msg[0] !== 'string') throw new ProtocolError('malformed request')
  switch (msg[0]) {
    case 'start': {
      const spec = msg[1] as ChildSpec
      if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) {
        throw new InvalidChildSpecError('a remote start carried no child spec')
      }
      return { op: 'start', spec }
    }
    case 'terminate':
      if (typeof msg[1] !== 'string') throw new ProtocolError('terminate needs an id')
      return { op: 'terminate', id: msg[1] }
    case 'children':
      return { op: 'children' }
    case 'status':
      return { op: 'status' }
    case 'replicate':
      if (!(msg[1] instanceof Uint8Array)) throw new ProtocolError('replicate needs delta bytes')
      return { op: 'replicate', delta: msg[1] }
    case 'deliver':
      if (!(msg[1] instanceof Uint8Array)) throw new ProtocolError('deliver needs a batch')
      return { op: 'deliver', batch: msg[1] }
    default:
      throw new ProtocolError(`unknown request '${String(msg[0]).slice(0, 40)}'`)
  }
}

export function encodeOk(result: unknown): Uint8Array {
  return packr.pack(['ok', result])
}

export function encodeError(err: unknown): Uint8Array {
  const e = err instanceof Error ? err : new Error(String(err))
  const data: Record<string, unknown> = {}
  for (const k of ['id', 'node', 'behaviour', 'timeout'] as const) {
    const v = (e as unknown as Record<string, unknown>)[k]
    if (typeof v === 'string' || typeof v === 'number') data[k] = v
  }
  return packr.pack(['err', e.name, e.message, data])
}

/** The result of a response, or the typed error it carries (rebuilt as the local class). */
export function decodeResponse(bytes: Uint8Array): unknown {
  let msg: unknown
  try {
    msg = unpackr.unpack(bytes)
  } catch {
    throw new ProtocolError('response is not valid MessagePack')
  }
  if (!Array.isArray(msg)) throw new ProtocolError('malformed response')
  if (msg[0] === 'ok') return msg[1]
  if (msg[0] !== 'err') throw new ProtocolError('malformed response')
  throw reviveError(String(msg[1]), String(msg[2]), (msg[3] ?? {}) as Record<string, unknown>)
}

function reviveError(name: string, message: string, data: Record<string, unknown>): Error {
  const str = (k: string) => (typeof data[k] === 'string' ? (data[k] as string) : '')
  let err: Error
  switch (name) {
    case 'AlreadyStartedError':
      return new AlreadyStartedError(str('id'), str('node'))
    case 'UnknownBehaviourError':
      return new UnknownBehaviourError(str('behaviour'))
    case 'NotFoundError':
      return new NotFoundError(str('id'))
    case 'NotMemberError':
      return new NotMemberError(str('node'))
    case 'NodeShuttingDownError':
      return new NodeShuttingDownError(str('node'))
    case 'NoAliveNodesError':
      return new NoAliveNodesError(message)
    case 'QuorumNotMetError':
      return new QuorumNotMetError(message)
    case 'TimeoutError':
      return new TimeoutError(message, typeof data.timeout === 'number' ? data.timeout : undefined)
    case 'InvalidChildSpecError':
      return new InvalidChildSpecError(message)
    case 'NodeUnreachableError':
      return Object.assign(new NodeUnreachableError(str('node')), { message })
    case 'MessageTooLargeError':
      return Object.assign(new MessageTooLargeError(), { message })
    case 'NotSerializableError':
      return new NotSerializableError(message)
    case 'StartTimeoutError':
      return new StartTimeoutError(str('id'), typeof data.timeout === 'number' ? data.timeout : 0)
    default:
      err = new HordeError(message)
      err.name = name
      return err
  }
}
