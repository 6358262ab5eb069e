// The ground truth the fault tests and bench/scale.bench.mjs rest on (fixtures/horde-process.mjs):
// a node's own list of local children, sampled. With `diff: true` each node answers with what
// changed since its last answer (horde-node.mjs `localDiff`: the common prefix of the two lists
// compared in order, the rest as sets), and the lists are rebuilt from the changes. Here both
// kinds sample the same node while children start, stop, and stop and start again (an id that
// leaves the middle of the list and comes back at its end): the rebuilt list must end equal to
// the whole one and to what the node runs.
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { GroundTruth, killAll, type Sample, spawnNode, waitFor } from './fixtures/horde-process.mjs'

afterEach(killAll)
afterAll(killAll)

const sorted = (xs: Iterable<string>) => [...xs].sort()
const last = (samples: Sample[], nodeId: string) => sorted(samples.at(-1)?.lists.get(nodeId) ?? [])

describe('ground truth of local children', () => {
  it('the lists rebuilt from changes match the whole lists and the node', async () => {
    const node = await spawnNode({ failureTimeout: 1000 })
    const whole = new GroundTruth([node], 10).start()
    const diff = new GroundTruth([node], 10, { diff: true }).start()
    const settled = async (n: number, what: string) => {
      const from = Math.max(whole.samples.length, diff.samples.length)
      await waitFor(
        () =>
          whole.samples.length > from &&
          diff.samples.length > from &&
          last(whole.samples, node.nodeId).length === n &&
          last(diff.samples, node.nodeId).length === n,
        10_000,
        what,
      )
    }
    await node.call('start', { n: 40, prefix: 'a' })
    await settled(40, '40 children sampled')
    // Stops from the middle of the list, a restart (out of the middle, back at the end), new ids.
    await node.call('terminate', { ids: ['a-3', 'a-10', 'a-11', 'a-12', 'a-39'] })
    await node.call('start', { ids: ['a-3'] })
    await node.call('start', { n: 7, prefix: 'b' })
    await settled(43, '43 children sampled after the changes')
    const running = sorted(await node.call<string[]>('local'))
    const [w, d] = await Promise.all([whole.stop(), diff.stop()])
    expect(running).toHaveLength(43)
    expect(running).toContain('a-3')
    expect(running).not.toContain('a-10')
    expect(last(w, node.nodeId)).toEqual(running)
    expect(last(d, node.nodeId)).toEqual(running)
    // No sample of either kind ever listed an id that never ran; no whole list an id twice (a
    // rebuilt list is a set's).
    const ever = new Set([...Array.from({ length: 40 }, (_, i) => `a-${i}`), ...running])
    for (const s of [...w, ...d])
      for (const id of s.lists.get(node.nodeId) ?? []) expect(ever.has(id)).toBe(true)
    for (const s of w) {
      const list = s.lists.get(node.nodeId) ?? []
      expect(new Set(list).size).toBe(list.length)
    }
  })
})
