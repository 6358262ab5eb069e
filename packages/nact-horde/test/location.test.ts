import nact from 'nact'
import { type NactRef, spawnDistributed, uniformQuorumDistribution } from 'nact-horde'
import { afterEach, describe, expect, it } from 'vitest'
import { Cluster, type TestNode, waitFor } from './cluster.js'

let cluster: Cluster | undefined
afterEach(async () => {
  await cluster?.stop()
  cluster = undefined
})

const q = (ref: NactRef, make: (replyTo: unknown) => unknown, timeout = 2000) =>
  nact.query(ref as never, make as never, timeout) as Promise<unknown>

/** A plain nact actor on `node`'s system that records what it receives. */
function collector(node: TestNode, name: string) {
  const got: unknown[] = []
  const ref = nact.spawnStateless(
    node.system as never,
    (msg: unknown) => {
      got.push(msg)
    },
    name,
  )
  return { ref, got }
}

describe('refs reach a child wherever it runs', () => {
  it('nact query from each of 3 nodes reaches a child on another node, and the reply comes back', async () => {
    cluster = await Cluster.start(3)
    const ids = ['q-0', 'q-1', 'q-2', 'q-3', 'q-4', 'q-5']
    for (const id of ids) await cluster.nodes[0]!.horde.startChild({ id, behaviour: 'counter' })
    await waitFor(() => cluster!.exactlyOnce(ids))
    for (const n of cluster.nodes) {
      for (const id of ids) {
        const ref = n.horde.ref(id)
        nact.dispatch(ref as never, { add: 1 })
        // get comes after add from the same sender: it sees the add.
        expect(await q(ref, (replyTo) => ({ add: 0, replyTo }))).toBeGreaterThanOrEqual(1)
      }
    }
    for (const id of ids) expect(await q(cluster.nodes[1]!.horde.ref(id), (replyTo) => ({ replyTo }))).toBe(3)
    // At least some of those were cross-node.
    expect(cluster.nodes.some((n) => n.horde.routingStats().routedOut > 0)).toBe(true)
    // A query's reply-to proxy on the child's node is retired once it has answered.
    for (let i = 0; i < 50; i++) await q(cluster.nodes[0]!.horde.ref('q-0'), (replyTo) => ({ replyTo }))
    for (const n of cluster.nodes) expect(n.horde.routingStats().proxies).toBeLessThan(10)
  })

  it('a child talks to an actor on the caller’s node through a ref carried in the message (at any depth)', async () => {
    cluster = await Cluster.start(3)
    await cluster.nodes[0]!.horde.startChild({ id: 'talker', behaviour: 'counter' })
    await waitFor(() => cluster!.exactlyOnce(['talker']))
    const caller = cluster.nodes.find((n) => !n.horde.localChildren().some((c) => c.id === 'talker'))!
    const a = collector(caller, 'collector-a')
    const b = collector(caller, 'collector-b')
    nact.dispatch(caller.horde.ref('talker') as never, { add: 5, notify: [a.ref, b.ref] })
    await waitFor(() => a.got.length === 1 && b.got.length === 1, 2000, 'notifications')
    expect(a.got[0]).toEqual({ from: 'talker', value: 5 })
  })

  it('keeps each sender’s order to one child', async () => {
    cluster = await Cluster.start(2)
    await cluster.nodes[0]!.horde.startChild({ id: 'ordered', behaviour: 'log' })
    await waitFor(() => cluster!.exactlyOnce(['ordered']))
    const sender = cluster.nodes.find((n) => !n.horde.localChildren().some((c) => c.id === 'ordered'))!
    const ref = sender.horde.ref('ordered')
    for (let i = 0; i < 2000; i++) nact.dispatch(ref as never, { item: i })
    const list = (await q(ref, (dump) => ({ dump }), 5000)) as number[]
    expect(list).toEqual(Array.from({ length: 2000 }, (_, i) => i))
  })

  it('spawnDistributed from 3 nodes at once yields one child and working refs', async () => {
    cluster = await Cluster.start(3)
    const refs = await Promise.all(
      cluster.nodes.map((n) => spawnDistributed(n.horde, { id: 'shared', behaviour: 'counter' })),
    )
    await waitFor(() => cluster!.exactlyOnce(['shared']))
    for (const r of refs) nact.dispatch(r as never, { add: 1 })
    await waitFor(async () => (await q(refs[0]!, (replyTo) => ({ replyTo }))) === 3)
  })
})

describe('idle proxies', () => {
  it('a ref kept past its proxy’s idle expiry still reaches the child (the proxy is re-created)', async () => {
    cluster = await Cluster.start(2, { refIdleTimeout: 100 })
    await cluster.nodes[0]!.horde.startChild({ id: 'kept', behaviour: 'counter' })
    await waitFor(() => cluster!.exactlyOnce(['kept']))
    const sender = cluster.nodes.find((n) => !n.horde.localChildren().some((c) => c.id === 'kept'))!
    const ref = sender.horde.ref('kept')
    nact.dispatch(ref as never, { add: 1 })
    await waitFor(() => sender.horde.routingStats().proxies === 0, 3000, 'the proxy to expire')
    nact.dispatch(ref as never, { add: 1 })
    expect(await q(ref, (replyTo) => ({ replyTo }))).toBe(2)
  })
})

describe('messages while a child moves', () => {
  it('graceful stop: every message sent during the move arrives (within the buffer bound)', async () => {
    cluster = await Cluster.start(3)
    const ids = Array.from({ length: 20 }, (_, i) => `m-${i}`)
    for (const id of ids) await cluster.nodes[0]!.horde.startChild({ id, behaviour: 'counter' })
    await waitFor(() => cluster!.exactlyOnce(ids))
    const sender = cluster.nodes[0]!
    const leaving = cluster.nodes[1]!
    const dead: unknown[] = []
    for (const n of cluster.nodes) n.horde.addEventListener('message:dead', (e) => dead.push(e.detail))
    let sent = 0
    const stopping = leaving.horde.stop().then(() => {
      leaving.alive = false
    })
    let done = false
    void stopping.then(() => {
      done = true
    })
    while (!done) {
      for (const id of ids) nact.dispatch(sender.horde.ref(id) as never, { add: 1 })
      sent++
      await new Promise((r) => setTimeout(r, 1))
    }
    for (const id of ids) nact.dispatch(sender.horde.ref(id) as never, { add: 1 })
    sent++
    await waitFor(() => cluster!.exactlyOnce(ids))
    for (const id of ids) {
      await waitFor(
        async () => (await q(sender.horde.ref(id), (replyTo) => ({ replyTo }))) === sent,
        3000,
        `${id}`,
      )
    }
    expect(dead).toEqual([])
  })

  it('a crash leaves the child running nowhere: messages wait, beyond the bound they are reported dead, the held ones arrive after failover', async () => {
    // The quorum strategy makes the window deterministic: with two of three nodes crashed the
    // survivor has no quorum, so the child runs nowhere until members come back.
    cluster = await Cluster.start(3, { maxBuffer: 10, distributionStrategy: uniformQuorumDistribution() })
    await cluster.nodes[0]!.horde.startChild({ id: 'victim', behaviour: 'counter' })
    await waitFor(() => cluster!.exactlyOnce(['victim']))
    const owner = cluster.ownerOf('victim')!
    const sender = cluster.live.find((n) => n !== owner)!
    const dead: { reason: string }[] = []
    sender.horde.addEventListener('message:dead', (e) => dead.push(e.detail))
    for (const n of cluster.live) if (n !== sender) await cluster.crash(cluster.nodes.indexOf(n))
    for (let i = 0; i < 50; i++) nact.dispatch(sender.horde.ref('victim') as never, { add: 1 })
    await waitFor(() => dead.length === 40, 2000, '40 dead letters')
    expect(dead.every((d) => d.reason === 'buffer_full')).toBe(true)
    expect(sender.horde.routingStats().held).toBe(10)
    await cluster.add({ maxBuffer: 10, distributionStrategy: uniformQuorumDistribution() })
    await cluster.add({ maxBuffer: 10, distributionStrategy: uniformQuorumDistribution() })
    await waitFor(() => cluster!.exactlyOnce(['victim']), 3000, 'failover once quorum is back')
    await waitFor(
      async () => (await q(sender.horde.ref('victim'), (replyTo) => ({ replyTo }))) === 10,
      3000,
      'held',
    )
  })
})

describe('dead letters', () => {
  it('an unknown id and an unserialisable message are reported, not dropped silently', async () => {
    cluster = await Cluster.start(2)
    await cluster.nodes[0]!.horde.startChild({ id: 'there', behaviour: 'counter' })
    await waitFor(() => cluster!.exactlyOnce(['there']))
    const sender = cluster.nodes.find((n) => !n.horde.localChildren().some((c) => c.id === 'there'))!
    const dead: { id: string; reason: string; error?: unknown }[] = []
    sender.horde.addEventListener('message:dead', (e) => dead.push(e.detail))
    nact.dispatch(sender.horde.ref('nobody') as never, { add: 1 })
    nact.dispatch(sender.horde.ref('there') as never, { add: 1, f: () => 1 })
    await waitFor(() => dead.length === 2)
    expect(dead.map((d) => d.reason).sort()).toEqual(['not_found', 'not_serializable'])
    expect((dead.find((d) => d.reason === 'not_serializable')!.error as Error).name).toBe(
      'NotSerializableError',
    )
  })
})

describe('handoff through refs', () => {
  it('messages drained from a moving child keep their nact sender: the new owner answers it', async () => {
    cluster = await Cluster.start(2)
    const [a, b] = cluster.nodes as [TestNode, TestNode]
    await a.horde.startChild({ id: 'mover', behaviour: 'counter' })
    await waitFor(() => cluster!.exactlyOnce(['mover']))
    const owner = a.horde.localChildren().length > 0 ? a : b
    const driver = owner === a ? b : a
    const replies = collector(driver, 'replies')
    const ref = driver.horde.ref('mover')
    const N = 2000
    // nact's own typings omit dispatch's third argument (the sender), which it supports.
    const dispatch = nact.dispatch as unknown as (to: unknown, msg: unknown, sender: unknown) => void
    for (let i = 0; i < N; i++) dispatch(ref, { add: 1, get: true }, replies.ref)
    // Stop the owner once the first messages are handled: the rest are still in its mailbox
    // and are drained to the driver, which now runs the child.
    await waitFor(() => replies.got.length > 0, 3000, 'the first answer')
    await owner.horde.stop()
    owner.alive = false
    await waitFor(() => replies.got.length === N, 5000, `all ${N} answers`)
    // Every message was handled exactly once, in order, across the move.
    expect(replies.got).toEqual(Array.from({ length: N }, (_, i) => i))
  })

  it('100 counters keep their counts through a graceful stop and an active redistribution', async () => {
    cluster = await Cluster.start(2, { processRedistribution: 'active' })
    const ids = Array.from({ length: 100 }, (_, i) => `h-${i}`)
    const driver = cluster.nodes[0]!
    for (const id of ids) await spawnDistributed(driver.horde, { id, behaviour: 'counter' })
    for (let k = 0; k < 5; k++) for (const id of ids) nact.dispatch(driver.horde.ref(id) as never, { add: 1 })
    const counts = async () =>
      Promise.all(ids.map((id) => q(driver.horde.ref(id), (replyTo) => ({ replyTo }))))
    await waitFor(async () => (await counts()).every((c) => c === 5), 3000, 'counts')
    await cluster.add({ processRedistribution: 'active' })
    await cluster.settle()
    await waitFor(() => cluster!.nodes[2]!.horde.localChildren().length > 10, 3000, 'rebalancing')
    await waitFor(() => cluster!.exactlyOnce(ids))
    expect(await counts()).toEqual(ids.map(() => 5))
    await cluster.nodes[1]!.horde.stop()
    cluster.nodes[1]!.alive = false
    await waitFor(() => cluster!.exactlyOnce(ids))
    expect(await counts()).toEqual(ids.map(() => 5))
  })
})
