// A node joining a cluster that holds many children: it learns the map from one peer, in
// pieces, while nobody is suspected and every child keeps running exactly once.
import { afterEach, describe, expect, it } from 'vitest'
import { Cluster, waitFor } from './cluster.js'

let cluster: Cluster | undefined

afterEach(async () => {
  await cluster?.stop()
  cluster = undefined
})

async function startMany(c: Cluster, n: number): Promise<string[]> {
  const ids = Array.from({ length: n }, (_, i) => `child-${i}`)
  for (let i = 0; i < n; i += 250) {
    await Promise.all(
      ids
        .slice(i, i + 250)
        .map((id, k) => c.nodes[k % c.nodes.length]!.horde.startChild({ id, behaviour: 'plain' })),
    )
  }
  return ids
}

describe('joining a cluster that holds many children', () => {
  it.each(['passive', 'active'] as const)(
    '5,000 children, redistribution %s: the joiner holds the map, nobody is suspected, each child runs once',
    async (redistribution) => {
      cluster = await Cluster.start(3, { processRedistribution: redistribution })
      const c = cluster
      const ids = await startMany(c, 5000)
      await waitFor(
        () => c.nodes.every((n) => n.horde.metrics().children.cluster === ids.length),
        20_000,
        'every node to see every child',
      )
      const joiner = await c.add({ processRedistribution: redistribution })
      let seenDown = 0
      let duplicates = 0
      const sample = setInterval(async () => {
        for (const n of c.live) {
          const m = n.horde.metrics().members
          seenDown += m.suspected + m.dead
        }
        const p = await c.placement()
        for (const nodes of p.values()) if (nodes.length > 1) duplicates++
      }, 25)
      try {
        await waitFor(
          () => joiner.horde.metrics().children.cluster === ids.length,
          20_000,
          'the joiner to hold the map',
        )
        await c.settle(10_000)
        if (redistribution === 'active')
          await waitFor(
            () => joiner.horde.metrics().children.local > 1000,
            20_000,
            'children to move to the joiner',
          )
        await waitFor(() => c.exactlyOnce(ids), 20_000, 'every child to run exactly once')
      } finally {
        clearInterval(sample)
      }
      expect(seenDown).toBe(0)
      expect(duplicates).toBe(0)
      // The map came from one peer: the joiner did not receive it three times over.
      const received = joiner.horde.metrics().syncBytesReceived
      const sentByOld = c.nodes.slice(0, 3).map((n) => n.horde.metrics().syncBytesSent)
      expect(received).toBeLessThan(1.5 * Math.max(...sentByOld))
    },
    90_000,
  )
})

describe('what a membership key change costs the reconciler', () => {
  it('a member-list write that leaves the view as it was re-examines no child; a member crashing re-examines its children, not every child', async () => {
    // The three nodes share this process's event loop, and the crash's work (theirs and this
    // test's polling) can hold it for 200–250 ms: with the usual 300 ms failure timeout each node
    // would take that for a stall of its own, distrust its view, and rightly examine every
    // child twice. A longer timeout keeps this test about what a view change costs.
    cluster = await Cluster.start(3, {}, { failureTimeout: 1500 })
    const c = cluster
    const ids = await startMany(c, 3000)
    await waitFor(() => c.exactlyOnce(ids), 20_000, 'every child running once')
    const [a, b, x] = c.nodes.map((n) => n.horde)
    const examined = () => [a!, b!].map((h) => h.metrics().childrenExamined)
    // The explicit list of the three members running: the same view as `auto`.
    const members = [a!.nodeId, b!.nodeId, x!.nodeId]
    const before = examined()
    await a!.setMembers(members)
    await b!.setMembers(members)
    // setMembers pushes the list to every peer before it resolves; then until the reconcilers
    // are quiet (no count moves for 300 ms).
    const quiet = async () => {
      const e = examined()
      await new Promise((r) => setTimeout(r, 300))
      return examined().every((n, i) => n === e[i])
    }
    await waitFor(quiet, 10_000, 'the reconcilers to fall quiet')
    const after = examined()
    // Without the view check every member-list write examined all 3,000 children on each node.
    for (const [i, n] of after.entries()) expect(n - before[i]!).toBeLessThan(ids.length)
    // A real change of the view: x crashes. Whether x is gone is all that changed for the
    // decisions, and only the coordinator fails children over: it examines x's children as x
    // goes, and starts those it takes in the same examination (about onX, and once more each
    // start past a turn's STARTS_PER_TURN); the other examines only the new records that place
    // children on it, as they arrive (about what it takes): a record placing a child on another
    // node, at a node that fails nothing over, leaves nothing to decide. Examining again the
    // records the coordinator wrote for itself, and every start as it ends, was another
    // 0.5 × onX each at the coordinator and 0.5 × onX at the other; examining at the other the
    // records placing children on the coordinator, 0.5 × onX more. A full examination would be
    // every child plus those records (ids.length + onX at least); examining x's children at
    // both as x goes, or every record the coordinator wrote again, 2 × onX at both.
    const onX = x!.localChildren().length
    expect(onX).toBeGreaterThan(ids.length / 6)
    const localBefore = [a!, b!].map((h) => h.localChildren().length)
    const failoversBefore = [a!, b!].map((h) => h.metrics().failovers)
    await c.crash(2)
    await waitFor(() => c.exactlyOnce(ids), 20_000, "x's children running on a and b")
    await waitFor(quiet, 10_000, 'the reconcilers to fall quiet')
    const coordinator = [a!, b!].findIndex((h, i) => h.metrics().failovers > failoversBefore[i]!)
    expect(coordinator).toBeGreaterThanOrEqual(0)
    for (const [i, n] of examined().entries()) {
      const taken = [a!, b!][i]!.localChildren().length - localBefore[i]!
      if (i === coordinator) {
        expect(n - after[i]!).toBeGreaterThanOrEqual(onX)
        expect(n - after[i]!).toBeLessThan(1.25 * onX)
      } else {
        expect(taken).toBeGreaterThan(onX / 4)
        expect(n - after[i]!).toBeGreaterThanOrEqual(taken)
        expect(n - after[i]!).toBeLessThan(taken + 0.25 * onX)
      }
    }
  }, 60_000)
})
