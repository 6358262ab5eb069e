// Nothing waits forever, and reads change nothing.

import { createMemoryNetwork } from '@nact-horde/transport'
import nact from 'nact'
import { type Behaviour, NotFoundError, StartTimeoutError, startHorde } from 'nact-horde'
import { afterEach, describe, expect, it } from 'vitest'
import { behaviours, Cluster, waitFor } from './cluster.js'

let cluster: Cluster | undefined
afterEach(async () => {
  await cluster?.stop()
  cluster = undefined
})

const never: Behaviour = { init: () => new Promise(() => {}), handle: (s: unknown) => s }

describe('a behaviour whose init never settles', () => {
  it('startChild rejects with StartTimeoutError after startTimeout; the child runs nowhere', async () => {
    cluster = await Cluster.start(2, { behaviours: { ...behaviours, never }, startTimeout: 200 })
    const h = cluster.nodes[0]!.horde
    const t0 = Date.now()
    await expect(h.startChild({ id: 'stuck', behaviour: 'never' })).rejects.toBeInstanceOf(StartTimeoutError)
    expect(Date.now() - t0).toBeLessThan(2000)
    await waitFor(async () => (await h.whichChildren()).length === 0, 2000, 'nothing to run')
  })

  it('terminateChild during its init stops it (not NotFoundError), and stop() resolves', async () => {
    cluster = await Cluster.start(1, { behaviours: { ...behaviours, never }, startTimeout: 1000 })
    const h = cluster.nodes[0]!.horde
    const starting = h.startChild({ id: 'stuck', behaviour: 'never' }).catch((e: Error) => e)
    // A child in its first init is known to its node: terminating it works (it used to be
    // NotFoundError until the start ended, which was never).
    const terminated = async () => {
      try {
        await h.terminateChild('stuck')
        return true
      } catch (err) {
        if (err instanceof NotFoundError) return false
        throw err
      }
    }
    await waitFor(terminated, 2000, 'terminateChild of the starting child to succeed')
    expect(await starting).toBeInstanceOf(Error)
    expect(h.localChildren()).toEqual([])
    await expect(h.terminateChild('stuck')).rejects.toBeInstanceOf(NotFoundError)
    // A node holding another such child still stops within its bound.
    const again = h.startChild({ id: 'stuck-2', behaviour: 'never' }).catch((e: Error) => e)
    await new Promise((r) => setImmediate(r))
    const t0 = Date.now()
    await h.stop()
    expect(Date.now() - t0).toBeLessThan(2000 * 3 + 1000 + 5000)
    expect(await again).toBeInstanceOf(Error)
    cluster.nodes[0]!.alive = false
  })
})

describe('reads have no side effects', () => {
  it('members(), status() and metrics() start no timers, even for members never reached', async () => {
    const net = createMemoryNetwork({ seed: 3 })
    const transport = await net.createTransport({ nodeId: 'self', failureTimeout: 300 })
    const system = nact.start()
    const horde = await startHorde(system, {
      name: 'reads',
      behaviours,
      transport,
      members: ['self', 'ghost-a', 'ghost-b'],
    })
    try {
      await new Promise((r) => setTimeout(r, 50))
      const timers = () => process.getActiveResourcesInfo().filter((t) => t === 'Timeout').length
      const before = timers()
      for (let i = 0; i < 100; i++) {
        horde.members()
        horde.status()
        horde.metrics()
      }
      expect(timers()).toBe(before)
      expect(horde.members().map((m) => m.status)).toEqual(['uninitialized', 'uninitialized', 'alive'])
    } finally {
      await horde.stop()
      await transport.stop()
      nact.stop(system as never)
    }
  })
})

describe('values larger than maxValueBytes', () => {
  it('startChild refuses args larger than the limit with MessageTooLargeError, before anything runs', async () => {
    cluster = await Cluster.start(2, { maxValueBytes: 4096 })
    const h = cluster.nodes[0]!.horde
    await expect(
      h.startChild({ id: 'big', behaviour: 'counter', args: { blob: 'x'.repeat(10_000) } }),
    ).rejects.toMatchObject({ name: 'MessageTooLargeError' })
    expect((await h.whichChildren()).length).toBe(0)
    await h.startChild({ id: 'small', behaviour: 'counter', args: { blob: 'x'.repeat(100) } })
  })

  it('a planned move whose state is larger than the limit moves without it, counted', async () => {
    cluster = await Cluster.start(2, { maxValueBytes: 4096 })
    const [a, b] = cluster.nodes as [
      NonNullable<(typeof cluster.nodes)[0]>,
      NonNullable<(typeof cluster.nodes)[0]>,
    ]
    await a.horde.startChild({ id: 'fat', behaviour: 'log' })
    await waitFor(() => cluster!.exactlyOnce(['fat']), 2000, 'the child to run')
    const owner = cluster.ownerOf('fat')!
    const other = owner === a ? b : a
    for (let i = 0; i < 100; i++) cluster.send('fat', { item: 'y'.repeat(100) })
    const held = async () =>
      ((await nact.query(owner.horde.ref('fat') as never, (dump: unknown) => ({ dump }), 2000)) as unknown[])
        .length
    await waitFor(async () => (await held()) === 100, 3000, 'the state to grow past the limit')
    await owner.horde.stop()
    owner.alive = false
    await waitFor(() => other.horde.localChildren().some((c) => c.id === 'fat'), 3000, 'the move')
    expect(owner.horde.metrics().handoffStatesDropped).toBe(1)
  })
})
