import { createTransport, type TransportInit } from '@nact-horde/transport'
import { TimeoutError } from './errors.js'
import type { HordeStatus } from './horde.js'
import { decodeResponse, encodeRequest } from './protocol.js'

/**
 * Connects to a running node (without joining its horde) and returns its view of the
 * cluster: members, their status and child counts. What `nact-horde status` prints.
 */
export async function fetchStatus(
  address: string,
  options: { name: string; clusterKey?: string; timeout?: number },
): Promise<HordeStatus> {
  const timeout = options.timeout ?? 5000
  const init: TransportInit = { bootstrap: [address], requestTimeout: timeout }
  if (options.clusterKey !== undefined) init.clusterKey = options.clusterKey
  const t = await createTransport(init)
  try {
    const target = address.split('/p2p/')[1]
    if (target === undefined) throw new TypeError(`the address must end in /p2p/<node id>: ${address}`)
    await new Promise<void>((resolve, reject) => {
      if (t.peers().includes(target)) return resolve()
      const timer = setTimeout(
        () =>
          reject(
            new TimeoutError(
              `could not reach ${address} within ${timeout} ms (is it running, with the same cluster key?)`,
              timeout,
            ),
          ),
        timeout,
      )
      t.addEventListener('peer:up', (e) => {
        if (e.detail.nodeId === target) {
          clearTimeout(timer)
          resolve()
        }
      })
    })
    const protocol = `/nact-horde/${encodeURIComponent(options.name)}/rpc/1`
    const reply = await t.request(target, protocol, encodeRequest({ op: 'status' }), { timeout })
    return decodeResponse(reply) as HordeStatus
  } finally {
    await t.stop()
  }
}
