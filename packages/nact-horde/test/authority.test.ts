// Failure authority on the memory network: no node acts alone on its own view of who is dead.
// Each scenario samples what every node actually runs (its local supervisor), not only what
// the map says.
import { afterEach, describe, expect, it } from 'vitest'
import { Cluster, type TestNode, waitFor } from './cluster.js'
import { uniformQuorumDistribution } from 'nact-horde'

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
        () => a.horde.members().some((m) => m.nodeId === c.horde.nodeId && m.status === 'suspected'),
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
      for (const id of all) await cluster.nodes[0]!.horde.startChild({ id, behaviour: 'counter' })
      await waitFor(() => cluster!.exactlyOnce(all), 3000, 'children to run')
      const leaving = cluster.nodes.find((n) => n.horde.localChildren().length > 3)!
      const other = cluster.nodes.find((n) => n !== leaving)!
      const victims = leaving.horde.localChildren().map((c) => c.id)
      const stopping = leaving.horde.stop()
      // Terminate each of the leaving node's children while they are being moved.
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
