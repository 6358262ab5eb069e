// A seeded nemesis on the memory network: kills, pauses, one-link cuts, one-way links,
// splits, heals, joins, graceful stops, starts and terminates, mixed at random. Then, with the
// network whole again: every permanent child whose start succeeded and that was not
// terminated runs exactly once, no terminated child runs, and the replicas fall quiet.
// CI runs the fixed seeds below; SEED=<n> replays one schedule, SEED=random tries a new one.
import { afterEach, describe, expect, it } from 'vitest'
import { Cluster, prng, type TestNode, waitFor } from './cluster.js'

let cluster: Cluster | undefined
afterEach(async () => {
  await cluster?.stop()
  cluster = undefined
})

// Fixed seeds by default, so that CI is repeatable; SEED=<n> replays one schedule, SEED=random
// draws one (printed in the test name) to look for new failures.
const seeds =
  process.env.SEED === 'random'
    ? [Math.floor(Math.random() * 2 ** 31)]
    : process.env.SEED
      ? [Number(process.env.SEED)]
      : [1, 2, 3]

/** Every live node places the same number of children on each member (records replicated). */
const converged = (c: Cluster) => {
  const views = c.live.map((n) => JSON.stringify(n.horde.status().members.map((m) => [m.nodeId, m.children])))
  return views.every((v) => v === views[0])
}

describe('nemesis', () => {
  for (const seed of seeds) {
    it(`SEED=${seed}: every started, unterminated child runs exactly once after the faults; terminated ones nowhere; writes fall silent`, async () => {
      const rand = prng(seed)
      const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)]!
      cluster = await Cluster.start(4)
      const c = cluster
      const started = new Set<string>()
      /** Starts whose outcome the caller could not know (the reply was lost): may run, at most once. */
      const unsure = new Set<string>()
      const terminated = new Set<string>()
      const paused = new Set<TestNode>()
      let faulty = false // a cut, a one-way link or a split is in place
      let next = 0
      const log: string[] = []
      const note = (s: string) => log.push(`${log.length}: ${s}`)
      const running = () => c.live.filter((n) => !paused.has(n))

      const startSome = async (n: number) => {
        for (let i = 0; i < n; i++) {
          const id = `k${next++}`
          const from = pick(c.live)
          try {
            await from.horde.startChild({ id, behaviour: 'plain' })
            started.add(id)
          } catch (err) {
            // Refusals are allowed (no quorum, not reachable, stopping); only successes count.
            // A start whose reply was lost may still have happened on the target.
            const name = (err as Error).name
            if (name === 'NodeUnreachableError' || name === 'TimeoutError') unsure.add(id)
            note(`start ${id} refused: ${name}`)
          }
        }
      }
      const resumeAll = async () => {
        for (const n of [...paused]) {
          note(`resume ${n.horde.nodeId}`)
          paused.delete(n)
          await c.network.resume(n.horde.nodeId)
        }
      }

      await startSome(40)
      for (let step = 0; step < 18; step++) {
        const x = rand()
        const live = running()
        if (x < 0.1 && live.length > 2 && !faulty && paused.size === 0) {
          // Crash only with the records everywhere: a child whose start succeeded on a node
          // alone on its side of a split lives only there until the heal (availability first).
          await waitFor(() => converged(c), 5000, 'records to replicate')
          const victim = pick(live)
          note(`crash ${victim.horde.nodeId}`)
          await c.crash(c.nodes.indexOf(victim))
        } else if (x < 0.2 && live.length > 2 && paused.size === 0 && converged(c)) {
          // Like a crash, only with the records everywhere: a node alone on its side of a cut that
          // started children there holds their only records, and a stop that cannot reach anyone
          // cannot hand them over (availability first: docs/guarantees.md).
          const leaving = pick(live)
          note(`graceful stop ${leaving.horde.nodeId}`)
          await leaving.horde.stop()
          // As a horde that owns its transport does: the process leaves the network too.
          await leaving.horde.transport.stop()
          leaving.alive = false
        } else if (x < 0.3 && c.live.length < 6) {
          const n = await c.add()
          note(`join ${n.horde.nodeId}`)
        } else if (x < 0.42 && live.length > 1 && paused.size < 1) {
          const n = pick(live)
          note(`pause ${n.horde.nodeId}`)
          paused.add(n)
          c.network.pause(n.horde.nodeId)
        } else if (x < 0.52 && paused.size > 0) {
          await resumeAll()
        } else if (x < 0.62 && live.length >= 3) {
          const [a, b] = [...live].sort(() => rand() - 0.5)
          note(`cut ${a!.horde.nodeId} – ${b!.horde.nodeId}`)
          c.network.partition([a!.horde.nodeId], [b!.horde.nodeId])
          faulty = true
        } else if (x < 0.7 && live.length >= 2) {
          const [a, b] = [...live].sort(() => rand() - 0.5)
          note(`one-way ${a!.horde.nodeId} -/-> ${b!.horde.nodeId}`)
          c.network.cutOneWay(a!.horde.nodeId, b!.horde.nodeId)
          faulty = true
        } else if (x < 0.78 && live.length >= 3) {
          const shuffled = [...c.live].sort(() => rand() - 0.5)
          const cut = 1 + Math.floor(rand() * (shuffled.length - 1))
          const a = shuffled.slice(0, cut).map((n) => n.horde.nodeId)
          const b = shuffled.slice(cut).map((n) => n.horde.nodeId)
          note(`split ${a} | ${b}`)
          c.network.partition(a, b)
          faulty = true
        } else if (x < 0.88 && started.size > terminated.size) {
          const candidates = [...started].filter((id) => !terminated.has(id))
          const id = pick(candidates)
          const from = pick(live.length > 0 ? live : c.live)
          try {
            await from.horde.terminateChild(id)
            terminated.add(id)
            note(`terminate ${id} from ${from.horde.nodeId}`)
          } catch (err) {
            note(`terminate ${id} refused: ${(err as Error).name}`)
          }
        } else if (faulty) {
          note('heal')
          c.network.heal()
          faulty = false
        }
        await startSome(4)
        await new Promise((r) => setTimeout(r, 20 + rand() * 150))
      }
      await resumeAll()
      c.network.heal()
      note('heal all')
      const expected = [...started].filter((id) => !terminated.has(id))
      /** Each expected id on exactly one node, an unsure one on at most one, nothing else anywhere. */
      const correct = async () => {
        const p = await c.placement()
        for (const [id, nodes] of p) {
          if (nodes.length > 1) return false
          if (!unsure.has(id) && !expected.includes(id)) return false
        }
        return expected.every((id) => p.has(id))
      }
      try {
        await c.settle(10_000)
        await waitFor(correct, 10_000, 'every started, unterminated child to run exactly once')
        // The replicas fall quiet: no node keeps writing (no flapping, no bouncing children).
        await waitFor(
          async () => {
            const before = c.live.reduce((s, n) => s + n.horde.metrics().deltaBytesSent, 0)
            await new Promise((r) => setTimeout(r, 400))
            return before === c.live.reduce((s, n) => s + n.horde.metrics().deltaBytesSent, 0)
          },
          10_000,
          'writes to fall silent',
        )
        expect(await correct()).toBe(true)
      } catch (err) {
        const p = await c.placement()
        const missing = expected.filter((id) => !p.has(id))
        const dup = [...p].filter(([, n]) => n.length > 1).map(([id]) => id)
        const zombies = [...terminated].filter((id) => p.has(id))
        const strays = [...p.keys()].filter((id) => !started.has(id) && !unsure.has(id))
        log.push(`strays [${strays}]`)
        for (const n of c.live) log.push(`${n.horde.nodeId} sees ${JSON.stringify(n.horde.members())}`)
        console.log(log.join('\n'))
        throw new Error(
          `SEED=${seed}: ${(err as Error).message}; missing [${missing}]; duplicated [${dup}]; terminated but running [${zombies}]`,
        )
      }
      expect(started.size).toBeGreaterThan(40)
    }, 90_000)
  }
})
