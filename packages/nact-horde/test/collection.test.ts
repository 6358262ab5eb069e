// Garbage collection of members that left and of the replica ids of processes that are gone:
// node restarts leave the causal context, the member keys and the first sync message flat.

import type { AWLWWMap } from '@nact-horde/crdt'
import type { Horde } from 'nact-horde'
import { afterEach, describe, expect, it } from 'vitest'
import { Cluster, waitFor } from './cluster.js'

let cluster: Cluster | undefined
afterEach(async () => {
  await cluster?.stop()
  cluster = undefined
})

/** The node's replica (a test reads the map's keys directly). */
const mapOf = (h: Horde): AWLWWMap<unknown> =>
  (h as unknown as { replicator: { map: AWLWWMap<unknown> } }).replicator.map
const keysWith = (h: Horde, prefix: string): string[] =>
  [...mapOf(h).keys()].filter((k) => k.startsWith(prefix))

const TTL = 100
const opts = { tombstoneTtl: TTL, syncInterval: 25 }

/** Starts a node, waits until every node sees it alive, then stops it gracefully. */
async function restart(c: Cluster, nodeId?: string): Promise<void> {
  const n = await c.add(
    nodeId === undefined
      ? {}
      : { transport: await c.network.createTransport({ nodeId, failureTimeout: 300, requestTimeout: 2000 }) },
  )
  await c.settle()
  n.alive = false
  await n.horde.stop()
  await n.horde.transport.stop()
}

describe('collection of members that left and of gone replica ids', () => {
  it('300 restarts of a fourth node (a new node id each): replica ids, member keys and the first sync message stay flat; children run exactly once', async () => {
    cluster = await Cluster.start(3, opts)
    const [a, b, c] = cluster.nodes.map((n) => n.horde) as [Horde, Horde, Horde]
    const ids = Array.from({ length: 12 }, (_, i) => `child-${i}`)
    for (const id of ids) await a.startChild({ id, behaviour: 'counter' })
    await waitFor(() => cluster!.exactlyOnce(ids), 5000, 'children to run')
    const baseline = Math.max(...[a, b, c].map((h) => h.metrics().firstSyncBytes))
    expect(a.metrics().replicaIds).toBeLessThanOrEqual(3)

    // Peaks per 100 restarts: without collection each would be 100 more than the one before.
    const peaks: { ids: number; members: number; bytes: number }[] = []
    for (let i = 0; i < 300; i++) {
      if (i % 100 === 0) peaks.push({ ids: 0, members: 0, bytes: 0 })
      await restart(cluster)
      const p = peaks[peaks.length - 1]!
      for (const h of [a, b, c]) {
        p.ids = Math.max(p.ids, h.metrics().replicaIds)
        p.members = Math.max(p.members, keysWith(h, 'm/').length)
        p.bytes = Math.max(p.bytes, h.metrics().firstSyncBytes)
      }
    }
    // While restarts go on, only those of the last tombstoneTtl and a half are still there (a
    // restart takes some 20 ms here; the bound leaves room for a loaded machine): without
    // collection the peaks would be 103, 203 and 303.
    for (const p of peaks) {
      expect(p.ids).toBeLessThanOrEqual(3 + 60)
      expect(p.members).toBeLessThanOrEqual(3 + 60)
      // One context entry (about 22 bytes) per replica id: 300 would be some 7 kB.
      expect(p.bytes).toBeLessThanOrEqual(baseline + 60 * 32)
    }

    // Once collection caught up: the cluster's own ids, and nothing of the 300 processes.
    await waitFor(
      () => [a, b, c].every((h) => h.metrics().replicaIds === 3 && keysWith(h, 'm/').length === 3),
      5000,
      'the departed processes to be collected',
    )
    await waitFor(() => [a, b, c].every((h) => keysWith(h, 'g/').length === 0), 5000, 'decisions to expire')
    await waitFor(
      () => [a, b, c].every((h) => h.metrics().retiredReplicaIds === 0),
      5000,
      'retired ids to be forgotten',
    )
    for (const h of [a, b, c]) {
      expect(keysWith(h, 's/').length).toBe(3)
      expect(h.metrics().firstSyncBytes).toBeLessThanOrEqual(baseline + 64)
      expect(h.members().map((m) => m.status)).toEqual(['alive', 'alive', 'alive'])
    }
    expect(await cluster.exactlyOnce(ids)).toBe(true)
    for (const id of ids) expect(await cluster.count(id)).toBe(0)
  }, 60_000)

  it('restarts under one node id: each process start collected; the node rejoins as new every time', async () => {
    cluster = await Cluster.start(3, opts)
    const [a, b, c] = cluster.nodes.map((n) => n.horde) as [Horde, Horde, Horde]
    for (let i = 0; i < 60; i++) await restart(cluster, 'phoenix')
    await waitFor(
      () => [a, b, c].every((h) => h.metrics().replicaIds === 3 && keysWith(h, 'm/').length === 3),
      5000,
      'the departed processes to be collected',
    )
    // It comes back once more: a member like any other, its writes heard.
    const n = await cluster.add({
      transport: await cluster.network.createTransport({
        nodeId: 'phoenix',
        failureTimeout: 300,
        requestTimeout: 2000,
      }),
    })
    await cluster.settle()
    await a.startChild({ id: 'after', behaviour: 'counter' })
    await waitFor(() => cluster!.exactlyOnce(['after']), 5000, 'the child to run')
    await waitFor(
      () => [a, b, c, n.horde].every((h) => h.metrics().replicaIds === 4),
      5000,
      'four replica ids',
    )
  }, 60_000)

  it('a replica cut off through a whole collection (decision written and deleted) converges after the heal', async () => {
    // A longer tombstoneTtl: nothing is collected before d is cut off.
    cluster = await Cluster.start(4, { ...opts, tombstoneTtl: 1000 })
    const hs = cluster.nodes.map((n) => n.horde) as [Horde, Horde, Horde, Horde]
    const [a, b, c, d] = hs
    for (let i = 0; i < 5; i++) await restart(cluster)
    // d holds the five departed processes' records and replica ids, and is cut off now.
    expect(d.metrics().replicaIds).toBeGreaterThanOrEqual(4 + 5)
    cluster.network.partition([d.nodeId], [a.nodeId, b.nodeId, c.nodeId])
    await waitFor(
      () =>
        [a, b, c].every((h) => h.metrics().replicaIds === 4 && keysWith(h, 'g/').length === 0) &&
        a.metrics().membersCollected === 5,
      10_000,
      'the majority to collect the five, and expire its decisions',
    )
    expect(d.metrics().replicaIds).toBeGreaterThanOrEqual(4 + 5)
    cluster.network.heal()
    // d's stale dots come back to the others, are collected again, and d retires them too.
    await waitFor(
      () =>
        hs.every(
          (h) =>
            h.metrics().replicaIds === 4 && keysWith(h, 'm/').length === 4 && keysWith(h, 'g/').length === 0,
        ),
      15_000,
      'every replica to hold only the four processes running',
    )
    const keys = (h: Horde) => JSON.stringify([...mapOf(h).keys()].sort())
    const ids = (h: Horde) => JSON.stringify(mapOf(h).replicaIds().sort())
    await waitFor(
      () => hs.every((h) => keys(h) === keys(a) && ids(h) === ids(a)),
      5000,
      'replicas to converge',
    )
    // And the links fall silent: no sync bytes while nothing changes.
    await waitFor(
      async () => {
        const before = hs.map((h) => h.metrics().syncBytesSent)
        await new Promise((r) => setTimeout(r, 150))
        return hs.every((h, i) => h.metrics().syncBytesSent === before[i])
      },
      10_000,
      'anti-entropy to fall silent',
    )
    await cluster.settle()
  }, 60_000)

  it('a node reaped while cut off is not collected: a child terminated meanwhile does not come back with it', async () => {
    cluster = await Cluster.start(4, { ...opts, tombstoneTtl: 1000, deadMemberTimeout: 200 })
    const hs = cluster.nodes.map((n) => n.horde) as [Horde, Horde, Horde, Horde]
    const [a, b, c, d] = hs
    const ids = Array.from({ length: 24 }, (_, i) => `child-${i}`)
    for (const id of ids) await a.startChild({ id, behaviour: 'counter' })
    await waitFor(() => cluster!.exactlyOnce(ids), 5000, 'children to run')
    // A child d runs: d wrote its record (the start ran there).
    const victim = d.localChildren()[0]?.id
    expect(victim, 'no child landed on d (24 children over 4 nodes)').toBeDefined()
    const oldReplica = mapOf(d).replicaId
    cluster.network.partition([d.nodeId], [a.nodeId, b.nodeId, c.nodeId])
    await waitFor(
      () => (mapOf(a).get(`m/${d.nodeId}`) as { reaped?: boolean } | undefined)?.reaped === true,
      10_000,
      'the majority to reap d',
    )
    await waitFor(
      () => [a, b, c].some((h) => h.localChildren().some((x) => x.id === victim)),
      5000,
      'failover',
    )
    await a.terminateChild(victim!)
    await waitFor(() => !mapOf(a).has(`c/${victim}`), 10_000, "the victim's tombstone to be purged")
    // Past the time a member that left by itself would have been collected: d is kept.
    const until = Date.now() + 2500
    while (Date.now() < until) {
      expect(mapOf(a).has(`m/${d.nodeId}`)).toBe(true)
      expect(mapOf(a).has(`g/${oldReplica}`)).toBe(false)
      await new Promise((r) => setTimeout(r, 50))
    }
    cluster.network.heal()
    await cluster.settle(10_000)
    expect(mapOf(d).replicaId).toBe(oldReplica)
    const rest = ids.filter((id) => id !== victim)
    await waitFor(
      () => cluster!.exactlyOnce(rest),
      10_000,
      'every other child to run exactly once, the victim nowhere',
    )
    // Sampled for a while: the terminated child never runs again, and no node lists it.
    const sampleUntil = Date.now() + 1000
    while (Date.now() < sampleUntil) {
      expect(hs.some((h) => h.localChildren().some((x) => x.id === victim))).toBe(false)
      await new Promise((r) => setTimeout(r, 50))
    }
    expect((await a.whichChildren()).some((x) => x.id === victim)).toBe(false)
    // Its writes are heard: a child it starts is known everywhere.
    await d.startChild({ id: 'from-d', behaviour: 'counter' })
    await waitFor(() => cluster!.exactlyOnce([...rest, 'from-d']), 5000, 'its child to run exactly once')
  }, 60_000)

  it('with an explicit member list, a removed member is collected and stays refused', async () => {
    cluster = await Cluster.start(3, opts)
    const [a, b, c] = cluster.nodes.map((n) => n.horde) as [Horde, Horde, Horde]
    await c.startChild({ id: 'x', behaviour: 'counter' })
    await a.setMembers([a.nodeId, b.nodeId])
    await waitFor(
      () => (mapOf(a).get(`m/${c.nodeId}`) as { status?: string } | undefined)?.status === 'left',
      5000,
      'c to leave',
    )
    await waitFor(() => cluster!.exactlyOnce(['x']), 5000, 'x handed over')
    // While c is connected it is not collected; cut off, it is.
    cluster.network.partition([c.nodeId], [a.nodeId, b.nodeId])
    await waitFor(
      () => [a, b].every((h) => !mapOf(h).has(`m/${c.nodeId}`) && h.metrics().replicaIds === 2),
      10_000,
      'c collected',
    )
    cluster.network.heal()
    const dropped = a.metrics().nonMemberDropped + b.metrics().nonMemberDropped
    await waitFor(
      () => a.metrics().nonMemberDropped + b.metrics().nonMemberDropped > dropped,
      5000,
      "c's messages to be refused",
    )
    for (const h of [a, b]) {
      expect(mapOf(h).has(`m/${c.nodeId}`)).toBe(false)
      expect(h.members().map((m) => m.nodeId)).toEqual([a.nodeId, b.nodeId].sort())
    }
    expect(await cluster.exactlyOnce(['x'])).toBe(true)
  }, 60_000)
})
