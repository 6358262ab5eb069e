// A node whose process is frozen (SIGSTOP: a long GC pause, a VM stall) for twice the failure
// timeout, then resumed — real processes over libp2p TCP on 127.0.0.1 (fixtures/horde-node.mjs).
// Its peers see only silence (the kernel keeps its sockets open), agree it is down and fail its
// children over; when it wakes, its view is stale: it must start none of the others' children,
// stop its own old copies, and leave every id on exactly one node within a failure timeout.
// Ground truth is each process's own list of local children, sampled every 20 ms.
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import {
  duplicatesIn,
  exactlyOnce,
  GroundTruth,
  killAll,
  type ProcNode,
  type Sample,
  spawnNode,
  waitFor,
} from './fixtures/horde-process.mjs'

const FAILURE_TIMEOUT = 1000
const CHILDREN = 300

afterEach(killAll)
afterAll(killAll)

const ids = (n: number, prefix: string) => Array.from({ length: n }, (_, i) => `${prefix}-${i}`)
const ms = (ns: bigint) => Number(ns) / 1e6

async function startNodes(n: number): Promise<ProcNode[]> {
  const a = await spawnNode({ failureTimeout: FAILURE_TIMEOUT })
  const rest = await Promise.all(
    Array.from({ length: n - 1 }, () =>
      spawnNode({ failureTimeout: FAILURE_TIMEOUT, bootstrap: a.addresses }),
    ),
  )
  const nodes = [a, ...rest]
  await Promise.all(nodes.map((x) => x.call('awaitAlive', { n, timeout: 15_000 })))
  return nodes
}

/** Every id on exactly one node, every node having answered. */
const isExactlyOnce = (s: Sample, all: readonly string[], n: number) => {
  if (s.lists.size !== n) return false
  let listed = 0
  const seen = new Set<string>()
  for (const list of s.lists.values()) {
    listed += list.length
    for (const id of list) seen.add(id)
  }
  return listed === all.length && seen.size === all.length && all.every((id) => seen.has(id))
}

/**
 * Freezes `pick(nodes sorted by id)` for 2 × failureTimeout, resumes it, and checks the
 * samples taken from before the freeze until 2 × failureTimeout after exactly-once returned.
 */
async function freezeAndResume(pick: (sorted: ProcNode[]) => ProcNode, prefix: string, n = 3) {
  const nodes = await startNodes(n)
  const all = ids(CHILDREN, prefix)
  await nodes[0]!.call('start', { ids: all, behaviour: 'plain' })
  await waitFor(() => exactlyOnce(nodes, all), 10_000, 'children to run')
  const victim = pick([...nodes].sort((x, y) => (x.nodeId < y.nodeId ? -1 : 1)))
  const before = new Set(await victim.call<string[]>('local'))
  expect(before.size).toBeGreaterThan(0)

  const truth = new GroundTruth(nodes, 20).start()
  await waitFor(() => truth.samples.length >= 5, 5000, 'samples before the freeze')
  const pausedAt = await truth.pause(victim)
  // The fault itself lasts this long: there is nothing to wait for but time.
  await new Promise((r) => setTimeout(r, 2 * FAILURE_TIMEOUT))
  const resumedAt = await truth.resume(victim)
  let backAt: bigint | undefined
  await waitFor(
    () => {
      const s = truth.samples.find((x) => x.at > resumedAt && isExactlyOnce(x, all, n))
      backAt = s?.at
      return s !== undefined
    },
    5 * FAILURE_TIMEOUT,
    'exactly once after the resume',
  )
  const settleFrom = truth.samples.length
  await waitFor(
    () => truth.samples.length > settleFrom && truth.samples.at(-1)!.at - backAt! > BigInt(2e9),
    10_000,
    'samples after exactly once returned',
  )
  const samples = await truth.stop()

  const duringFreeze = samples.filter((s) => s.at > pausedAt && s.at < resumedAt)
  const afterResume = samples.filter((s) => s.at > resumedAt)
  const survivorsHeldAll = duringFreeze.find((s) => new Set([...s.lists.values()].flat()).size === all.length)
  const maxDup = Math.max(0, ...afterResume.map((s) => duplicatesIn(s).length))
  console.log(
    `${prefix}: froze ${victim.nodeId.slice(-6)} (${before.size} children) for ${ms(resumedAt - pausedAt).toFixed(0)} ms; ` +
      `survivors ran all ${survivorsHeldAll === undefined ? 'never during the freeze' : `${ms(survivorsHeldAll.at - pausedAt).toFixed(0)} ms after the stop`}; ` +
      `exactly once ${ms(backAt! - resumedAt).toFixed(0)} ms after the resume; ` +
      `at most ${maxDup} stale copies listed twice meanwhile; ${samples.length} samples`,
  )

  // The samples really cover the freeze and the time after it.
  expect(duringFreeze.length).toBeGreaterThan(10)
  expect(afterResume.filter((s) => s.lists.has(victim.nodeId)).length).toBeGreaterThan(10)
  // The resumed node never starts one of the others' children: at every sample it runs a
  // subset of what it ran before the stop.
  const foreign = samples.flatMap((s) => (s.lists.get(victim.nodeId) ?? []).filter((id) => !before.has(id)))
  expect([...new Set(foreign)]).toEqual([])
  // Exactly once returns within a failure timeout of the resume, and stays.
  expect(ms(backAt! - resumedAt)).toBeLessThanOrEqual(FAILURE_TIMEOUT)
  const broken = samples.filter((s) => s.at >= backAt! && !isExactlyOnce(s, all, n))
  expect(broken.map((s) => ms(s.at - resumedAt).toFixed(0))).toEqual([])
  // Nothing lost: the last sample lists every id once (isExactlyOnce checks all of them).
  expect(isExactlyOnce(samples.at(-1)!, all, n)).toBe(true)
}

describe('a frozen process (SIGSTOP for 2 × failureTimeout, then SIGCONT)', () => {
  it('starts none of the others’ children when it resumes, and exactly once returns within failureTimeout', async () => {
    await freezeAndResume((sorted) => sorted[2]!, 'fz')
  }, 30_000)

  it('the same when the frozen node has the lowest id (the coordinator in most views)', async () => {
    await freezeAndResume((sorted) => sorted[0]!, 'fl')
  }, 30_000)

  it('two nodes, the lower id frozen: its peer cannot down it alone, and on waking it takes none of the peer’s children (the peer hung up on it)', async () => {
    await freezeAndResume((sorted) => sorted[0]!, 'f2', 2)
  }, 30_000)
})
