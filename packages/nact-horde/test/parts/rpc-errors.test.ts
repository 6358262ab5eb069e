// Transport failures of a request become the horde error that says what happened.
import {
  NoHandlerError,
  PeerUnreachableError,
  TransportStoppedError,
  TimeoutError as TransportTimeout,
  MessageTooLargeError as TransportTooLarge,
} from '@nact-horde/transport'
import { describe, expect, it } from 'vitest'
import { mapTransportError } from '../../src/rpc/client.js'

describe('request errors', () => {
  it.each([
    ['a request that ran out of time', new TransportTimeout('timed out', 100), 'TimeoutError'],
    ['an unreachable peer', new PeerUnreachableError('n1'), 'NodeUnreachableError'],
    ['a peer that runs no horde of this name', new NoHandlerError('n1', '/p'), 'NodeUnreachableError'],
    ['a message too large', new TransportTooLarge(10, 5), 'MessageTooLargeError'],
    ['a stopped transport', new TransportStoppedError('stopped'), 'NodeShuttingDownError'],
  ])('%s → %s', (_what, err, name) => {
    const mapped = mapTransportError(err, 'n1', 'start', 100) as Error
    expect(mapped.name).toBe(name)
    expect(mapped.message.length).toBeGreaterThan(10)
  })

  it('errors the remote node raised pass through unchanged', () => {
    const remote = Object.assign(new Error('no such child'), { name: 'RemoteError' })
    expect(mapTransportError(remote, 'n1', 'terminate', 100)).toBe(remote)
  })
})
