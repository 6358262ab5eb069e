/**
 * The Router on its own: nodes are Routers wired to each other in-process, each with a `locate`
 * the test sets, so replicas that disagree about a child's owner can be staged exactly.
 */
import { Packr } from 'msgpackr'
import { afterEach, describe, expect, it } from 'vitest'
import { type NactRef, nact } from '../src/local/nact.js'
import { ProtocolError } from '../src/protocol.js'
import { BOUNCE_DELAY, type DeadReason, type Location, MAX_HOPS, Router } from '../src/routing.js'

interface Node {
  id: string
  router: Router
  system: NactRef
  /** Where this node's replica says each child runs (default: nowhere known). */
  where: Map<string, Location>
  delivered: Array<{ id: string; message: unknown }>
  dead: Array<{ id: string; reason: DeadReason; message: unknown; at: number }>
  /** The hop count of every entry this node received, in order. */
  hopsIn: number[]
}

let nodes: Map<string, Node>

function cluster(ids: string[], options: { maxWait?: number } = {}): Node[] {
  nodes = new Map()
  for (const id of ids) {
    const system = nact.start()
    const node: Node = {
      id,
      system,
      where: new Map(),
      delivered: [],
      dead: [],
      hopsIn: [],
      router: undefined as unknown as Router,
    }
    node.router = new Router(
      {
        nodeId: id,
        locate: (child) => node.where.get(child) ?? { kind: 'none' },
        deliverLocal: (child, message) => {
          node.delivered.push({ id: child, message })
          return true
        },
        sendBatch: async (to, batch) => {
          await new Promise((r) => setImmediate(r)) // a network hop is never synchronous
          const peer = nodes.get(to)
          if (peer === undefined) throw new Error(`no node ${to}`)
          peer.hopsIn.push(...(unpack(batch) as unknown[][]).map((item) => item[4] as number))
          peer.router.receiveBatch(batch, id)
        },
        dead: (child, reason, message) => node.dead.push({ id: child, reason, message, at: Date.now() }),
      },
      system,
      `router-test-${id}`,
      options,
    )
    nodes.set(id, node)
  }
  return [...nodes.values()]
}

const packr = new Packr({ useRecords: false })
const unpack = (bytes: Uint8Array) => packr.unpack(bytes) as unknown

afterEach(() => {
  for (const n of nodes?.values() ?? []) {
    n.router.stop()
    nact.stop(n.system)
  }
})

/** Polls `pred` until it holds; fails after `timeoutMs`. For conditions no event announces. */
async function waitFor(pred: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

const allDead = () => [...nodes.values()].flatMap((n) => n.dead)
const held = () => [...nodes.values()].reduce((sum, n) => sum + n.router.size().held, 0)

describe('Router: a message two nodes disagree about', () => {
  it('is passed back and forth at most MAX_HOPS times, then reported unreachable', async () => {
    const [a, b] = cluster(['a', 'b'], { maxWait: 60_000 })
    a!.where.set('x', { kind: 'remote', node: 'b' })
    b!.where.set('x', { kind: 'remote', node: 'a' })
    const t0 = Date.now()
    a!.router.route('x', { n: 1 }, undefined)
    // each hand-back waits BOUNCE_DELAY first; sweeps run every 250 ms
    await waitFor(() => allDead().length > 0, MAX_HOPS * (BOUNCE_DELAY + 500), 'the message to be given up')
    expect(allDead()).toMatchObject([{ id: 'x', reason: 'unreachable', message: { n: 1 } }])
    expect(Date.now() - t0).toBeGreaterThanOrEqual((MAX_HOPS - 1) * BOUNCE_DELAY)
    expect([...a!.hopsIn, ...b!.hopsIn].sort()).toEqual([1, 2, 3, 4])
    expect(held()).toBe(0)
    expect(a!.delivered.length + b!.delivered.length).toBe(0)
  }, 15_000)

  it('is reported expired once older than maxWait, counted from when it was first sent', async () => {
    const [a, b] = cluster(['a', 'b'], { maxWait: 700 })
    a!.where.set('x', { kind: 'remote', node: 'b' })
    b!.where.set('x', { kind: 'remote', node: 'a' })
    const t0 = Date.now()
    a!.router.route('x', 'hello', undefined)
    await waitFor(() => allDead().length > 0, 3000, 'the message to expire')
    expect(allDead()).toMatchObject([{ id: 'x', reason: 'expired', message: 'hello' }])
    expect(allDead()[0]!.at - t0).toBeLessThan(700 + 500)
    expect(held()).toBe(0)
  })

  it('keeps its age when held on several nodes in turn', async () => {
    const [a, b] = cluster(['a', 'b'], { maxWait: 800 })
    a!.where.set('x', { kind: 'wait' }) // moving: a holds it
    b!.where.set('x', { kind: 'wait' }) // and b never sees it run
    const t0 = Date.now()
    a!.router.route('x', 'late', undefined)
    await new Promise((r) => setTimeout(r, 500))
    a!.where.set('x', { kind: 'remote', node: 'b' }) // a's next sweep sends it to b, which holds it
    await waitFor(() => allDead().length > 0, 3000, 'the message to expire')
    expect(b!.hopsIn).toEqual([1])
    expect(allDead()).toMatchObject([{ id: 'x', reason: 'expired', message: 'late' }])
    // 800 ms after it was sent, not 800 ms after it reached b (≥ 1300)
    expect(allDead()[0]!.at - t0).toBeLessThan(1250)
  })

  it('still arrives when the receiver’s replica was the one behind', async () => {
    const [a, b] = cluster(['a', 'b'])
    a!.where.set('x', { kind: 'remote', node: 'b' })
    b!.where.set('x', { kind: 'remote', node: 'a' })
    a!.router.route('x', 1, undefined)
    await waitFor(() => b!.router.size().held === 1, 2000, 'b to hold it')
    b!.where.set('x', { kind: 'local' })
    await waitFor(() => b!.delivered.length === 1, 2000, 'delivery on b')
    expect(allDead()).toEqual([])
  })

  it('still arrives when the sender’s replica was the one behind (handed back after BOUNCE_DELAY)', async () => {
    const [a, b] = cluster(['a', 'b'])
    a!.where.set('x', { kind: 'remote', node: 'b' })
    b!.where.set('x', { kind: 'remote', node: 'a' })
    a!.router.route('x', 1, undefined)
    await waitFor(() => b!.router.size().held === 1, 2000, 'b to hold it')
    a!.where.set('x', { kind: 'local' })
    await waitFor(() => a!.delivered.length === 1, BOUNCE_DELAY + 2000, 'delivery on a')
    expect(b!.hopsIn).toEqual([1])
    expect(a!.hopsIn).toEqual([2])
    expect(allDead()).toEqual([])
  })
})

describe('Router: a node that leaves', () => {
  it('drain() sends what it holds for a child elsewhere at once, even back to where it came from', async () => {
    const [a, b] = cluster(['a', 'b'])
    a!.where.set('x', { kind: 'remote', node: 'b' })
    b!.where.set('x', { kind: 'remote', node: 'a' })
    a!.router.route('x', 'do not lose me', undefined)
    await waitFor(() => b!.router.size().held === 1, 2000, 'b to hold it')
    a!.where.set('x', { kind: 'local' }) // a owns it by now
    const t0 = Date.now()
    await b!.router.drain(2000)
    b!.router.stop()
    await waitFor(() => a!.delivered.length === 1, 1000, 'delivery on a')
    expect(Date.now() - t0).toBeLessThan(BOUNCE_DELAY)
    expect(allDead()).toEqual([])
  })
})

describe('Router: batches from other nodes', () => {
  it('drops and counts malformed entries, takes the valid ones, and never throws for an entry', () => {
    const [a] = cluster(['a'])
    a!.where.set('x', { kind: 'local' })
    const entries: unknown[] = [
      [0, 'x', 'ok', null, 1, 12],
      [0, 'x', 'legacy, without an age', null, 1],
      [0, 'x', 'negative hops', null, -1, 0],
      [0, 'x', 'fractional hops', null, 1.5, 0],
      [0, 'x', 'hops as text', null, '1', 0],
      [0, 'x', 'negative age', null, 1, -5],
      [0, 'x', 'age as text', null, 1, '5'],
      [0, 'x', 'too many fields', null, 1, 0, 'extra'],
      [0, 42, 'id not a string', null, 1, 0],
      [1, { not: 'a marker' }, 'ref not a marker', null, 1, 0],
      [7, 'x', 'unknown kind', null, 1, 0],
      'not an entry',
      null,
      [0, 'x', 'ok too', null, 3, 0],
    ]
    a!.router.receiveBatch(packr.pack(entries), 'b')
    expect(a!.delivered.map((d) => d.message)).toEqual(['ok', 'legacy, without an age', 'ok too'])
    expect(a!.router.stats.malformed).toBe(entries.length - 3)
    expect(a!.router.stats.routedIn).toBe(3)
  })

  it('refuses bytes that are not a batch with ProtocolError, counted', () => {
    const [a] = cluster(['a'])
    expect(() => a!.router.receiveBatch(new Uint8Array([0xc1]), 'b')).toThrow(ProtocolError)
    expect(() => a!.router.receiveBatch(packr.pack({ not: 'an array' }), 'b')).toThrow(ProtocolError)
    expect(a!.router.stats.malformed).toBe(2)
  })

  it('a valid entry past its time is delivered only by the child’s own node', () => {
    const [a] = cluster(['a'], { maxWait: 1000 })
    a!.where.set('here', { kind: 'local' })
    a!.where.set('elsewhere', { kind: 'remote', node: 'c' })
    a!.where.set('moving', { kind: 'wait' })
    a!.router.receiveBatch(
      packr.pack([
        [0, 'here', 'old', null, 2, 5000],
        [0, 'elsewhere', 'old', null, 2, 5000],
        [0, 'moving', 'old', null, 2, 5000],
      ]),
      'b',
    )
    expect(a!.delivered).toEqual([{ id: 'here', message: 'old' }])
    expect(a!.dead.map((d) => [d.id, d.reason])).toEqual([
      ['elsewhere', 'expired'],
      ['moving', 'expired'],
    ])
  })
})
