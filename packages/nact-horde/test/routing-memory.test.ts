import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import nact from 'nact'
import { afterEach, describe, expect, it } from 'vitest'
import { Cluster, waitFor } from './cluster.js'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void
/**
 * Live heap after full collections: the least of a few readings 50 ms apart, so that
 * something short-lived that happens to be reachable at one instant (a batch in flight, a
 * callback about to run) is not counted, while anything retained shows in every reading.
 */
const heap = async () => {
  let least = Number.POSITIVE_INFINITY
  for (let i = 0; i < 4; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, 50))
    gc()
    gc()
    least = Math.min(least, process.memoryUsage().heapUsed)
  }
  return least
}

let cluster: Cluster | undefined
afterEach(async () => {
  await cluster?.stop()
  cluster = undefined
})

describe('routing state is cleaned up', () => {
  it('100k messages through 10k refs across nodes leave no proxies and no heap growth after idle expiry', async () => {
    // A long request timeout: 100k messages in bursts on a machine shared with other test files must
    // not time out a batch that was delivered (it would be re-routed: counted twice), since what is
    // measured here is the cleanup of routing state, not delivery under timeouts.
    cluster = await Cluster.start(2, { refIdleTimeout: 300, requestTimeout: 15_000 })
    const [a, b] = cluster.nodes as [
      NonNullable<(typeof cluster.nodes)[0]>,
      NonNullable<(typeof cluster.nodes)[0]>,
    ]
    // 10k children, all on b: a talks to every one of them across the network.
    await b.horde.setMembers([b.horde.nodeId])
    const ids = Array.from({ length: 10_000 }, (_, i) => `r-${i}`)
    for (let i = 0; i < ids.length; i += 500) {
      await Promise.all(ids.slice(i, i + 500).map((id) => b.horde.startChild({ id, behaviour: 'counter' })))
    }
    await waitFor(() => b.horde.localChildren().length === ids.length, 20_000, 'children')
    // b, the member, lets a back in (a node outside the list cannot change it: its writes are refused)
    await b.horde.setMembers([a.horde.nodeId, b.horde.nodeId])
    await waitFor(async () => (await a.horde.countChildren()).specs === ids.length, 10_000, 'a to know them')

    /** Proxies alive right after the last round of dispatches. */
    let proxiesAfterBurst = 0
    const burst = async () => {
      for (let round = 0; round < 10; round++) {
        for (const id of ids) nact.dispatch(a.horde.ref(id) as never, { add: 1 })
        await new Promise((r) => setImmediate(r))
      }
      proxiesAfterBurst = a.horde.routingStats().proxies
      // Queries carry a temporary ref to b and back: return routes are proxies too.
      await Promise.all(
        ids
          .slice(0, 500)
          .map((id) => nact.query(a.horde.ref(id) as never, (replyTo: unknown) => ({ replyTo }), 10_000)),
      )
    }
    // Every message handled: counters queried in chunks (their mailboxes hold the backlog).
    const handled = async (expected: number) => {
      for (let i = 0; i < ids.length; i += 1000) {
        const counts = await Promise.all(
          ids
            .slice(i, i + 1000)
            .map((id) => nact.query(a.horde.ref(id) as never, (replyTo: unknown) => ({ replyTo }), 20_000)),
        )
        expect(counts.every((c) => c === expected)).toBe(true)
      }
    }
    const idle = async () => {
      await waitFor(
        () =>
          [a, b].every((n) =>
            Object.values(n.horde.routingStats())
              .slice(0, 3)
              .every((v) => v === 0),
          ),
        10_000,
        'proxies to expire',
      )
    }

    await burst() // warm-up: JIT, nact internals
    await handled(10)
    await idle()
    const before = await heap()
    await burst()
    // dispatch is asynchronous in nact: the proxies may still be draining their mailboxes.
    await waitFor(() => a.horde.routingStats().routedOut >= 200_000, 10_000, 'every message routed')
    expect(proxiesAfterBurst).toBeGreaterThan(9_000)
    await handled(20)
    await idle()
    const after = await heap()
    console.log(
      `heap before ${(before / 1e6).toFixed(1)} MB, after 100k messages and expiry ${(after / 1e6).toFixed(1)} MB`,
    )
    // 10k proxies cost well over 10 MB while alive; after expiry what remains is noise.
    expect(after - before).toBeLessThan(5_000_000)
  }, 120_000)
})
