// Failure authority on the memory network: no node acts alone on its own view of who is dead.
// Each scenario samples what every node actually runs (its local supervisor), not only what
// the map says.

import { uniformQuorumDistribution } from 'nact-horde'
import { afterEach, describe, expect, it } from 'vitest'
import { Cluster, type TestNode, waitFor } from './cluster.js'

let cluster: Cluster | undefined
afterEach(async () => {
  await cluster?.stop()
  cluster = undefined
})

const ids = (n: number, prefix = 'k') => Array.from({ length: n }, (_, i) => `${prefix}-${i}`)

/** Samples ground truth every few ms until `ms` pass; returns the most copies of one id seen. */
async function worstCopies(c: Cluster, ms: number): Promise<number> {
  let worst = 0
  const end = Date.now() + ms
  while (Date.now() < end) {
    for (const nodes of (await c.placement()).values()) worst = Math.max(worst, nodes.length)
    await new Promise((r) => setTimeout(r, 5))
  }
  return worst
}

const sum = (c: Cluster, pick: (m: ReturnType<TestNode['horde']['metrics']>) => number) =>
  c.live.reduce((s, n) => s + pick(n.horde.metrics()), 0)

describe('one cut link', () => {
  for (const [name, strategy] of [
    ['uniform', undefined],
    ['uniform-quorum', uniformQuorumDistribution()],
  ] as const) {
    it(`${name}: a–c cut while b reaches both: nobody is downed, nothing runs twice, the cluster falls quiet`, async () => {
      cluster = await Cluster.start(3, strategy ? { distributionStrategy: strategy } : {})
      const all = ids(60)
      for (const id of all) await cluster.nodes[1]!.horde.startChild({ id, behaviour: 'plain' })
      await waitFor(() => cluster!.exactlyOnce(all), 3000, 'children to run')
      const [a, , c] = cluster.nodes as [TestNode, TestNode, TestNode]
      cluster.network.partition([a.horde.nodeId], [c.horde.nodeId])
      // Each end suspects the other, alone: no agreement, so no failover and no claim-back.
      await waitFor(
        () => a.horde.members().some((m) => m.nodeId === c.horde.nodeId && m.status !== 'alive'),
        2000,
        'a to suspect c',
      )
      expect(await worstCopies(cluster, 1500)).toBe(1)
      expect(await cluster.exactlyOnce(all)).toBe(true)
      expect(sum(cluster, (m) => m.conflicts + m.failovers)).toBe(0)
      for (const n of cluster.nodes) expect(n.horde.members().filter((m) => m.status === 'dead')).toEqual([])
      // Nothing keeps writing: the replicas fall quiet while the link stays cut.
      const before = sum(cluster, (m) => m.deltaBytesSent)
      await new Promise((r) => setTimeout(r, 500))
      expect(sum(cluster, (m) => m.deltaBytesSent)).toBe(before)
      cluster.network.heal()
      await cluster.settle()
      expect(await cluster.exactlyOnce(all)).toBe(true)
    })
  }
})

describe('terminate wins over a concurrent move', () => {
  it('terminateChild from another node while the owner hands the child over in a graceful stop: it runs nowhere after', async () => {
    for (let trial = 0; trial < 5; trial++) {
      cluster = await Cluster.start(3)
      const all = ids(30, `t${trial}`)
      for (const id of all) await cluster.nodes[0]!.horde.startChild({ id, behaviour: 'slowStop' })
      await waitFor(() => cluster!.exactlyOnce(all), 3000, 'children to run')
      const leaving = cluster.nodes.find((n) => n.horde.localChildren().length > 3)!
      const other = cluster.nodes.find((n) => n !== leaving)!
      const victims = leaving.horde.localChildren().map((c) => c.id)
      const stopping = leaving.horde.stop()
      // Once the others know it is leaving its children are being drained (150 ms each):
      // terminate each of them while it is being moved.
      await waitFor(
        () =>
          other.horde
            .members()
            .some((m) => m.nodeId === leaving.horde.nodeId && m.status === 'shutting_down'),
        2000,
        'the others to see it leaving',
      )
      await Promise.all(victims.map((id) => other.horde.terminateChild(id).catch(() => undefined)))
      await stopping
      leaving.alive = false
      const rest = all.filter((id) => !victims.includes(id))
      await waitFor(() => cluster!.exactlyOnce(rest), 3000, 'the others exactly once, the terminated nowhere')
      // and they stay gone (a late handoff write cannot bring them back)
      await new Promise((r) => setTimeout(r, 300))
      expect(await cluster.exactlyOnce(rest)).toBe(true)
      expect((await other.horde.whichChildren()).map((c) => c.id).sort()).toEqual([...rest].sort())
      await cluster.stop()
      cluster = undefined
    }
  }, 60_000)
})

describe('a paused node', () => {
  for (const victimIndex of [0, 2]) {
    it(`node ${victimIndex} paused for 2 × failureTimeout, then resumed: it starts none of the others’ children and exactly-once returns within failureTimeout`, async () => {
      cluster = await Cluster.start(3)
      const all = ids(90)
      for (const id of all) await cluster.nodes[1]!.horde.startChild({ id, behaviour: 'plain' })
      await waitFor(() => cluster!.exactlyOnce(all), 3000, 'children to run')
      const paused = cluster.nodes[victimIndex]!
      const own = new Set(paused.horde.localChildren().map((c) => c.id))
      const others = cluster.nodes.filter((n) => n !== paused)
      cluster.network.pause(paused.horde.nodeId)
      // The others agree that it is down and take its children.
      await waitFor(
        () => others.reduce((s, n) => s + n.horde.localChildren().length, 0) === all.length,
        2000,
        'the others to run everything',
      )
      await new Promise((r) => setTimeout(r, 300))
      let strangers = 0
      let sampling = true
      const sampler = (async () => {
        while (sampling) {
          for (const c of paused.horde.localChildren()) if (!own.has(c.id)) strangers++
          await new Promise((r) => setTimeout(r, 5))
        }
      })()
      const resumed = Date.now()
      await cluster.network.resume(paused.horde.nodeId)
      await waitFor(() => cluster!.exactlyOnce(all), 300, 'exactly once within failureTimeout of the resume')
      const took = Date.now() - resumed
      await cluster.settle()
      await new Promise((r) => setTimeout(r, 300))
      sampling = false
      await sampler
      expect(strangers).toBe(0)
      expect(await cluster.exactlyOnce(all)).toBe(true)
      expect(took).toBeLessThanOrEqual(300)
      expect(paused.horde.metrics().stalls).toBeGreaterThanOrEqual(1)
    })
  }
})

describe('a cluster frozen as a whole', () => {
  it('every node paused past the failure timeout, then resumed: nothing is failed over, and every child runs again exactly once', async () => {
    cluster = await Cluster.start(3)
    const all = ids(45)
    for (const id of all) await cluster.nodes[0]!.horde.startChild({ id, behaviour: 'plain' })
    await waitFor(() => cluster!.exactlyOnce(all), 3000, 'children to run')
    const before = await cluster.placement()
    for (const n of cluster.nodes) cluster.network.pause(n.horde.nodeId)
    await new Promise((r) => setTimeout(r, 600))
    await Promise.all(cluster.nodes.map((n) => cluster!.network.resume(n.horde.nodeId)))
    // Each woke stale and stopped its own copies (the others could have downed it); nobody
    // had, so once its view is fresh each runs its own children again, where they were.
    await waitFor(() => cluster!.exactlyOnce(all), 3000, 'every child to run again exactly once')
    expect(await cluster.placement()).toEqual(before)
    expect(sum(cluster, (m) => m.failovers)).toBe(0)
  })
})

describe('an asymmetric link', () => {
  it('b stops hearing a (a still hears b): nobody is downed and nothing runs twice', async () => {
    cluster = await Cluster.start(3)
    const all = ids(60)
    for (const id of all) await cluster.nodes[2]!.horde.startChild({ id, behaviour: 'plain' })
    await waitFor(() => cluster!.exactlyOnce(all), 3000, 'children to run')
    const [a, b] = cluster.nodes as [TestNode, TestNode, TestNode]
    cluster.network.cutOneWay(a.horde.nodeId, b.horde.nodeId)
    await waitFor(
      () => b.horde.members().some((m) => m.nodeId === a.horde.nodeId && m.status !== 'alive'),
      2000,
      'b to suspect a',
    )
    expect(await worstCopies(cluster, 1500)).toBe(1)
    expect(await cluster.exactlyOnce(all)).toBe(true)
    expect(sum(cluster, (m) => m.conflicts + m.failovers)).toBe(0)
    cluster.network.heal()
    await cluster.settle()
    expect(await cluster.exactlyOnce(all)).toBe(true)
  })
})

describe('answers that may hide a split', () => {
  it('childrenReport says when the answer is not whole, and names who did not answer', async () => {
    cluster = await Cluster.start(3)
    const all = ids(30)
    for (const id of all) await cluster.nodes[0]!.horde.startChild({ id, behaviour: 'plain' })
    await waitFor(() => cluster!.exactlyOnce(all), 3000, 'children to run')
    const [a, b, c] = cluster.nodes as [TestNode, TestNode, TestNode]
    const whole = await a.horde.childrenReport()
    expect(whole).toMatchObject({ complete: true, unreached: [] })
    expect(whole.children.map((x) => x.id)).toEqual([...all].sort())
    cluster.network.partition([a.horde.nodeId], [b.horde.nodeId, c.horde.nodeId])
    await waitFor(
      () => a.horde.members().filter((m) => m.status === 'suspected').length === 2,
      2000,
      'a to suspect b and c',
    )
    const partial = await a.horde.childrenReport()
    expect(partial.complete).toBe(false)
    expect(partial.unreached).toEqual([b.horde.nodeId, c.horde.nodeId].sort())
    expect(partial.children.every((x) => x.node === a.horde.nodeId)).toBe(true)
    // The old calls keep their shape (a partial list, counts from what answered).
    expect((await a.horde.whichChildren()).length).toBe(partial.children.length)
    expect((await a.horde.countChildren()).specs).toBe(all.length)
    cluster.network.heal()
    await cluster.settle()
  })
})
