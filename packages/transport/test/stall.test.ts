// A node whose event loop was blocked (busy loop, GC pause, SIGSTOP) must not take the input
// its peers sent meanwhile for silence: issue 10. The blocked node is this test process (busy
// loop) or a fixture process (SIGSTOP); the peers that keep talking run in other processes,
// since a busy loop here would block any transport in this process too.
import { createTransport, type Transport } from '@nact-horde/transport'
import { afterEach, describe, expect, it } from 'vitest'
import { bytes, nextPeerEvent, recordPeerEvents, spawnNode, waitFor } from './helpers.js'

/** Blocks this process's event loop for `ms`, as a long GC pause or a CPU-bound call would. */
function blockEventLoop(ms: number): void {
  const until = performance.now() + ms
  while (performance.now() < until) {
    // spin: no timer, no I/O, no microtask runs meanwhile
  }
}

describe('libp2p transport after its event loop was blocked', () => {
  const cleanup: Array<() => Promise<void> | void> = []
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn()
  })
  const track = (t: Transport) => {
    cleanup.push(() => t.stop())
    return t
  }
  const spawn = async (init: Parameters<typeof spawnNode>[0]) => {
    const node = await spawnNode(init)
    cleanup.push(() => {
      node.child.kill('SIGKILL')
    })
    return node
  }

  it('reports a stall, keeps a peer that kept talking, and reports a frozen one down only failureTimeout after waking', async () => {
    const FT = 400
    const a = track(await createTransport({ failureTimeout: FT }))
    // The peers' own failure timeouts outlast the block: they do not hang up on a.
    const live = await spawn({ failureTimeout: 10_000, heartbeatInterval: 50, bootstrap: a.addresses })
    const frozen = await spawn({ failureTimeout: 10_000, heartbeatInterval: 50, bootstrap: a.addresses })
    await waitFor(() => a.peers().includes(live.nodeId) && a.peers().includes(frozen.nodeId), 10_000)
    const events = recordPeerEvents(a)
    const stalls: number[] = []
    a.addEventListener('stall', (e) => stalls.push(e.detail.ms))

    frozen.child.kill('SIGSTOP')
    blockEventLoop(2 * FT)
    const wokeAt = performance.now()
    const frozenDown = nextPeerEvent(a, 'peer:down', frozen.nodeId, 3000)

    await waitFor(() => stalls.length > 0, 1000, 'no stall event')
    // How late the silence check fired: the block less at most one check interval (FT / 8).
    expect(stalls[0]).toBeGreaterThanOrEqual(2 * FT - FT / 8 - 1)
    expect(stalls[0]).toBeLessThan(2 * FT + 500)

    // The frozen peer gets a full failureTimeout from the wake, then is down (within a check).
    await frozenDown
    const downAfter = performance.now() - wokeAt
    expect(downAfter).toBeGreaterThanOrEqual(FT)
    expect(downAfter).toBeLessThan(FT + FT / 8 + 300)

    // The live peer's heartbeats, queued while a was blocked, were read in time: it never went
    // down, and stays up through another failureTimeout.
    const until = performance.now() + FT
    await waitFor(() => {
      expect(a.peers()).toContain(live.nodeId)
      return performance.now() > until
    }, 2 * FT)
    expect(events).toEqual([{ type: 'peer:down', nodeId: frozen.nodeId }])
    expect(stalls).toHaveLength(1)
    expect([...(await a.request(live.nodeId, '/echo/1', bytes(3)))]).toEqual([3])
  })

  it('settles a request whose response arrived while the loop was blocked, though its timer fired first', async () => {
    const a = track(await createTransport({ failureTimeout: 5000 }))
    const peer = await spawn({ bootstrap: a.addresses })
    await waitFor(() => a.peers().includes(peer.nodeId), 10_000)
    // Answered after 100 ms; the timeout (200 ms) expires while the loop is blocked (500 ms).
    const reply = a.request(peer.nodeId, '/after/1', bytes(10), { timeout: 200 })
    await new Promise((resolve) => setImmediate(resolve))
    blockEventLoop(500)
    expect([...(await reply)]).toEqual([10])
  })

  it('a SIGSTOPped node reports a stall on SIGCONT and does not take its live peer for dead', async () => {
    const FT = 400
    // a's failure timeout outlasts the freeze: it keeps the connection and keeps talking.
    const a = track(await createTransport({ failureTimeout: 10_000, heartbeatInterval: 50 }))
    const node = await spawn({ failureTimeout: FT, bootstrap: a.addresses })
    await waitFor(
      () => a.peers().includes(node.nodeId) && node.events.some((e) => e.event === 'peer:up'),
      10_000,
    )
    // (Starting libp2p may itself block the fixture's loop past FT / 4: count only what follows.)
    const before = node.events.length
    const after = () => node.events.slice(before)
    node.child.kill('SIGSTOP')
    // The stimulus itself: a freeze of 2 × failureTimeout.
    await new Promise((resolve) => setTimeout(resolve, 2 * FT))
    node.child.kill('SIGCONT')
    const wokeAt = performance.now()
    await waitFor(() => after().some((e) => e.event === 'stall'), 3000, 'no stall event')
    const stall = after().find((e) => e.event === 'stall')!
    expect(stall.detail.ms).toBeGreaterThanOrEqual(2 * FT - FT / 8 - 1)
    // Through a failureTimeout after the wake and more, the node never reports a down.
    await waitFor(() => performance.now() > wokeAt + FT + 200, 2 * FT)
    expect([...(await a.request(node.nodeId, '/echo/1', bytes(4)))]).toEqual([4])
    expect(after()).toEqual([stall])
    expect(a.peers()).toEqual([node.nodeId])
  })
})
