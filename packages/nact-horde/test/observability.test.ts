import nact from 'nact'
import { fetchStatus, startHorde } from 'nact-horde'
import { registerHordeMetrics } from 'nact-horde/prometheus'
import { Registry } from 'prom-client'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { behaviours, Cluster, waitFor } from './cluster.js'

let cluster: Cluster | undefined
afterEach(async () => {
  await cluster?.stop()
  cluster = undefined
})

describe('metrics', () => {
  it('count children per node, failovers, handoffs, restarts, sync and delta traffic, dead letters', async () => {
    cluster = await Cluster.start(3)
    const ids = Array.from({ length: 30 }, (_, i) => `m-${i}`)
    for (const id of ids) await cluster.nodes[0]!.horde.startChild({ id, behaviour: 'counter' })
    await waitFor(() => cluster!.exactlyOnce(ids))
    const m0 = cluster.nodes[0]!.horde.metrics()
    await waitFor(() => cluster!.nodes[0]!.horde.metrics().children.cluster === 30)
    expect(Object.values(cluster.nodes[0]!.horde.metrics().children.perNode).reduce((a, b) => a + b, 0)).toBe(
      30,
    )
    expect(m0.members).toEqual({ alive: 3, suspected: 0, dead: 0, total: 3 })
    expect(m0.deltaBytesSent).toBeGreaterThan(0)
    cluster.send('m-0', { crash: true })
    await waitFor(() => cluster!.live.some((n) => n.horde.metrics().restarts === 1), 2000, 'a restart')
    nact.dispatch(cluster.nodes[0]!.horde.ref('nobody') as never, {})
    await waitFor(() => cluster!.nodes[0]!.horde.metrics().deadLetters === 1, 3000, 'a dead letter')
    const leaving = cluster.nodes[2]!
    const moved = leaving.horde.localChildren().length
    await leaving.horde.stop()
    leaving.alive = false
    expect(leaving.horde.metrics().handoffs).toBe(moved)
    const victim = cluster.nodes[1]!
    const orphaned = victim.horde.localChildren().length
    await cluster.crash(1)
    await waitFor(() => cluster!.exactlyOnce(ids))
    expect(cluster.nodes[0]!.horde.metrics().failovers).toBe(orphaned)
    expect(cluster.nodes[0]!.horde.metrics().syncRounds).toBeGreaterThan(0)
  })

  it('are exported to Prometheus through prom-client', async () => {
    cluster = await Cluster.start(2)
    await cluster.nodes[0]!.horde.startChild({ id: 'p', behaviour: 'counter' })
    await waitFor(() => cluster!.exactlyOnce(['p']))
    const owner = cluster.nodes.find((n) => n.horde.localChildren().length > 0)!
    const node = owner.horde.nodeId
    const registry = new Registry()
    const unregister = registerHordeMetrics(owner.horde, registry)
    await waitFor(() => owner.horde.metrics().children.cluster === 1)
    const text = await registry.metrics()
    expect(text).toMatch(new RegExp(`nact_horde_members\\{horde="test",node="${node}",state="alive"\\} 2`))
    expect(text).toMatch(new RegExp(`nact_horde_children\\{horde="test",node="${node}",owner="${node}"\\} 1`))
    // Counters are Prometheus counters, starting at the horde's own count…
    expect(text).toContain('# TYPE nact_horde_restarts_total counter')
    expect(text).toContain(`nact_horde_restarts_total{horde="test",node="${node}"} 0`)
    // …and a restart shows as an increase at the next scrape.
    nact.dispatch(owner.horde.ref('p') as never, { crash: true })
    await waitFor(() => owner.horde.metrics().restarts === 1)
    expect(await registry.metrics()).toContain(`nact_horde_restarts_total{horde="test",node="${node}"} 1`)
    // A scrape adds only what grew since the last one: still 1. And it reads the horde's
    // metrics (a walk of the whole map) once, not once per exported metric.
    // (Scrapes within one turn of the event loop share a snapshot: let this one end.)
    await new Promise((resolve) => setImmediate(resolve))
    const reads = vi.spyOn(owner.horde, 'metrics')
    expect(await registry.metrics()).toContain(`nact_horde_restarts_total{horde="test",node="${node}"} 1`)
    expect(reads).toHaveBeenCalledTimes(1)
    reads.mockRestore()
    unregister()
    expect(await registry.metrics()).not.toContain('nact_horde_')
  })
})

describe('status over the network', () => {
  it('fetchStatus connects to a node over libp2p and reports members and child counts', async () => {
    const system = nact.start()
    const horde = await startHorde(system, {
      name: 'status-test',
      behaviours,
      clusterKey: 'k',
      failureTimeout: 1000,
    })
    try {
      await horde.startChild({ id: 'one', behaviour: 'counter' })
      const status = await fetchStatus(horde.addresses[0]!, {
        name: 'status-test',
        clusterKey: 'k',
        timeout: 5000,
      })
      expect(status.node).toBe(horde.nodeId)
      expect(status.members).toEqual([{ nodeId: horde.nodeId, status: 'alive', children: 1 }])
      expect(status.children).toBe(1)
      await expect(
        fetchStatus(horde.addresses[0]!, { name: 'status-test', clusterKey: 'wrong', timeout: 1000 }),
      ).rejects.toThrow(/could not reach/)
    } finally {
      await horde.stop()
      nact.stop(system)
    }
  })
})
