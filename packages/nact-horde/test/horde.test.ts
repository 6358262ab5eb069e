import nact from 'nact'
import {
  AlreadyStartedError,
  InvalidChildSpecError,
  InvalidOptionsError,
  NodeShuttingDownError,
  NotFoundError,
  NotSerializableError,
  startHorde,
  UnknownBehaviourError,
} from 'nact-horde'
import { afterEach, describe, expect, it } from 'vitest'
import { behaviours, Cluster, waitFor } from './cluster.js'

let cluster: Cluster | undefined
afterEach(async () => {
  await cluster?.stop()
  cluster = undefined
})

const ids = (n: number, prefix = 'child') => Array.from({ length: n }, (_, i) => `${prefix}-${i}`)

describe('starting children', () => {
  it('starts a child, refuses a duplicate id naming where it runs, and refuses unknown behaviours', async () => {
    cluster = await Cluster.start(3)
    const [a, b] = cluster.nodes.map((n) => n.horde)
    const started = await a!.startChild({ id: 'user-42', behaviour: 'counter', args: { start: 1 } })
    expect(cluster.nodes.map((n) => n.horde.nodeId)).toContain(started.node)
    await waitFor(async () => (await b!.whichChildren()).length === 1, 3000, 'b to see the child')
    const dup = await b!.startChild({ id: 'user-42', behaviour: 'counter' }).catch((e) => e)
    expect(dup).toBeInstanceOf(AlreadyStartedError)
    expect(dup.node).toBe(started.node)
    await expect(a!.startChild({ id: 'x', behaviour: 'nope' })).rejects.toBeInstanceOf(UnknownBehaviourError)
    await expect(a!.startChild({ id: '', behaviour: 'counter' })).rejects.toBeInstanceOf(
      InvalidChildSpecError,
    )
    // An id whose record key no replica could decode: refused before anything starts.
    await expect(a!.startChild({ id: 'i'.repeat(65_535), behaviour: 'counter' })).rejects.toBeInstanceOf(
      InvalidChildSpecError,
    )
    expect(a!.localChildren().every((c) => c.id.length < 65_535)).toBe(true)
    await expect(
      a!.startChild({ id: 'fn', behaviour: 'counter', args: { f: () => 1 } as never }),
    ).rejects.toBeInstanceOf(NotSerializableError)
    // An own "__proto__" key would reach other nodes renamed (the decoder guards against
    // prototype pollution): refused at the caller, and nothing started anywhere.
    await expect(
      a!.startChild({ id: 'proto', behaviour: 'counter', args: JSON.parse('{"__proto__":{"x":1}}') }),
    ).rejects.toBeInstanceOf(NotSerializableError)
    expect(a!.localChildren().map((c) => c.id)).not.toContain('proto')
  })

  it('generates an id when the spec has none', async () => {
    cluster = await Cluster.start(1)
    const { id } = await cluster.nodes[0]!.horde.startChild({ behaviour: 'counter' })
    expect(id).toMatch(/^[0-9a-f-]{36}$/)
  })

  it('spreads children across the nodes, each on exactly one', async () => {
    cluster = await Cluster.start(3)
    const all = ids(90)
    for (const id of all) await cluster.nodes[0]!.horde.startChild({ id, behaviour: 'plain' })
    await waitFor(() => cluster!.exactlyOnce(all), 3000, 'every child to run once')
    const perNode = cluster.nodes.map((n) => n.horde.localChildren().length)
    for (const count of perNode) expect(count).toBeGreaterThan(10)
    const which = await cluster.nodes[1]!.horde.whichChildren()
    expect(which.map((c) => c.id).sort()).toEqual([...all].sort())
    expect(which.every((c) => c.status === 'running')).toBe(true)
    // Counts are eventually consistent: node 2's replica may still be receiving the last records.
    await waitFor(
      async () =>
        JSON.stringify(await cluster!.nodes[2]!.horde.countChildren()) ===
        JSON.stringify({ specs: 90, active: 90, workers: 90, supervisors: 0 }),
      3000,
      'counts',
    )
  })

  it('concurrent starts of one id from every node leave one child', async () => {
    cluster = await Cluster.start(3)
    const results = await Promise.allSettled(
      cluster.nodes.map((n) => n.horde.startChild({ id: 'racy', behaviour: 'counter' })),
    )
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1)
    for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(AlreadyStartedError)
    await waitFor(() => cluster!.exactlyOnce(['racy']), 3000, 'one child')
  })

  it('a stopping node refuses new starts', async () => {
    cluster = await Cluster.start(2)
    const h = cluster.nodes[0]!.horde
    const stopping = h.stop()
    await expect(h.startChild({ id: 'late', behaviour: 'counter' })).rejects.toBeInstanceOf(
      NodeShuttingDownError,
    )
    await stopping
    cluster.nodes[0]!.alive = false
  })
})

describe('terminating', () => {
  it('terminates a child on another node, and NotFoundError for an unknown id', async () => {
    cluster = await Cluster.start(3)
    const [a, b] = cluster.nodes.map((n) => n.horde)
    const all = ids(30)
    for (const id of all) await a!.startChild({ id, behaviour: 'plain' })
    await waitFor(() => cluster!.exactlyOnce(all), 3000, 'children to run')
    const remote = all.find((id) => !a!.localChildren().some((c) => c.id === id))!
    await waitFor(async () => (await b!.whichChildren()).length === 30, 3000, 'b to see all')
    await a!.terminateChild(remote)
    await waitFor(() => cluster!.exactlyOnce(all.filter((id) => id !== remote)), 3000, 'the child to stop')
    await expect(a!.terminateChild('no-such-child')).rejects.toBeInstanceOf(NotFoundError)
    await waitFor(async () => (await b!.countChildren()).specs === 29, 3000, 'b to forget the child')
  })
})

describe('restarts', () => {
  it('a crashing child restarts on its node with fresh state; a transient child that stops normally is gone', async () => {
    cluster = await Cluster.start(2)
    const h = cluster.nodes[0]!.horde
    const restarted: string[] = []
    for (const n of cluster.nodes)
      n.horde.addEventListener('child:restarted', (e) => restarted.push(e.detail.id))
    const { node } = await h.startChild({ id: 'crashy', behaviour: 'counter', restart: 'permanent' })
    const owner = cluster.nodes.find((n) => n.horde.nodeId === node)!
    const ref = () => owner.horde.localChildren().find((c) => c.id === 'crashy')
    await waitFor(() => ref() !== undefined)
    // Crash it through the local supervisor's ref.
    nact.dispatch(owner.horde.ref('crashy') as never, { crash: true })
    await waitFor(() => restarted.includes('crashy'), 3000, 'a restart')
    expect(ref()?.status).toBe('running')

    const t = await h.startChild({ id: 'done', behaviour: 'counter', restart: 'transient' })
    const tOwner = cluster.nodes.find((n) => n.horde.nodeId === t.node)!
    await waitFor(() => tOwner.horde.localChildren().some((c) => c.id === 'done'))
    nact.dispatch(tOwner.horde.ref('done') as never, { stop: true })
    await waitFor(
      async () => (await h.countChildren()).specs === 1,
      3000,
      'the transient child to be forgotten',
    )
  })
})

describe('options', () => {
  it('are validated with clear errors', async () => {
    const system = nact.start()
    await expect(startHorde(system, { name: '', behaviours })).rejects.toBeInstanceOf(InvalidOptionsError)
    await expect(
      startHorde(system, { name: 'x', behaviours: { bad: { init: 1 } as never } }),
    ).rejects.toBeInstanceOf(InvalidOptionsError)
    await expect(
      startHorde(system, { name: 'x', behaviours, processRedistribution: 'eager' as never }),
    ).rejects.toBeInstanceOf(InvalidOptionsError)
    await expect(startHorde(system, { name: 'x', behaviours, syncInterval: -1 })).rejects.toBeInstanceOf(
      InvalidOptionsError,
    )
    nact.stop(system)
  })
})
