import {
  createMemoryNetwork,
  InvalidOptionsError,
  PeerUnreachableError,
  type Transport,
} from '@nact-horde/transport'
import { describe, expect, it } from 'vitest'
import { runTransportTests } from './compliance.js'
import { bytes, recordPeerEvents, waitFor } from './helpers.js'

runTransportTests('memory', async (n, options = {}) => {
  const network = createMemoryNetwork({ seed: 1 })
  const all: Transport[] = []
  const add = async () => {
    const t = await network.createTransport(options)
    all.push(t)
    return t
  }
  for (let i = 0; i < n; i++) await add()
  return {
    transports: [...all],
    add,
    unknownNodeId: 'memory-unknown',
    teardown: async () => {
      await Promise.all(all.map((t) => t.stop()))
    },
  }
})

describe('memory network', () => {
  it('delivers asynchronously, never inside the publishing or requesting call', async () => {
    const net = createMemoryNetwork({ seed: 2 })
    const a = await net.createTransport()
    const b = await net.createTransport()
    let delivered = 0
    let handled = 0
    b.subscribe('t', () => delivered++)
    b.handle('/p', (d) => {
      handled++
      return d
    })
    a.publish('t', bytes(1))
    const reply = a.request(b.nodeId, '/p', bytes(2))
    expect(delivered).toBe(0)
    expect(handled).toBe(0)
    expect([...(await reply)]).toEqual([2])
    await waitFor(() => delivered === 1)
    await Promise.all([a.stop(), b.stop()])
  })

  it('partition cuts traffic and takes peers across the cut down at once; heal restores them', async () => {
    const net = createMemoryNetwork({ seed: 3 })
    const [a, b, c, d] = await Promise.all([1, 2, 3, 4].map(() => net.createTransport()))
    if (!a || !b || !c || !d) throw new Error('setup')
    const events = recordPeerEvents(a)
    const got: string[] = []
    for (const t of [b, c, d]) t.subscribe('t', (_, from) => got.push(`${t.nodeId}<${from}`))
    c.handle('/p', (x) => x)

    net.partition([a.nodeId, b.nodeId], [c.nodeId, d.nodeId])
    expect(a.peers()).toEqual([b.nodeId])
    expect(c.peers()).toEqual([d.nodeId])
    await waitFor(() => events.length === 2)
    expect(events.sort((x, y) => x.nodeId.localeCompare(y.nodeId))).toEqual([
      { type: 'peer:down', nodeId: c.nodeId },
      { type: 'peer:down', nodeId: d.nodeId },
    ])
    await expect(a.request(c.nodeId, '/p', bytes(1))).rejects.toBeInstanceOf(PeerUnreachableError)
    a.publish('t', bytes(1))
    await waitFor(() => got.length >= 1)
    // Publishing across the cut is silently lost: give any stray delivery the same ticks to show up.
    await new Promise((resolve) => setTimeout(resolve, 10))
    expect(got).toEqual([`${b.nodeId}<${a.nodeId}`])

    events.length = 0
    got.length = 0
    net.heal()
    expect(a.peers().sort()).toEqual([b.nodeId, c.nodeId, d.nodeId].sort())
    await waitFor(() => events.length === 2)
    expect(events.every((e) => e.type === 'peer:up')).toBe(true)
    expect([...(await a.request(c.nodeId, '/p', bytes(9)))]).toEqual([9])
    a.publish('t', bytes(1))
    await waitFor(() => got.length === 3)
    await Promise.all([a, b, c, d].map((t) => t.stop()))
  })

  async function lossRun(seed: number): Promise<{ received: number[]; dropped: number }> {
    const net = createMemoryNetwork({ seed, defaults: { loss: 0.3 } })
    const a = await net.createTransport()
    const b = await net.createTransport()
    const received: number[] = []
    b.subscribe('t', (d) => received.push(d[0]! + 256 * d[1]!))
    for (let i = 0; i < 300; i++) {
      a.publish('t', bytes(i % 256, i >> 8))
      // One publish per tick, so each is its own batch and its own loss decision.
      await new Promise((resolve) => setImmediate(resolve))
    }
    await new Promise((resolve) => setImmediate(resolve))
    const dropped = a.stats().droppedLoss
    await Promise.all([a.stop(), b.stop()])
    return { received, dropped }
  }

  it('loses messages at the configured rate, identically under the same seed', async () => {
    const first = await lossRun(42)
    const second = await lossRun(42)
    const other = await lossRun(43)
    expect(second.received).toEqual(first.received)
    expect(first.received.length + first.dropped).toBe(300)
    expect(first.dropped).toBeGreaterThan(60)
    expect(first.dropped).toBeLessThan(120)
    expect(other.received).not.toEqual(first.received)
  })

  it('delays delivery on a link by the configured ms, in both directions', async () => {
    const net = createMemoryNetwork({ seed: 5 })
    const a = await net.createTransport()
    const b = await net.createTransport()
    const c = await net.createTransport()
    net.setLink(a.nodeId, b.nodeId, { delay: 60 })
    b.handle('/p', (x) => x)
    c.handle('/p', (x) => x)
    let started = Date.now()
    await a.request(b.nodeId, '/p', bytes(1))
    expect(Date.now() - started).toBeGreaterThanOrEqual(115)
    started = Date.now()
    await a.request(c.nodeId, '/p', bytes(1))
    expect(Date.now() - started).toBeLessThan(50)
    // A delayed request still times out like a real one.
    net.setLink(a.nodeId, c.nodeId, { delay: 200 })
    await expect(a.request(c.nodeId, '/p', bytes(1), { timeout: 100 })).rejects.toMatchObject({
      name: 'TimeoutError',
    })
    // Total loss: requests time out, the peers stay up.
    net.setDefaults({ loss: 1 })
    net.setLink(a.nodeId, c.nodeId, {})
    await expect(a.request(c.nodeId, '/p', bytes(1), { timeout: 50 })).rejects.toMatchObject({
      name: 'TimeoutError',
    })
    expect(a.peers()).toContain(c.nodeId)
    await Promise.all([a.stop(), b.stop(), c.stop()])
  })

  it('validates its options', async () => {
    expect(() => createMemoryNetwork({ defaults: { loss: 2 } })).toThrow(InvalidOptionsError)
    const net = createMemoryNetwork({ seed: 1 })
    expect(() => net.setLink('x', 'y', { delay: -1 })).toThrow(InvalidOptionsError)
    const a = await net.createTransport({ nodeId: 'same' })
    await expect(net.createTransport({ nodeId: 'same' })).rejects.toBeInstanceOf(InvalidOptionsError)
    await expect(net.createTransport({ requestTimeout: -5 })).rejects.toBeInstanceOf(InvalidOptionsError)
    expect(net.seed).toBe(1)
    expect(net.nodeIds).toEqual(['same'])
    await a.stop()
    expect(net.nodeIds).toEqual([])
  })
})
