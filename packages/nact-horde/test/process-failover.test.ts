// The supervisor over real libp2p (TCP on 127.0.0.1), each node a separate OS process driven
// over IPC (fixtures/horde-node.mjs). Slower than the memory-network scenarios, so few and
// focused: membership, failover after SIGKILL, graceful stop with handoff, cluster admission.
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import {
  exactlyOnce,
  killAll,
  overlaps,
  type ProcNode,
  placement,
  spawnNode,
  type Timeline,
  waitFor,
} from './fixtures/horde-process.mjs'

const FAILURE_TIMEOUT = 1000

afterEach(killAll)
afterAll(killAll)

const ids = (n: number, prefix: string) => Array.from({ length: n }, (_, i) => `${prefix}-${i}`)

const aliveIds = async (n: ProcNode) =>
  (await n.call<{ nodeId: string; status: string }[]>('members'))
    .filter((m) => m.status === 'alive')
    .map((m) => m.nodeId)
    .sort()

/** Three nodes, the second and third bootstrapped from the first, all seeing all alive. */
async function threeNodes(init: { clusterKey?: string } = {}): Promise<ProcNode[]> {
  const a = await spawnNode({ failureTimeout: FAILURE_TIMEOUT, ...init })
  const rest = await Promise.all(
    [1, 2].map(() => spawnNode({ failureTimeout: FAILURE_TIMEOUT, bootstrap: a.addresses, ...init })),
  )
  const nodes = [a, ...rest]
  await Promise.all(nodes.map((n) => n.call('awaitAlive', { n: 3, timeout: 15_000 })))
  return nodes
}

describe('separate processes over libp2p', () => {
  it('three processes bootstrapped from the first form one horde', async () => {
    const nodes = await threeNodes()
    const all = nodes.map((n) => n.nodeId).sort()
    for (const n of nodes) expect(await aliveIds(n)).toEqual(all)
    // One supervisor: a child started anywhere is known everywhere.
    await nodes[1]!.call('start', { ids: ['probe'], behaviour: 'counter' })
    const which = await nodes[2]!.call<{ id: string; node: string }[]>('which')
    expect(which.map((c) => c.id)).toEqual(['probe'])
    expect(all).toContain(which[0]!.node)
  })

  it('after SIGKILL of one process, its 300+ children run again exactly once on the survivors within failureTimeout + 1 s', async () => {
    const nodes = await threeNodes()
    const all = ids(1000, 'f')
    await nodes[0]!.call('start', { ids: all, behaviour: 'plain' })
    await waitFor(() => exactlyOnce(nodes, all), 10_000, 'children to run')
    const counts = await Promise.all(nodes.map((n) => n.call<number>('localCount')))
    const victim = nodes[counts.indexOf(Math.max(...counts))]!
    const lost = new Set(await victim.call<string[]>('local'))
    const survivors = nodes.filter((n) => n !== victim)
    expect(lost.size).toBeGreaterThanOrEqual(300)

    const killedAt = victim.kill()
    await waitFor(() => exactlyOnce(survivors, all), FAILURE_TIMEOUT + 1000, 'failover', 5)
    expect((await victim.exited).signal).toBe('SIGKILL')

    // When the last lost child started again, from the survivors' own clocks.
    const timelines = await Promise.all(survivors.map((n) => n.call<Timeline>('timeline', { since: '0' })))
    let last = 0n
    const restarts = new Map<string, number>()
    for (const tl of timelines) {
      for (const [id, startedAt] of tl.runs) {
        if (!lost.has(id)) continue
        restarts.set(id, (restarts.get(id) ?? 0) + 1)
        if (BigInt(startedAt) > last) last = BigInt(startedAt)
      }
    }
    const tookMs = Number(last - killedAt) / 1e6
    console.log(
      `failover of ${lost.size} children after SIGKILL: ${tookMs.toFixed(0)} ms (failureTimeout ${FAILURE_TIMEOUT} ms)`,
    )
    expect(tookMs).toBeLessThanOrEqual(FAILURE_TIMEOUT + 1000)
    // Each lost child started once on the survivors, never twice, never on two at once.
    expect([...lost].filter((id) => restarts.get(id) !== 1)).toEqual([])
    expect(overlaps(timelines)).toEqual([])
  })

  it('a graceful stop moves the node’s counters with their counts, never runs one twice, and the process exits cleanly', async () => {
    const nodes = await threeNodes()
    const all = ids(90, 'g')
    await nodes[0]!.call('start', { ids: all, behaviour: 'counter' })
    await waitFor(() => exactlyOnce(nodes, all), 5000, 'children to run')
    const entries = all.map((id, i) => [id, { add: i + 1 }])
    const delivered = await Promise.all(nodes.map((n) => n.call<number>('send', { entries })))
    expect(delivered.reduce((a, b) => a + b, 0)).toBe(all.length)
    const expected = new Map(all.map((id, i) => [id, i + 1]))
    const counts = async (of: ProcNode[]) =>
      new Map((await Promise.all(of.map((n) => n.call<[string, number][]>('query')))).flat())
    expect(await counts(nodes)).toEqual(expected)

    const sizes = await Promise.all(nodes.map((n) => n.call<number>('localCount')))
    const leaving = nodes[sizes.indexOf(Math.max(...sizes))]!
    const moved = await leaving.call<string[]>('local')
    const others = nodes.filter((n) => n !== leaving)
    const stopped = await leaving.call<{ ms: number; timeline: Timeline }>('stop')
    console.log(`graceful stop moved ${moved.length} children in ${stopped.ms.toFixed(0)} ms`)
    expect(await leaving.exited).toEqual({ code: 0, signal: null })

    // Moved before stop() resolved: no waiting needed, and nothing ran twice meanwhile.
    expect(await exactlyOnce(others, all)).toBe(true)
    const timelines = [
      stopped.timeline,
      ...(await Promise.all(others.map((n) => n.call<Timeline>('timeline')))),
    ]
    expect(overlaps(timelines)).toEqual([])
    expect(await counts(others)).toEqual(expected)
    // It said goodbye: no survivor counts it as alive (it leaves the list once its 'left'
    // record reaches that node; until then it is listed as dead).
    for (const n of others) expect(await aliveIds(n)).not.toContain(leaving.nodeId)
  })

  it('a node started with a different cluster key never becomes a member', async () => {
    const a = await spawnNode({ failureTimeout: FAILURE_TIMEOUT, clusterKey: 'key-one' })
    const [b, stranger] = await Promise.all([
      spawnNode({ failureTimeout: FAILURE_TIMEOUT, clusterKey: 'key-one', bootstrap: a.addresses }),
      spawnNode({ failureTimeout: FAILURE_TIMEOUT, clusterKey: 'key-two', bootstrap: a.addresses }),
    ])
    await Promise.all([a, b].map((n) => n.call('awaitAlive', { n: 2, timeout: 15_000 })))
    await stranger.call('start', { ids: ['s-0', 's-1', 's-2'], behaviour: 'plain' })
    await a.call('start', { ids: ['m-0', 'm-1', 'm-2'], behaviour: 'plain' })
    const members = [a.nodeId, b.nodeId].sort()
    // The stranger keeps redialling; it must stay out for several failure timeouts.
    const until = Date.now() + 3 * FAILURE_TIMEOUT
    while (Date.now() < until) {
      expect(await aliveIds(a)).toEqual(members)
      expect(await aliveIds(b)).toEqual(members)
      expect((await stranger.call<{ nodeId: string }[]>('members')).map((m) => m.nodeId)).toEqual([
        stranger.nodeId,
      ])
      await new Promise((r) => setTimeout(r, 100))
    }
    const p = await placement([a, b, stranger])
    expect(p.get('s-0')).toEqual([stranger.nodeId])
    expect(
      [...p.keys()].filter((id) => id.startsWith('m-')).every((id) => p.get(id)![0] !== stranger.nodeId),
    ).toBe(true)
    expect((await a.call<{ specs: number }>('count')).specs).toBe(3)
  })
})
