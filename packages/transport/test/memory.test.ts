import {
  createMemoryNetwork,
  InvalidOptionsError,
  MessageTooLargeError,
  PeerUnreachableError,
  TimeoutError,
  type Transport,
} from '@nact-horde/transport'
import { describe, expect, it } from 'vitest'
import { runTransportTests } from './compliance.js'
import { bytes, nextPeerEvent, recordPeerEvents, str, text, waitFor } from './helpers.js'

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

describe('memory network faults', () => {
  /** Everything a node observes, in order: messages on 't', peer events, stalls. */
  function observe(t: Transport): string[] {
    const seen: string[] = []
    t.subscribe('t', (data, from) => seen.push(`msg ${str(data)} from ${from}`))
    t.addEventListener('peer:up', (e) => seen.push(`up ${e.detail.nodeId}`))
    t.addEventListener('peer:down', (e) => seen.push(`down ${e.detail.nodeId}`))
    t.addEventListener('stall', () => seen.push('stall'))
    return seen
  }

  it('cutOneWay drops one direction: the receiver sees the sender down after its failureTimeout, the sender still sees it up', async () => {
    const net = createMemoryNetwork({ seed: 11 })
    const [a, b, c] = await Promise.all(
      ['a', 'b', 'c'].map((nodeId) => net.createTransport({ nodeId, failureTimeout: 200 })),
    )
    if (!a || !b || !c) throw new Error('setup')
    const seenA = observe(a)
    const seenB = observe(b)
    let handledByA = 0
    a.handle('/p', (x) => {
      handledByA++
      return x
    })
    b.handle('/p', (x) => x)
    const down = nextPeerEvent(b, 'peer:down', a.nodeId, 2000)
    const cutAt = performance.now()
    net.cutOneWay(a.nodeId, b.nodeId)

    a.publish('t', text('a1'))
    b.publish('t', text('b1'))
    await waitFor(() => seenA.includes('msg b1 from b'))
    // a → b: the request is lost on the cut; at its timeout it is unreachable, not slow.
    let started = performance.now()
    const lost = await a.request(b.nodeId, '/p', bytes(1), { timeout: 100 }).catch((e: unknown) => e)
    expect(lost).toBeInstanceOf(PeerUnreachableError)
    expect(lost).not.toBeInstanceOf(TimeoutError)
    expect(performance.now() - started).toBeGreaterThanOrEqual(95)
    // b → a: a answers, the answer is lost on the way back.
    started = performance.now()
    const unanswered = await b.request(a.nodeId, '/p', bytes(2), { timeout: 50 }).catch((e: unknown) => e)
    expect(unanswered).toBeInstanceOf(PeerUnreachableError)
    expect(handledByA).toBe(1)

    await down
    expect(performance.now() - cutAt).toBeGreaterThanOrEqual(195)
    expect(b.peers().sort()).toEqual([c.nodeId])
    expect(a.peers().sort()).toEqual([b.nodeId, c.nodeId])
    expect(c.peers().sort()).toEqual([a.nodeId, b.nodeId])
    expect(seenA).toEqual(['msg b1 from b'])
    expect(seenB).toEqual([`down ${a.nodeId}`])

    net.heal()
    await waitFor(() => seenB.includes(`up ${a.nodeId}`))
    expect([...(await b.request(a.nodeId, '/p', bytes(3)))]).toEqual([3])
    a.publish('t', text('a2'))
    await waitFor(() => seenB.includes('msg a2 from a'))
    expect(seenB).toEqual([`down ${a.nodeId}`, `up ${a.nodeId}`, 'msg a2 from a'])
    await Promise.all([a, b, c].map((t) => t.stop()))
  })

  it('pause queues traffic both ways; the others give up after their failureTimeout; resume replays in order, then stall, then the outbox', async () => {
    const net = createMemoryNetwork({ seed: 12 })
    const a = await net.createTransport({ nodeId: 'a', failureTimeout: 150 })
    const b = await net.createTransport({ nodeId: 'b', failureTimeout: 150 })
    // c's failure timeout outlasts the pause: it never gives up on b.
    const c = await net.createTransport({ nodeId: 'c', failureTimeout: 10_000 })
    const [allA, seenB, allC] = [a, b, c].map(observe) as [string[], string[], string[]]
    // What a and c see of b (they also hear each other's messages).
    const ofB = (seen: string[]) => seen.filter((e) => !e.startsWith('msg') || e.endsWith('from b'))
    let stallMs = -1
    b.addEventListener('stall', (e) => {
      stallMs = e.detail.ms
    })
    b.handle('/p', (x) => x)
    c.handle('/p', (x) => x)

    const pausedAt = performance.now()
    net.pause(b.nodeId)
    a.publish('t', text('a1'))
    c.publish('t', text('c1'))
    b.publish('t', text('b1'))
    const fromC = c.request(b.nodeId, '/p', bytes(7), { timeout: 5000 })
    // b's own timers keep running: its request cannot leave, and expires as unreachable.
    const fromB = await b.request(c.nodeId, '/p', bytes(1), { timeout: 60 }).catch((e: unknown) => e)
    expect(fromB).toBeInstanceOf(PeerUnreachableError)

    await nextPeerEvent(a, 'peer:down', b.nodeId, 2000)
    expect(performance.now() - pausedAt).toBeGreaterThanOrEqual(145)
    // a hung up on b: a request now fails at once, a publication is dropped.
    const started = performance.now()
    await expect(a.request(b.nodeId, '/p', bytes(1), { timeout: 5000 })).rejects.toBeInstanceOf(
      PeerUnreachableError,
    )
    expect(performance.now() - started).toBeLessThan(50)
    a.publish('t', text('a2'))
    // A newcomer cannot meet a frozen node.
    const d = await net.createTransport({ nodeId: 'd', failureTimeout: 150 })
    expect(d.peers().sort()).toEqual([a.nodeId, c.nodeId])
    await waitFor(() => ofB(allC).length > 0)
    expect(ofB(allC)).toEqual([`up ${d.nodeId}`])
    // Nothing reached b, nothing left it; it still believes what it last knew.
    expect(seenB).toEqual([])
    expect(b.peers().sort()).toEqual([a.nodeId, c.nodeId])
    expect(ofB(allA)).toEqual([`down ${b.nodeId}`, `up ${d.nodeId}`])

    await net.resume(b.nodeId)
    const pauseMs = performance.now() - pausedAt
    await waitFor(() => ofB(allA).includes(`up ${b.nodeId}`) && seenB.includes(`up ${a.nodeId}`))
    await waitFor(() => seenB.includes(`up ${d.nodeId}`))
    expect(seenB).toEqual([
      'msg a1 from a',
      'msg c1 from c',
      `down ${a.nodeId}`,
      'stall',
      `up ${a.nodeId}`,
      `up ${d.nodeId}`,
    ])
    expect(stallMs).toBeGreaterThanOrEqual(145)
    expect(stallMs).toBeLessThanOrEqual(pauseMs + 1)
    expect(ofB(allA)).toEqual([`down ${b.nodeId}`, `up ${d.nodeId}`, 'msg b1 from b', `up ${b.nodeId}`])
    // c waited it out: its request is answered and it never saw b down.
    expect([...(await fromC)]).toEqual([7])
    await waitFor(() => ofB(allC).includes('msg b1 from b'))
    expect(ofB(allC)).toEqual([`up ${d.nodeId}`, 'msg b1 from b'])
    expect([...(await a.request(b.nodeId, '/p', bytes(9)))]).toEqual([9])
    await Promise.all([a, b, c, d].map((t) => t.stop()))
  })

  it('a request to a paused node rejects at its timeout as unreachable, and is answered if the node resumes in time', async () => {
    const net = createMemoryNetwork({ seed: 13 })
    const a = await net.createTransport({ failureTimeout: 5000 })
    const b = await net.createTransport({ failureTimeout: 5000 })
    b.handle('/p', (x) => x)
    net.pause(b.nodeId)
    const late = await a.request(b.nodeId, '/p', bytes(1), { timeout: 50 }).catch((e: unknown) => e)
    expect(late).toBeInstanceOf(PeerUnreachableError)
    expect((late as PeerUnreachableError).nodeId).toBe(b.nodeId)
    // Oversize is refused before anything is sent, paused or not.
    await expect(a.request(b.nodeId, '/p', new Uint8Array(17 * 1024 * 1024))).rejects.toBeInstanceOf(
      MessageTooLargeError,
    )
    const answered = a.request(b.nodeId, '/p', bytes(2), { timeout: 5000 })
    await net.resume(b.nodeId)
    expect([...(await answered)]).toEqual([2])
    await Promise.all([a.stop(), b.stop()])
  })

  it('validates pause, resume and cutOneWay arguments', async () => {
    const net = createMemoryNetwork({ seed: 14 })
    const a = await net.createTransport()
    expect(() => net.pause('nobody')).toThrow(InvalidOptionsError)
    expect(() => net.cutOneWay(a.nodeId, a.nodeId)).toThrow(InvalidOptionsError)
    expect(() => net.cutOneWay('', a.nodeId)).toThrow(InvalidOptionsError)
    await expect(net.resume(a.nodeId)).resolves.toBeUndefined()
    net.pause(a.nodeId)
    net.pause(a.nodeId)
    const resuming = net.resume(a.nodeId)
    expect(() => net.pause(a.nodeId)).toThrow(InvalidOptionsError)
    await resuming
    await a.stop()
  })
})
