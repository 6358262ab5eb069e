// Anti-entropy between replicators on the memory network: what a joiner and a peer far behind
// receive, and what a round costs when gossip delivered everything.
import { AWLWWMap, decodeDelta, encodeDelta, mergeDeltas } from '@nact-horde/crdt'
import { createMemoryNetwork, type Transport } from '@nact-horde/transport'
import { afterEach, describe, expect, it } from 'vitest'
import { type Counters, newCounters } from '../../src/observability/counters.js'
import {
  AUDIT_GRACE_WINDOWS,
  GOSSIP_WINDOW,
  GOSSIP_WINDOW_MAX,
  gossipWindow,
  Replicator,
  SWEEP_EVERY,
} from '../../src/state/replicator.js'
import { waitFor } from '../cluster.js'

const TOPIC = 'test/gossip'
const SYNC = '/test/sync/1'
/** Every peer counts as up (the memory network's partitions make requests fail instead). */
const UP = () => true

interface Node {
  t: Transport
  r: Replicator
  counters: Counters
}

const nodes: Node[] = []

afterEach(async () => {
  for (const n of nodes.splice(0)) {
    n.r.stop()
    await n.t.stop()
  }
})

async function node(
  net: ReturnType<typeof createMemoryNetwork>,
  {
    relay = () => undefined,
    maxMessageBytes,
    changed = () => {},
    admits = () => true,
  }: {
    relay?: () => string | undefined
    maxMessageBytes?: number
    changed?: (key: string) => void
    admits?: (from: string) => boolean
  } = {},
): Promise<Node> {
  const t = await net.createTransport({ failureTimeout: 2000, requestTimeout: 5000, maxMessageBytes })
  const counters = newCounters()
  const r = new Replicator({
    transport: t,
    counters,
    topic: TOPIC,
    syncProtocol: SYNC,
    requestTimeout: 5000,
    admits,
    changed,
    relay,
  })
  t.subscribe(TOPIC, (bytes, from) => r.onGossip(bytes, from))
  t.subscribe(r.relayTopic(t.nodeId), (bytes, from) => r.onRelay(bytes, from))
  t.handle(SYNC, async (bytes, from) => r.onSync(bytes, from))
  const n = { t, r, counters }
  nodes.push(n)
  return n
}

/** Two replicators that synced, then `write` on the first while they were cut off, then healed. */
async function writtenWhileCutOff(seed: number, write: (a: Node) => void): Promise<{ a: Node; b: Node }> {
  const net = createMemoryNetwork({ seed })
  const a = await node(net)
  const b = await node(net)
  await a.r.syncWith(b.t.nodeId, UP)
  net.partition([a.t.nodeId], [b.t.nodeId])
  write(a)
  net.heal()
  await waitFor(() => a.t.peers().includes(b.t.nodeId), 5000, 'the partition healed')
  return { a, b }
}

/**
 * One anti-entropy round on each of `nodes`, with the others (and `extra` peers) as peers —
 * except the pairs `lists(x, y)` says `x` does not list `y` among its peers.
 */
const roundOf = (nodes: Node[], extra: string[] = [], lists: (x: Node, y: Node) => boolean = () => true) =>
  Promise.all(
    nodes.map((x) =>
      x.r.syncRound([...nodes.filter((y) => y !== x && lists(x, y)).map((y) => y.t.nodeId), ...extra], 3, UP),
    ),
  )

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Waits until a replicator with `peers` peers counts its map quiet (no change since). */
const untilQuiet = (peers: number) => sleep(AUDIT_GRACE_WINDOWS * gossipWindow(peers) + 50)

/**
 * Writes on `writer` between rounds (so no round is quiet) until `repaired`; how many writes
 * that took.
 */
async function writeUntil(writer: Node, rounds: () => Promise<unknown>, repaired: () => boolean) {
  let i = 0
  await waitFor(
    async () => {
      writer.r.write(`c/busy-${i++}`, record(i))
      await rounds()
      return repaired()
    },
    20_000,
    'the lost write repaired amid writes',
  )
  return i
}

/** Three empty replicators after five anti-entropy rounds (every link has exchanged). */
async function threeAfterRounds(seed: number) {
  const net = createMemoryNetwork({ seed })
  const old = [await node(net), await node(net), await node(net)] as [Node, Node, Node]
  const rounds = () => roundOf(old)
  for (let k = 0; k < 5; k++) await rounds()
  return { net, old, rounds }
}

/** Whether `pred` holds of every link between two of `nodes`. */
const everyLink = (nodes: Node[], pred: (link: ReturnType<Replicator['map']['link']>) => boolean) =>
  nodes.every((x) => nodes.every((y) => x === y || pred(x.r.map.link(y.t.nodeId))))

const record = (i: number) => ({
  node: `n${i % 3}`,
  epoch: 1,
  spec: { id: `child-${i}`, behaviour: 'counter' },
})

/** Three replicators holding the same `n` records, written on the first and gossiped. */
async function oldCluster(n: number) {
  const net = createMemoryNetwork({ seed: 7 })
  const old = [await node(net), await node(net), await node(net)]
  for (let i = 0; i < n; i++) old[0]!.r.write(`c/child-${i}`, record(i))
  const peers = (x: Node) => old.filter((o) => o !== x).map((o) => o.t.nodeId)
  await waitFor(() => old.every((o) => o.r.map.size === n), 20_000, 'the old nodes hold every record')
  return { net, old, peers }
}

describe('anti-entropy that costs what differs', () => {
  it('a joiner gets the state from one peer, once, while every node runs its rounds', async () => {
    const n = 20_000
    const { net, old } = await oldCluster(n)
    const state = encodeDelta(old[0]!.r.map.state()).length
    const joiner = await node(net)
    const all = [...old, joiner]
    // As the horde does: a pass with every peer as it comes UP, then periodic rounds.
    for (const x of all) for (const y of all) if (x !== y) void x.r.syncWith(y.t.nodeId, UP)
    const timer = setInterval(() => {
      for (const x of all)
        void x.r.syncRound(
          all.filter((y) => y !== x).map((y) => y.t.nodeId),
          3,
          UP,
        )
    }, 50)
    try {
      await waitFor(() => joiner.r.map.size === n, 20_000, 'the joiner holds every record')
    } finally {
      clearInterval(timer)
    }
    const received = joiner.counters.syncBytesReceived + joiner.counters.deltaBytesReceived
    expect(received).toBeLessThan(1.5 * state)
    expect(received).toBeGreaterThan(0.5 * state)
  })

  it('writes gossip delivered cost a round a context exchange, not their values', async () => {
    const { old } = await oldCluster(100)
    const [a, b, c] = old as [Node, Node, Node]
    const rounds = () => roundOf(old)
    // Until every link fell idle: the first contacts exchange contexts.
    for (let k = 0; k < 5; k++) await rounds()
    const before = old.map((o) => o.counters.syncBytesSent)
    const big = 'v'.repeat(2000)
    for (let i = 0; i < 50; i++) a.r.write(`c/new-${i}`, { ...record(i), big })
    await waitFor(() => b.r.map.size === 150 && c.r.map.size === 150, 5000, 'gossip delivered the writes')
    // Rounds until every link is idle again (audited with nothing changed since).
    await waitFor(
      async () => {
        await rounds()
        return everyLink(old, (l) => l.idle)
      },
      5000,
      'every link to fall idle',
    )
    const sent = old.reduce((s, o, i) => s + o.counters.syncBytesSent - before[i]!, 0)
    // 50 values of 2 kB: sending them again even once would cost 100 kB.
    expect(sent).toBeLessThan(10_000)
  })

  it('writes arriving between rounds cost each node at most one exchange a round (an audit), whatever the fanout', async () => {
    const { old } = await oldCluster(100)
    const [a, b, c] = old as [Node, Node, Node]
    const rounds = () => roundOf(old)
    for (let k = 0; k < 5; k++) await rounds()
    const exchanges = () => old.reduce((s, o) => s + o.counters.syncRounds, 0) / 2
    const before = exchanges()
    const N = 30
    for (let i = 0; i < N; i++) {
      // Writes on every node between rounds, as a busy cluster makes them.
      for (const [k, w] of old.entries()) w.r.write(`c/busy-${i}-${k}`, record(i))
      const size = 100 + 3 * (i + 1)
      await waitFor(() => old.every((o) => o.r.map.size === size), 5000, 'gossip delivered the writes')
      await rounds()
    }
    // Each replica's links were all woken by every write before (a pass with both peers a
    // round): now gossip settles them, and one audit a round checks one of them.
    expect(exchanges() - before).toBeLessThanOrEqual(N * old.length)
    expect(old.reduce((s, o) => s + o.counters.syncAudits, 0)).toBeGreaterThan(0)
    expect(a.r.map.link(b.t.nodeId).settled && c.r.map.link(a.t.nodeId).settled).toBe(true)
  })

  it('rounds amid writes still on their way settle the links they audit: no pass a round chasing them', async () => {
    const { old } = await oldCluster(100)
    const rounds = () => roundOf(old)
    for (let k = 0; k < 5; k++) await rounds()
    const exchanges = () => old.reduce((s, o) => s + o.counters.syncRounds, 0) / 2
    const audits = () => old.reduce((s, o) => s + o.counters.syncAudits, 0)
    const [e0, a0] = [exchanges(), audits()]
    // A write every 5 ms, from each node in turn, for 3 s; a round every 100 ms meanwhile: the
    // audits that run every few busy rounds find peers lacking writes that are on their way.
    let n = 0
    const writer = setInterval(() => {
      old[n % 3]!.r.write(`c/stream-${n}`, record(n))
      n++
    }, 5)
    const deadline = Date.now() + 3000
    try {
      while (Date.now() < deadline) {
        await rounds()
        await new Promise((r) => setTimeout(r, 100))
      }
    } finally {
      clearInterval(writer)
    }
    await waitFor(() => old.every((o) => o.r.map.size === 100 + n), 5000, 'gossip delivered the writes')
    expect(audits() - a0).toBeGreaterThan(0)
    // An audit amid writes costs its exchange, and the pull of a peer that saw itself behind:
    // two. Before, the links it woke stayed unsettled while writes kept coming, and cost
    // further passes round after round (3.5–4 exchanges per audit here).
    expect(exchanges() - e0).toBeLessThanOrEqual(3 * (audits() - a0))
  })

  it('a write whose gossip was lost is still repaired by the audits while writes keep coming', async () => {
    const { net, old, rounds } = await threeAfterRounds(37)
    const [a, b, c] = old
    net.setLink(a.t.nodeId, c.t.nodeId, { loss: 1 })
    a.r.write('c/lost-to-c', record(1))
    await waitFor(() => b.r.map.has('c/lost-to-c'), 5000, 'gossip reached b')
    net.setLink(a.t.nodeId, c.t.nodeId, { loss: 0 })
    // Writes keep coming on b, so no round is ever quiet: the audits that run every few busy
    // rounds find the loss (a second audit of a link confirms it: the first may see writes on
    // their way).
    expect(await writeUntil(b, rounds, () => c.r.map.has('c/lost-to-c'))).toBeLessThan(200)
  })

  it('a write whose gossip was lost is repaired by the audits', async () => {
    const { net, old, rounds } = await threeAfterRounds(11)
    const [a, b, c] = old
    expect(everyLink(old, (l) => l.idle)).toBe(true)
    // Every message between a and c is lost while a writes: c never gets the gossip.
    net.setLink(a.t.nodeId, c.t.nodeId, { loss: 1 })
    a.r.write('c/lost-to-c', record(1))
    await waitFor(() => b.r.map.has('c/lost-to-c'), 5000, 'gossip reached b')
    net.setLink(a.t.nodeId, c.t.nodeId, { loss: 0 })
    expect(c.r.map.has('c/lost-to-c')).toBe(false)
    // Links are settled (gossip is assumed delivered): only the audits can find the loss.
    expect(everyLink(old, (l) => l.settled)).toBe(true)
    for (let k = 0; k < 6 && !c.r.map.has('c/lost-to-c'); k++) await rounds()
    expect(c.r.map.has('c/lost-to-c')).toBe(true)
    expect(old.reduce((s, o) => s + o.counters.syncAudits, 0)).toBeGreaterThan(0)
  })

  it("writers gossip through the relay: every peer receives all writers' writes from it alone, each once", async () => {
    const net = createMemoryNetwork({ seed: 13 })
    // a relays for the others; a's own relay setting points back at b: a write is still forwarded once.
    let aId = ''
    let bId = ''
    const a = await node(net, { relay: () => bId })
    aId = a.t.nodeId
    const b = await node(net, { relay: () => aId })
    bId = b.t.nodeId
    const writers = [b, await node(net, { relay: () => aId }), await node(net, { relay: () => aId })]
    const c = await node(net, { relay: () => aId })
    const all = [a, ...writers, c]
    let messages = 0
    let writesSeen = 0
    const senders = new Set<string>()
    c.t.subscribe(TOPIC, (bytes, from) => {
      messages++
      writesSeen += decodeDelta(bytes).keys.size
      senders.add(from)
    })
    const N = 40
    for (let i = 0; i < N; i++) for (const [k, w] of writers.entries()) w.r.write(`c/r-${k}-${i}`, record(i))
    // a writes too, through its relay b: b forwards those to every peer, a included, and a does
    // not forward them again (a write is relayed once).
    for (let i = 0; i < N; i++) a.r.write(`c/a-${i}`, record(i))
    await waitFor(() => all.every((x) => x.r.map.size === 4 * N), 5000, 'every write everywhere')
    expect(b.counters.deltasRelayed).toBe(N)
    // 120 writes of three writers reached c from a alone: not one message per writer, nor per
    // write (the writes of a window leave merged into one delta). a's own came through b.
    expect([...senders].sort()).toEqual([aId, bId].sort())
    expect(a.counters.deltasRelayed).toBe(3 * N)
    expect(writers.every((w) => w === b || w.counters.deltasRelayed === 0)).toBe(true)
    expect(c.counters.deltaBytesReceived).toBeGreaterThan(0)
    // Nothing bounced between a and b (each relaying to the other): every write came once to c,
    // in a few messages rather than one per write.
    await new Promise((r) => setTimeout(r, 200))
    expect(a.counters.deltasRelayed).toBe(3 * N)
    expect(b.counters.deltasRelayed).toBe(N)
    expect(writesSeen).toBe(4 * N)
    expect(messages).toBeLessThan(N)
  })

  it('a peer that never answers anti-entropy holds back neither the passes nor the audits that repair a lost write', async () => {
    const net = createMemoryNetwork({ seed: 17 })
    const old = [await node(net), await node(net), await node(net)]
    const [a, b, c] = old as [Node, Node, Node]
    // d takes gossip but runs no anti-entropy (a horde stopped on a transport still up): a link
    // to it can never settle.
    const d = await net.createTransport({ failureTimeout: 2000, requestTimeout: 5000 })
    d.subscribe(TOPIC, () => {})
    try {
      const rounds = () => roundOf(old, [d.nodeId])
      for (let k = 0; k < 5; k++) await rounds()
      net.setLink(a.t.nodeId, c.t.nodeId, { loss: 1 })
      a.r.write('c/lost-to-c', record(1))
      await waitFor(() => b.r.map.has('c/lost-to-c'), 5000, 'gossip reached b')
      net.setLink(a.t.nodeId, c.t.nodeId, { loss: 0 })
      expect(old.some((x) => !x.r.map.link(d.nodeId).settled)).toBe(true)
      await waitFor(
        async () => {
          await rounds()
          return c.r.map.has('c/lost-to-c')
        },
        10_000,
        'an audit to repair c',
      )
      expect(old.reduce((s, o) => s + o.counters.syncAudits, 0)).toBeGreaterThan(0)
    } finally {
      await d.stop()
    }
  })

  /**
   * `n` replicators that sent their writes through the first (the relay: `hub` true) or each
   * to every peer, after rounds that settled every link; `rounds` runs one round on each.
   */
  async function hubCluster(seed: number, n: number, hub: boolean) {
    const net = createMemoryNetwork({ seed })
    let hubId = ''
    const first = await node(net)
    hubId = first.t.nodeId
    const all = [first]
    for (let i = 1; i < n; i++) all.push(await node(net, { relay: () => (hub ? hubId : undefined) }))
    const rounds = () => roundOf(all)
    for (let k = 0; k < 5; k++) await rounds()
    const audits = () => all.reduce((s, o) => s + o.counters.syncAudits, 0)
    /**
     * Quiet (the writes had time to arrive), then rounds a gossip window apart, as a horde runs
     * them a syncInterval apart (a replica that joins a repair is quiet again only after
     * AUDIT_GRACE_WINDOWS of them), until `done` or 3n rounds.
     */
    const quietRounds = async (done: () => boolean = () => false) => {
      await untilQuiet(n - 1)
      for (let k = 0; k < 3 * n && !done(); k++) {
        await rounds()
        await sleep(gossipWindow(n - 1))
      }
    }
    return { net, all, hubId, rounds, audits, quietRounds }
  }

  /**
   * Node 2 writes `c/lost-to-c`, and the relay's forward of it to node 4 (returned) is lost:
   * resolves once every other node holds the write, with the link to node 4 whole again.
   */
  async function forwardLostTo(net: ReturnType<typeof createMemoryNetwork>, all: Node[], hubId: string) {
    const [w, c] = [all[2]!, all[4]!]
    net.setLink(hubId, c.t.nodeId, { loss: 1 })
    w.r.write('c/lost-to-c', record(1))
    await waitFor(
      () => all.every((x) => x === c || x.r.map.has('c/lost-to-c')),
      5000,
      'the relay forwarded the write to all but c',
    )
    net.setLink(hubId, c.t.nodeId, { loss: 0 })
    return c
  }

  it('with a relay, once quiet after a burst of writes, each node audits its link to the relay and the relay each link: about 2n audits, not n²/2', async () => {
    const n = 9
    const counts: number[] = []
    let perNode: number[] = []
    for (const hub of [true, false]) {
      const { all, quietRounds } = await hubCluster(41, n, hub)
      const before = all.map((o) => o.counters.syncAudits)
      for (const [k, w] of all.entries())
        for (let i = 0; i < 5; i++) w.r.write(`c/burst-${k}-${i}`, record(i))
      await waitFor(() => all.every((o) => o.r.map.size === 5 * n), 5000, 'gossip delivered the burst')
      // 3n quiet rounds: at most one of them a sweep's turn on each node (every 25 rounds).
      await quietRounds()
      const mine = all.map((o, i) => o.counters.syncAudits - before[i]!)
      counts.push(mine.reduce((a, b) => a + b, 0))
      if (hub) perNode = mine
      for (const x of all.splice(0)) {
        x.r.stop()
        await x.t.stop()
        nodes.splice(nodes.indexOf(x), 1)
      }
    }
    const [viaHub, everyLink] = counts as [number, number]
    // Every link that changed, audited once from one of its ends: n(n-1)/2 = 36.
    expect(everyLink).toBeGreaterThanOrEqual((n * (n - 1)) / 2)
    // The relay (the first) audits what its peers' audits of it left; each of the others its
    // link to the relay, and one more link at most (the sweep).
    const [relay, ...others] = perNode
    expect(relay).toBeLessThanOrEqual(n - 1)
    expect(others.every((x) => x >= 1 && x <= 2)).toBe(true)
    expect(viaHub).toBeLessThanOrEqual(3 * (n - 1))
  })

  it('with a relay that cannot audit a node, a write that node lost reaches it by the slow sweep of the others', async () => {
    const { net, all, hubId } = await hubCluster(61, 5, true)
    const hub = all[0]!
    const c = all[3]!
    // The relay does not list c among its peers (as a relay whose transport reports c down
    // while c sees it up): it never audits c.
    const roundsWithoutC = () => roundOf(all, [], (x, y) => !(x === hub && y === c))
    net.setLink(hubId, c.t.nodeId, { loss: 1 })
    all[1]!.r.write('c/lost-to-c', record(1))
    await waitFor(
      () => all.every((x) => x === c || x.r.map.has('c/lost-to-c')),
      5000,
      'the relay forwarded the write to all but c',
    )
    net.setLink(hubId, c.t.nodeId, { loss: 0 })
    // c's map did not change: none of its links is due an audit. The holders audit the relay,
    // then, every SWEEP_EVERY quiet rounds, one other changed link each: c's, in turn.
    await untilQuiet(4)
    for (let k = 0; k < 6 * SWEEP_EVERY && !c.r.map.has('c/lost-to-c'); k++) {
      await roundsWithoutC()
      await sleep(10)
    }
    expect(c.r.map.has('c/lost-to-c')).toBe(true)
  })

  it('with a relay, a write lost on its way to the relay reaches every node by the audits', async () => {
    const { net, all, hubId, quietRounds } = await hubCluster(43, 6, true)
    const w = all[3]!
    // Everything w sends the relay is lost while it writes: only w holds the write.
    net.setLink(w.t.nodeId, hubId, { loss: 1 })
    const sent = w.counters.deltaBytesSent
    w.r.write('c/lost-to-hub', record(1))
    await waitFor(() => w.counters.deltaBytesSent > sent, 5000, 'w to send the write to the relay')
    net.setLink(w.t.nodeId, hubId, { loss: 0 })
    expect(all.filter((x) => x.r.map.has('c/lost-to-hub')).map((x) => x.t.nodeId)).toEqual([w.t.nodeId])
    await quietRounds(() => all.every((x) => x.r.map.has('c/lost-to-hub')))
    expect(all.every((x) => x.r.map.has('c/lost-to-hub'))).toBe(true)
  })

  it('with a relay, a write the relay forwarded and one node lost is repaired', async () => {
    const { net, all, hubId, quietRounds } = await hubCluster(47, 6, true)
    const c = await forwardLostTo(net, all, hubId)
    expect(c.r.map.has('c/lost-to-c')).toBe(false)
    await quietRounds(() => c.r.map.has('c/lost-to-c'))
    expect(c.r.map.has('c/lost-to-c')).toBe(true)
  })

  it('with a relay, a write one node lost is repaired while writes keep coming', async () => {
    const { net, all, hubId, rounds } = await hubCluster(59, 6, true)
    const [c, busy] = [await forwardLostTo(net, all, hubId), all[5]!]
    // Writes keep coming, so no round is quiet: only the audits every few busy rounds repair c.
    expect(await writeUntil(busy, rounds, () => c.r.map.has('c/lost-to-c'))).toBeLessThan(200)
  })

  it('a node whose relay does not answer anti-entropy audits every link: writes sent to it alone still reach every node', async () => {
    const net = createMemoryNetwork({ seed: 53 })
    // The relay takes gossip but runs no replicator: it forwards nothing and answers no audit.
    const hole = await net.createTransport({ failureTimeout: 2000, requestTimeout: 5000 })
    hole.subscribe(TOPIC, () => {})
    try {
      const all = [
        await node(net, { relay: () => hole.nodeId }),
        await node(net, { relay: () => hole.nodeId }),
        await node(net, { relay: () => hole.nodeId }),
      ]
      hole.subscribe(all[0]!.r.relayTopic(hole.nodeId), () => {})
      const rounds = () => roundOf(all, [hole.nodeId])
      for (let k = 0; k < 5; k++) await rounds()
      all[1]!.r.write('c/to-the-hole', record(1))
      // Quiet before the first round (no audit amid writes, which takes every link anyway):
      // only the fallback from a relay that does not answer sends the write on.
      await untilQuiet(3)
      const before = all[1]!.counters.syncAudits
      // Without the fallback nothing would audit anything here: the link to a relay that never
      // answers is never idle, so no sweep's turn comes either.
      for (let k = 0; k < 15 && !all.every((x) => x.r.map.has('c/to-the-hole')); k++) await rounds()
      expect(all.every((x) => x.r.map.has('c/to-the-hole'))).toBe(true)
      expect(all[1]!.counters.syncAudits - before).toBeGreaterThanOrEqual(1)
    } finally {
      await hole.stop()
    }
  })

  it('a peer far behind pulls what it lacks; the others do not push it the bulk', async () => {
    const n = 10_000
    const { a, b } = await writtenWhileCutOff(3, (a) => {
      for (let i = 0; i < n; i++) a.r.write(`c/child-${i}`, record(i))
    })
    const sentBefore = a.counters.syncBytesSent
    // A's own requests announce the writes but do not carry them.
    for (let k = 0; k < 3; k++) await a.r.syncWith(b.t.nodeId, UP)
    expect(b.r.map.size).toBe(0)
    expect(a.counters.syncBytesSent - sentBefore).toBeLessThan(2000)
    expect(a.r.map.link(b.t.nodeId).stats.pushesHeldBack).toBeGreaterThan(0)
    // B's link is not idle (it knows it is behind): its round pulls everything in one pass.
    expect(b.r.map.link(a.t.nodeId).behind).toBe(true)
    void b.r.syncRound([a.t.nodeId], 3, UP)
    await waitFor(() => b.r.map.size === n, 10_000, 'B pulled every record')
    expect(b.counters.syncBytesReceived).toBeLessThan(1.3 * encodeDelta(a.r.map.state()).length)
  })

  it('a node back from a partition pulls the bulk from one of three peers, not from all at once', async () => {
    const n = 10_000
    const net = createMemoryNetwork({ seed: 5 })
    const [a, b, c, d] = [await node(net), await node(net), await node(net), await node(net)] as [
      Node,
      Node,
      Node,
      Node,
    ]
    const all = [a, b, c, d]
    const ids = (x: Node) => all.filter((y) => y !== x).map((y) => y.t.nodeId)
    for (const x of all) await x.r.syncRound(ids(x), 3, UP)
    net.partition([d.t.nodeId], [a.t.nodeId, b.t.nodeId, c.t.nodeId])
    for (let i = 0; i < n; i++) a.r.write(`c/child-${i}`, record(i))
    await waitFor(() => b.r.map.size >= n && c.r.map.size >= n, 20_000, 'gossip reached b and c')
    net.heal()
    await waitFor(() => ids(d).every((p) => d.t.peers().includes(p)), 5000, 'the partition healed')
    const before = d.counters.syncBytesReceived
    // Its rounds start passes with all three peers at once: only one of them may feed it.
    for (let k = 0; k < 200 && d.r.map.size < a.r.map.size; k++) await d.r.syncRound(ids(d), 3, UP)
    expect(d.r.map.size).toBe(a.r.map.size)
    const state = encodeDelta(a.r.map.state()).length
    expect(d.counters.syncBytesReceived - before).toBeLessThan(1.5 * state)
  })

  it("a push sends this node's latest write even when the peer is assumed to have it (its gossip was lost)", async () => {
    const net = createMemoryNetwork({ seed: 41 })
    const a = await node(net)
    const b = await node(net)
    await a.r.syncWith(b.t.nodeId, UP)
    await b.r.syncWith(a.t.nodeId, UP)
    // a's write, broadcast (every link assumes the peer has it) but lost on its way: written
    // straight into a's map, as the replicator's write does, without the gossip leaving.
    a.r.map.broadcast(a.r.map.set('c/last-words', record(1)))
    expect(b.r.map.has('c/last-words')).toBe(false)
    // What a stop does before it goes: one push pass per peer, and the write is there after it.
    await a.r.syncWith(b.t.nodeId, UP, true)
    expect(b.r.map.has('c/last-words')).toBe(true)
  })

  it("a push (stop, terminate) sends this node's writes to a peer however far behind it is", async () => {
    const { a, b } = await writtenWhileCutOff(9, (a) => {
      for (let i = 0; i < 2000; i++) a.r.write(`c/child-${i}`, { ...record(i), big: 'v'.repeat(100) })
      a.r.write('c/last', record(0))
    })
    // A periodic pass holds the bulk back (b pulls it later); a push sends it now.
    await a.r.syncWith(b.t.nodeId, UP)
    expect(b.r.map.has('c/last')).toBe(false)
    await a.r.syncWith(b.t.nodeId, UP, true)
    expect(b.r.map.has('c/last')).toBe(true)
    expect(b.r.map.size).toBe(a.r.map.size)
  })

  it('a concurrent record that loses by timestamp but wins by epoch is reported, and places the child', async () => {
    // resolveChild orders a child's concurrent records by tombstone, then epoch; the map's
    // winner is the later write. A record that arrives losing by time still changes what the
    // supervisor acts on: it must be reported (the reconciler examines the child) and counted.
    let now = 1_700_000_000_000
    const clock = { now: () => now }
    const spec = { id: 'x', behaviour: 'counter', restart: 'permanent', shutdown: 5000, args: null }
    const older = new AWLWWMap<unknown>({ replicaId: 'older', clock })
    const newer = new AWLWWMap<unknown>({ replicaId: 'newer', clock })
    const failover = older.set('c/x', { node: 'n2', epoch: 2, spec })
    now += 10
    const stale = newer.set('c/x', { node: 'n1', epoch: 1, spec })
    const net = createMemoryNetwork({ seed: 21 })
    const changed: string[] = []
    const { r } = await node(net, { changed: (key) => changed.push(key) })
    r.joinFrom('peer', encodeDelta(stale))
    expect(r.placedOn('n1')).toBe(1)
    r.joinFrom('peer', encodeDelta(failover))
    expect(r.map.get('c/x')).toMatchObject({ node: 'n1' })
    expect(changed).toEqual(['c/x', 'c/x'])
    expect(r.placement('x')?.node).toBe('n2')
    expect([r.placedOn('n1'), r.placedOn('n2')]).toEqual([0, 1])
  })

  it('a window too large for one publication goes as halves: every write arrives by gossip', async () => {
    const net = createMemoryNetwork({ seed: 23 })
    // 2 KiB messages: a window of 60 records merged is ~6 KiB, refused by the transport.
    const a = await node(net, { maxMessageBytes: 2048 })
    const b = await node(net, { maxMessageBytes: 2048 })
    let messages = 0
    b.t.subscribe(TOPIC, () => messages++)
    for (let i = 0; i < 60; i++) a.r.write(`c/h-${i}`, record(i))
    // No anti-entropy round runs: only gossip can bring them.
    await waitFor(() => b.r.map.size === 60, 5000, 'every write at b')
    expect(messages).toBeGreaterThan(1)
    expect(messages).toBeLessThan(60)
  })

  it('a relayed delta that carries context ranges goes on as it came', async () => {
    const net = createMemoryNetwork({ seed: 29 })
    const a = await node(net)
    const b = await node(net)
    const c = await node(net)
    // A state (it carries ranges) sent to a as its relay: a joins it and forwards it whole.
    const source = new AWLWWMap<unknown>({ replicaId: 'source' })
    for (let i = 0; i < 5; i++) source.set(`c/s-${i}`, record(i))
    b.t.publish(a.r.relayTopic(a.t.nodeId), encodeDelta(source.state()))
    await waitFor(() => c.r.map.size === 5, 5000, 'the relayed state at c')
    expect(a.counters.deltasRelayed).toBe(5)
  })

  it('a burst of gossip is joined in order over several turns, not in the callback that received it; stop() joins what is left', async () => {
    const net = createMemoryNetwork({ seed: 31 })
    const changed: string[] = []
    const a = await node(net, { changed: (key) => changed.push(key) })
    // 200 deltas of 256 records each, written elsewhere, then one that overwrites the first
    // record: received at once, as a transport read can hand over many frames.
    const source = new AWLWWMap<unknown>({ replicaId: 'source' })
    const burst: Uint8Array[] = []
    for (let d = 0; d < 200; d++) {
      const writes = []
      for (let i = 0; i < 256; i++) writes.push(source.set(`c/b-${d * 256 + i}`, record(i)))
      burst.push(encodeDelta(mergeDeltas(writes)))
    }
    burst.push(encodeDelta(source.set('c/b-0', { ...record(0), epoch: 2 })))
    const total = 200 * 256
    for (const bytes of burst) a.r.onGossip(bytes, 'source')
    expect(a.r.map.size).toBe(0)
    // One turn joins a slice (INBOX_BUDGET_MS of work), not all 51,200 records.
    await new Promise((r) => setImmediate(r))
    const afterOneTurn = a.r.map.size
    expect(afterOneTurn).toBeGreaterThan(0)
    expect(afterOneTurn).toBeLessThan(total)
    // Every delta joined: the overwrite, last, adds no key, so the size alone is reached one
    // delta early when a turn's budget ends right before it.
    await waitFor(
      () => a.r.map.size === total && (a.r.map.get('c/b-0') as { epoch?: number } | undefined)?.epoch === 2,
      20_000,
      'every delta joined',
    )
    // In arrival order: c/b-0 changed with the first delta and again with the overwrite, last.
    // (Joined the other way round, the first delta's write would have been superseded already.)
    expect(changed.filter((k) => k === 'c/b-0')).toHaveLength(2)
    expect(changed.at(-1)).toBe('c/b-0')
    expect(a.r.map.get('c/b-0')).toMatchObject({ epoch: 2 })
    expect(a.counters.deltaBytesReceived).toBe(burst.reduce((n, b) => n + b.length, 0))

    // Received but not joined when the replicator stops: joined then, not dropped.
    const late = source.set('c/late', record(1))
    a.r.onGossip(encodeDelta(late), 'source')
    expect(a.r.map.has('c/late')).toBe(false)
    a.r.stop()
    expect(a.r.map.has('c/late')).toBe(true)
  })

  it('gossip admitted when it arrives is joined even if its sender is refused before the inbox drains; a sync message is read only after the queued gossip', async () => {
    const net = createMemoryNetwork({ seed: 43 })
    let admitted = true
    const { r } = await node(net, { admits: () => admitted })
    const source = new AWLWWMap<unknown>({ replicaId: 'source' })
    const burst: Uint8Array[] = []
    for (let d = 0; d < 50; d++) {
      const writes = []
      for (let i = 0; i < 256; i++) writes.push(source.set(`c/a-${d * 256 + i}`, record(i)))
      burst.push(encodeDelta(mergeDeltas(writes)))
    }
    for (const bytes of burst) r.onGossip(bytes, 'source')
    // A sync request from the same peer, while the burst waits in the inbox: its reply is made
    // once every queued record is joined, so the report it carries is not behind on them.
    const peer = new AWLWWMap<unknown>({ replicaId: 'peer' })
    peer.join(source.state())
    const reply = r.onSync(peer.link('source').generate()!, 'source')
    expect(r.map.size).toBe(0)
    // The member list changes: the sender is refused from now on, but what it sent before stays.
    admitted = false
    await reply
    expect(r.map.size).toBe(50 * 256)
    // Refused on arrival: not queued, not counted.
    const before = r.map.size
    r.onGossip(encodeDelta(source.set('c/late', record(1))), 'source')
    await new Promise((resolve) => setImmediate(resolve))
    expect(r.map.size).toBe(before)
  })
})

describe('gossip windows', () => {
  it('the window is 10 ms per peer up, within 50 and 250 ms', () => {
    const rows: [number, number][] = [
      [0, 50],
      [2, 50],
      [5, 50],
      [6, 60],
      [9, 90],
      [23, 230],
      [25, 250],
      [40, 250],
    ]
    for (const [peers, ms] of rows) expect([peers, gossipWindow(peers)]).toEqual([peers, ms])
    expect(gossipWindow(0)).toBe(GOSSIP_WINDOW)
    expect(gossipWindow(1000)).toBe(GOSSIP_WINDOW_MAX)
  })

  /**
   * `n` replicators on one memory network, every one seeing the others up; the first's gossip
   * publications are recorded (when, and the keys each carried).
   */
  async function meshOf(n: number) {
    const net = createMemoryNetwork({ seed: 11 })
    const all: Node[] = []
    for (let i = 0; i < n; i++) all.push(await node(net))
    await waitFor(() => all.every((x) => x.t.peers().length === n - 1), 5000, 'every node sees the others')
    const w = all[0]!
    const sent: { at: number; keys: string[] }[] = []
    const publish = w.t.publish.bind(w.t)
    w.t.publish = (topic, bytes) => {
      if (topic === TOPIC) sent.push({ at: performance.now(), keys: [...decodeDelta(bytes).keys.keys()] })
      return publish(topic, bytes)
    }
    return { all, w, sent }
  }

  /** Writes a child record on `w` every 5 ms for `ms`, then waits for the last window to leave. */
  async function stream(w: Node, ms: number, sent: { keys: string[] }[]) {
    const until = performance.now() + ms
    let i = 0
    while (performance.now() < until) {
      w.r.write(`c/s-${i}`, record(i))
      i++
      await new Promise((r) => setTimeout(r, 5))
    }
    await waitFor(() => sent.reduce((k, x) => k + x.keys.length, 0) >= i, 2000, 'every write sent')
    return i
  }

  const gaps = (sent: { at: number }[]) => sent.slice(1).map((x, i) => x.at - sent[i]!.at)

  it('under a stream of writes a node with 11 peers gossips once per 110 ms, one with 2 peers once per 50 ms', async () => {
    const big = await meshOf(12)
    const writes = await stream(big.w, 1000, big.sent)
    // The first write went at once; each later publication waited for its window. A flush is
    // timed from its start, a publication from its end: a slow encode (a GC) shortens the next
    // gap by as much, never by 60 ms.
    expect(Math.min(...gaps(big.sent))).toBeGreaterThan(gossipWindow(11) - 15)
    expect(big.sent.length).toBeLessThanOrEqual(Math.ceil(1000 / gossipWindow(11)) + 2)
    await waitFor(() => big.all.every((x) => x.r.map.size === writes), 5000, 'every write everywhere')
    for (const x of nodes.splice(0)) {
      x.r.stop()
      await x.t.stop()
    }
    const small = await meshOf(3)
    await stream(small.w, 1000, small.sent)
    expect(Math.min(...gaps(small.sent))).toBeGreaterThan(GOSSIP_WINDOW - 15)
    // More publications than the large node made over as long: its window was longer.
    expect(small.sent.length).toBeGreaterThan(big.sent.length)
  })

  it("a membership write does not wait for the child records' window, and takes the writes queued before it along", async () => {
    const { w, sent } = await meshOf(24)
    w.r.write('c/first', record(0)) // goes at once: nothing left in the last window
    await waitFor(() => sent.length === 1, 1000, 'the first write sent')
    w.r.write('c/second', record(1)) // waits for the window: 230 ms with 23 peers
    const t0 = performance.now()
    w.r.write('m/someone', { status: 'alive' })
    await waitFor(() => sent.some((x) => x.keys.includes('m/someone')), 1000, 'the membership write sent')
    const member = sent.find((x) => x.keys.includes('m/someone'))!
    expect(member.at - t0).toBeLessThan(gossipWindow(23) / 2)
    // c/second, written before, left just before it (to every peer: the same ordered channels),
    // not at its window's end.
    expect(sent.map((x) => x.keys)).toEqual([['c/first'], ['c/second'], ['m/someone']])
    // Nothing is left for the window's end.
    await new Promise((r) => setTimeout(r, gossipWindow(23) + 50))
    expect(sent).toHaveLength(3)
  })
})
