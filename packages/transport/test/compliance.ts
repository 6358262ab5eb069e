// The behaviour every Transport must show, run against the libp2p and the memory
// implementation alike (see libp2p.test.ts and memory.test.ts).
import {
  AbortError,
  MessageTooLargeError,
  NoHandlerError,
  PeerUnreachableError,
  RemoteError,
  TimeoutError,
  type Transport,
  TransportStoppedError,
} from '@nact-horde/transport'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bytes, nextPeerEvent, recordPeerEvents, str, text, waitFor } from './helpers.js'

/** Options a compliance setup must honour. */
export interface SetupOptions {
  maxMessageBytes?: number
}

/** N transports that are all up with each other, a way to add one more, and a teardown. */
export interface Cluster {
  transports: Transport[]
  /** Creates one more transport that joins the cluster (it may not be up yet). */
  add(): Promise<Transport>
  /** Stops every transport created by the setup, including added ones. */
  teardown(): Promise<void>
  /** A node id nobody in the cluster has (well-formed for the implementation). */
  unknownNodeId: string
}

export type Setup = (n: number, options?: SetupOptions) => Promise<Cluster>

/** Publishes probes from `from` until every transport in `to` has received one on `topic`. */
async function awaitSubscriptions(from: Transport, to: Transport[], topic: string): Promise<void> {
  const seen = new Set<string>()
  const offs = to.map((t) => t.subscribe(topic, () => seen.add(t.nodeId)))
  try {
    const deadline = Date.now() + 10_000
    while (seen.size < to.length) {
      if (Date.now() > deadline) throw new Error(`subscriptions to ${topic} did not propagate`)
      from.publish(topic, bytes(0))
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  } finally {
    for (const off of offs) off()
  }
}

/** Registers the compliance suite for one implementation. */
export function runTransportTests(name: string, setup: Setup): void {
  describe(`${name}: Transport compliance`, () => {
    let cluster: Cluster
    let a: Transport
    let b: Transport
    let c: Transport

    beforeAll(async () => {
      cluster = await setup(3, { maxMessageBytes: 64 * 1024 })
      ;[a, b, c] = cluster.transports as [Transport, Transport, Transport]
    })
    afterAll(async () => {
      await cluster.teardown()
    })

    it('has an identity and sees the others as peers', () => {
      for (const t of [a, b, c]) {
        expect(typeof t.nodeId).toBe('string')
        expect(t.addresses.length).toBeGreaterThan(0)
        expect(t.peers().sort()).toEqual(
          [a, b, c]
            .filter((x) => x !== t)
            .map((x) => x.nodeId)
            .sort(),
        )
      }
    })

    it('delivers publications to every other subscriber, in order, with the sender id', async () => {
      const topic = 'news'
      const received = new Map<string, Array<{ v: string; from: string }>>()
      const offs = [a, b, c].map((t) =>
        t.subscribe(topic, (data, from) => {
          const list = received.get(t.nodeId) ?? []
          list.push({ v: str(data), from })
          received.set(t.nodeId, list)
        }),
      )
      await awaitSubscriptions(a, [b, c], 'news-probe')
      await awaitSubscriptions(b, [a, c], 'news-probe')
      await awaitSubscriptions(c, [a, b], 'news-probe')
      // Wait for the real topic too, then start counting afresh.
      await awaitSubscriptions(a, [b, c], topic)
      await awaitSubscriptions(b, [a], topic)
      received.clear()
      for (let i = 0; i < 50; i++) a.publish(topic, text(`a${i}`))
      b.publish(topic, text('b0'))
      c.publish(topic, text('c0'))
      await waitFor(
        () => (received.get(b.nodeId)?.length ?? 0) >= 51 && (received.get(c.nodeId)?.length ?? 0) >= 51,
      )
      await waitFor(() => (received.get(a.nodeId)?.length ?? 0) >= 2)
      const fromA = (t: Transport) =>
        received
          .get(t.nodeId)!
          .filter((m) => m.from === a.nodeId)
          .map((m) => m.v)
      const expected = Array.from({ length: 50 }, (_, i) => `a${i}`)
      expect(fromA(b)).toEqual(expected)
      expect(fromA(c)).toEqual(expected)
      expect(
        received
          .get(a.nodeId)!
          .map((m) => `${m.v}:${m.from}`)
          .sort(),
      ).toEqual([`b0:${b.nodeId}`, `c0:${c.nodeId}`].sort())
      for (const off of offs) off()
    })

    it('hands each receiver its own copy, taken at publish time', async () => {
      const got: Uint8Array[] = []
      const off = b.subscribe('copies', (data) => got.push(data))
      await awaitSubscriptions(a, [b], 'copies')
      got.length = 0
      const buf = bytes(1, 2, 3)
      a.publish('copies', buf)
      buf[0] = 99
      await waitFor(() => got.length >= 1)
      expect([...got[0]!]).toEqual([1, 2, 3])
      expect(got[0]).not.toBe(buf)
      off()
    })

    it('publishing with no subscribers, or after unsubscribing, is not an error', async () => {
      expect(() => a.publish('nobody-listens', bytes(1))).not.toThrow()
      let count = 0
      const off = b.subscribe('gone', () => count++)
      await awaitSubscriptions(a, [b], 'gone')
      off()
      count = 0
      a.publish('gone', bytes(1))
      // An unsubscribed handler is never called, whatever arrives.
      await new Promise((resolve) => setTimeout(resolve, 50))
      expect(count).toBe(0)
    })

    it('refuses a publication over maxMessageBytes', () => {
      expect(() => a.publish('big', new Uint8Array(64 * 1024 + 1))).toThrow(MessageTooLargeError)
    })

    it('answers a request with the remote handler result and the caller id', async () => {
      b.handle('/echo/1', (data, from) => Uint8Array.from([...data, ...text(from)]))
      const reply = await a.request(b.nodeId, '/echo/1', bytes(7, 8))
      expect([...reply.subarray(0, 2)]).toEqual([7, 8])
      expect(str(reply.subarray(2))).toBe(a.nodeId)
    })

    it('multiplexes 200 concurrent requests safely', async () => {
      c.handle('/double/1', async (data) => {
        await new Promise((resolve) => setTimeout(resolve, data[0]! % 7))
        return Uint8Array.from(data, (x) => (x * 2) % 256)
      })
      const replies = await Promise.all(
        Array.from({ length: 200 }, (_, i) => a.request(c.nodeId, '/double/1', bytes(i % 256, (i >> 8) + 1))),
      )
      replies.forEach((r, i) => {
        expect([...r]).toEqual([((i % 256) * 2) % 256, ((i >> 8) + 1) * 2])
      })
    })

    it('rejects with TimeoutError when no answer comes in time', async () => {
      b.handle('/never/1', () => new Promise<Uint8Array>(() => {}))
      const started = Date.now()
      const err = await a.request(b.nodeId, '/never/1', bytes(1), { timeout: 150 }).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(TimeoutError)
      expect((err as Error).name).toBe('TimeoutError')
      expect(Date.now() - started).toBeGreaterThanOrEqual(140)
      expect(Date.now() - started).toBeLessThan(1500)
    })

    it('rejects with AbortError when the signal aborts, before or during the request', async () => {
      b.handle('/slow/1', () => new Promise<Uint8Array>(() => {}))
      const controller = new AbortController()
      const pending = a.request(b.nodeId, '/slow/1', bytes(1), { signal: controller.signal, timeout: 5000 })
      setTimeout(() => controller.abort(), 20)
      await expect(pending).rejects.toBeInstanceOf(AbortError)
      await expect(
        a.request(b.nodeId, '/slow/1', bytes(1), { signal: AbortSignal.abort() }),
      ).rejects.toBeInstanceOf(AbortError)
    })

    it('turns a throwing handler into a RemoteError carrying its message', async () => {
      b.handle('/throws/1', () => {
        throw new Error('boom sync')
      })
      b.handle('/rejects/1', async () => {
        throw new Error('boom async')
      })
      const e1 = await a.request(b.nodeId, '/throws/1', bytes(1)).catch((e: unknown) => e)
      expect(e1).toBeInstanceOf(RemoteError)
      expect((e1 as RemoteError).remoteMessage).toBe('boom sync')
      expect((e1 as RemoteError).nodeId).toBe(b.nodeId)
      const e2 = await a.request(b.nodeId, '/rejects/1', bytes(1)).catch((e: unknown) => e)
      expect(e2).toBeInstanceOf(RemoteError)
      expect((e2 as RemoteError).remoteMessage).toBe('boom async')
    })

    it('rejects with NoHandlerError when the remote handles no such protocol', async () => {
      const err = await a.request(b.nodeId, '/nobody/1', bytes(1)).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(NoHandlerError)
      const off = b.handle('/later/1', () => bytes(5))
      expect([...(await a.request(b.nodeId, '/later/1', bytes(1)))]).toEqual([5])
      off()
      await expect(a.request(b.nodeId, '/later/1', bytes(1))).rejects.toBeInstanceOf(NoHandlerError)
    })

    it('rejects with PeerUnreachableError for an unknown node', async () => {
      const err = await a
        .request(cluster.unknownNodeId, '/echo/1', bytes(1), { timeout: 3000 })
        .catch((e: unknown) => e)
      expect(err).toBeInstanceOf(PeerUnreachableError)
      expect((err as PeerUnreachableError).nodeId).toBe(cluster.unknownNodeId)
      await expect(a.request('not-a-node', '/echo/1', bytes(1))).rejects.toBeInstanceOf(PeerUnreachableError)
    })

    it('calls the local handler directly for a request to itself', async () => {
      a.handle('/self/1', (data, from) => Uint8Array.from([data[0]! + 1, from === a.nodeId ? 1 : 0]))
      expect([...(await a.request(a.nodeId, '/self/1', bytes(41)))]).toEqual([42, 1])
      await expect(a.request(a.nodeId, '/none/1', bytes(1))).rejects.toBeInstanceOf(NoHandlerError)
    })

    it('refuses requests and responses over maxMessageBytes', async () => {
      await expect(a.request(b.nodeId, '/echo/1', new Uint8Array(64 * 1024 + 1))).rejects.toBeInstanceOf(
        MessageTooLargeError,
      )
      b.handle('/huge/1', () => new Uint8Array(64 * 1024 + 1))
      await expect(a.request(b.nodeId, '/huge/1', bytes(1))).rejects.toBeInstanceOf(MessageTooLargeError)
    })

    it('reports peer:up once when a node joins and peer:down once when it stops', async () => {
      const events = recordPeerEvents(a)
      const d = await cluster.add()
      await waitFor(() => a.peers().includes(d.nodeId) && d.peers().includes(a.nodeId))
      const down = nextPeerEvent(a, 'peer:down', d.nodeId)
      await d.stop()
      await down
      expect(a.peers()).not.toContain(d.nodeId)
      expect(events.filter((e) => e.nodeId === d.nodeId)).toEqual([
        { type: 'peer:up', nodeId: d.nodeId },
        { type: 'peer:down', nodeId: d.nodeId },
      ])
    })

    it('fails a request pending on a node that stops, instead of hanging', async () => {
      const d = await cluster.add()
      await waitFor(() => a.peers().includes(d.nodeId) && d.peers().includes(a.nodeId))
      d.handle('/hang/1', () => new Promise<Uint8Array>(() => {}))
      const outcome = a.request(d.nodeId, '/hang/1', bytes(1), { timeout: 10_000 }).catch((e: unknown) => e)
      // Let the request reach d before stopping it.
      await new Promise((resolve) => setTimeout(resolve, 30))
      const started = Date.now()
      await d.stop()
      expect(await outcome).toBeInstanceOf(PeerUnreachableError)
      expect(Date.now() - started).toBeLessThan(3000)
    })

    it('rejects a request to a node that has stopped with PeerUnreachableError, well before its timeout', async () => {
      const d = await cluster.add()
      await waitFor(() => a.peers().includes(d.nodeId) && d.peers().includes(a.nodeId))
      d.handle('/echo/1', (x) => x)
      expect([...(await a.request(d.nodeId, '/echo/1', bytes(1)))]).toEqual([1])
      const down = nextPeerEvent(a, 'peer:down', d.nodeId)
      await d.stop()
      await down
      const started = Date.now()
      const err = await a.request(d.nodeId, '/echo/1', bytes(2), { timeout: 10_000 }).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(PeerUnreachableError)
      expect(err).not.toBeInstanceOf(TimeoutError)
      expect((err as PeerUnreachableError).nodeId).toBe(d.nodeId)
      expect(Date.now() - started).toBeLessThan(5000)
    })

    it('stops gracefully and idempotently', async () => {
      const d = await cluster.add()
      await waitFor(() => d.peers().includes(a.nodeId))
      a.handle('/hang2/1', () => new Promise<Uint8Array>(() => {}))
      const outcome = d.request(a.nodeId, '/hang2/1', bytes(1), { timeout: 10_000 }).catch((e: unknown) => e)
      await Promise.all([d.stop(), d.stop()])
      await d.stop()
      expect(await outcome).toBeInstanceOf(TransportStoppedError)
      await expect(d.request(a.nodeId, '/echo/1', bytes(1))).rejects.toBeInstanceOf(TransportStoppedError)
      expect(() => d.publish('news', bytes(1))).not.toThrow()
      expect(d.peers()).toEqual([])
    })
  })
}
