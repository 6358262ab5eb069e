import {
  AWLWWMap,
  DEFAULT_MAX_SYNC_BYTES,
  decodeDelta,
  encodeDelta,
  InvalidArgumentError,
} from '@nact-horde/crdt'
import { describe, expect, it } from 'vitest'
import { canonical, syncPair, visible } from './helpers.js'

function bigPair(n: number) {
  const a = new AWLWWMap<{ i: number; s: string }>({ replicaId: 'a' })
  const b = new AWLWWMap<{ i: number; s: string }>({ replicaId: 'b' })
  for (let i = 0; i < n; i++) a.set(`key-${i}`, { i, s: 'value' })
  b.join(a.state())
  return { a, b }
}

/** 15 changes the other side never hears of: overwrites and removals on both sides. */
function diverge(a: AWLWWMap<{ i: number; s: string }>, b: AWLWWMap<{ i: number; s: string }>, offset = 0) {
  for (let i = 0; i < 5; i++) a.set(`key-${i * 1000 + offset}`, { i, s: 'overwritten' })
  for (let i = 5; i < 10; i++) a.delete(`key-${i * 1000 + offset}`)
  for (let i = 10; i < 15; i++) b.delete(`key-${i * 1000 + offset}`)
}

describe('anti-entropy cost follows the difference, not the map size', () => {
  it('100k keys, 15 differing (overwrites and removals the peer never saw): a few kB, then both equal', () => {
    const { a, b } = bigPair(100_000)
    // The link has never been used: its first exchange must not fall back to full state.
    diverge(a, b)
    const r = syncPair(a, b)
    expect(canonical(a)).toBe(canonical(b))
    expect(a.size).toBe(100_000 - 10)
    expect(b.get('key-0')).toEqual({ i: 0, s: 'overwritten' })
    expect(r.bytes).toBeLessThan(30_000)
    expect(r.rounds).toBeLessThan(12)

    // A second round of changes over the now-established link.
    diverge(b, a)
    const r2 = syncPair(a, b)
    expect(canonical(a)).toBe(canonical(b))
    expect(r2.bytes).toBeLessThan(30_000)
  })

  it('bytes grow with the number of differing keys, not with n', async () => {
    const small = bigPair(5_000)
    diverge(small.a, small.b)
    const bytesSmall = syncPair(small.a, small.b).bytes
    const large = bigPair(100_000)
    diverge(large.a, large.b)
    const bytesLarge = syncPair(large.a, large.b).bytes
    // The cost is O(k · log16 n): 20× the keys adds a tree level or two per differing key
    // (and at small n the differing keys share more of the top levels), never 20× the bytes.
    expect(bytesLarge).toBeLessThan(5 * bytesSmall)
    // …and it is nothing like a full-state transfer.
    const { encodeDelta } = await import('@nact-horde/crdt')
    expect(bytesLarge).toBeLessThan(encodeDelta(large.a.state()).length / 100)
    const more = bigPair(100_000)
    for (let round = 0; round < 10; round++) diverge(more.a, more.b, round)
    expect(syncPair(more.a, more.b).bytes).toBeGreaterThan(3 * bytesLarge)
  })

  it('a peer that has nothing gets everything in one exchange', () => {
    const a = new AWLWWMap<number>({ replicaId: 'a' })
    for (let i = 0; i < 1000; i++) a.set(`k${i}`, i)
    for (let i = 0; i < 1000; i += 3) a.delete(`k${i}`)
    const b = new AWLWWMap<number>({ replicaId: 'b' })
    const r = syncPair(a, b)
    expect(visible(b)).toEqual(visible(a))
    expect(canonical(b)).toBe(canonical(a))
    expect(r.rounds).toBeLessThanOrEqual(4)
  })

  it('concurrent edits on both sides of the same keys converge to the same winners', () => {
    const { a, b } = bigPair(2_000)
    for (let i = 0; i < 100; i++) {
      a.set(`key-${i}`, { i, s: 'from a' })
      b.set(`key-${i}`, { i, s: 'from b' })
      if (i % 2) a.delete(`key-${i + 500}`)
      else b.set(`key-${i + 500}`, { i, s: 'b wins over a concurrent delete' })
    }
    for (let i = 0; i < 100; i += 2) a.delete(`key-${i + 500}`)
    syncPair(a, b)
    expect(canonical(a)).toBe(canonical(b))
  })

  it('an idle established link says nothing', () => {
    const { a, b } = bigPair(1000)
    syncPair(a, b)
    for (let i = 0; i < 3; i++) {
      expect(a.link('b').generate()).toBeNull()
      expect(b.link('a').generate()).toBeNull()
    }
  })

  it('changes relayed through a third replica reach a peer that only links to it', () => {
    const a = new AWLWWMap<number>({ replicaId: 'a' })
    const b = new AWLWWMap<number>({ replicaId: 'b' })
    const c = new AWLWWMap<number>({ replicaId: 'c' })
    for (let i = 0; i < 100; i++) a.set(`k${i}`, i)
    syncPair(a, b)
    syncPair(b, c)
    for (let i = 0; i < 50; i++) a.delete(`k${i}`)
    syncPair(a, b)
    syncPair(b, c)
    expect(visible(c)).toEqual(visible(a))
    expect(c.size).toBe(50)
  })
})

describe('sync messages within a byte budget', () => {
  /** Like syncPair, but checks every message against the budget and hands each to `onMessage`. */
  function syncBudgeted<V>(
    a: AWLWWMap<V>,
    b: AWLWWMap<V>,
    budget: number,
    onMessage: (to: AWLWWMap<V>) => void = () => {},
  ) {
    const la = a.link(b.replicaId)
    const lb = b.link(a.replicaId)
    let messages = 0
    let largest = 0
    for (let round = 0; round < 10_000; round++) {
      const m1 = la.generate()
      if (m1) {
        messages++
        largest = Math.max(largest, m1.length)
        lb.receive(m1)
        onMessage(b)
      }
      const m2 = lb.generate()
      if (m2) {
        messages++
        largest = Math.max(largest, m2.length)
        la.receive(m2)
        onMessage(a)
      }
      if (!m1 && !m2) return { messages, largest }
    }
    throw new Error(`no convergence within the budget ${budget}`)
  }

  it('a joiner syncing a 100k-key map from empty converges in many messages, none over the budget', () => {
    const budget = 64 * 1024
    const a = new AWLWWMap<{ i: number; s: string }>({ replicaId: 'a', maxSyncBytes: budget })
    for (let i = 0; i < 100_000; i++) a.set(`key-${i}`, { i, s: 'value' })
    for (let i = 0; i < 100_000; i += 7) a.delete(`key-${i}`)
    const b = new AWLWWMap<{ i: number; s: string }>({ replicaId: 'b', maxSyncBytes: budget })
    const expected = visible(a)
    const r = syncBudgeted(a, b, budget)
    expect(visible(a)).toEqual(expected)
    expect(canonical(b)).toBe(canonical(a))
    expect(r.largest).toBeLessThanOrEqual(budget)
    // ~3 MB of state in 64 KiB pieces.
    expect(r.messages).toBeGreaterThan(40)
    expect(a.link('b').stats.cut).toBeGreaterThan(20)
    expect(a.link('b').stats.oversized).toBe(0)
  })

  it("a chunk's context covers only the writes it carries: nothing lost on either side", () => {
    // B already holds half of A's writes (gossip, out of order). A chunk whose ranges covered
    // a write it did not carry would mark it seen at B without B holding it (and the tree
    // descent would then delete it at A as well): keys lost, as in DeltaCrdt.
    const a = new AWLWWMap<number>({ replicaId: 'a', maxSyncBytes: 256 })
    const b = new AWLWWMap<number>({ replicaId: 'b', maxSyncBytes: 256 })
    const deltas = []
    for (let i = 0; i < 1_000; i++) deltas.push(a.set(`k${i % 800}`, i))
    for (let i = deltas.length - 1; i >= 0; i--) if (Math.floor(i / 40) % 2 === 1) b.join(deltas[i]!)
    const held = new Map(b.entries())
    const before = visible(a)
    expect(before).toHaveLength(800)
    syncBudgeted(a, b, 256, (to) => {
      if (to !== b) return
      for (const [k, v] of held) {
        // Only a newer write of A may replace a value B held; nothing disappears.
        expect(b.has(k), k).toBe(true)
        expect(b.get(k)!).toBeGreaterThanOrEqual(v)
      }
    })
    expect(visible(a)).toEqual(before)
    expect(canonical(b)).toBe(canonical(a))
  })

  it('a value larger than the budget goes alone, counted, and the replicas still converge', () => {
    const a = new AWLWWMap<string>({ replicaId: 'a', maxSyncBytes: 1024 })
    const b = new AWLWWMap<string>({ replicaId: 'b', maxSyncBytes: 1024 })
    for (let i = 0; i < 20; i++) a.set(`small-${i}`, 'x')
    a.set('big', 'y'.repeat(5000))
    for (let i = 20; i < 40; i++) a.set(`small-${i}`, 'x')
    const r = syncBudgeted(a, b, 1024)
    expect(canonical(b)).toBe(canonical(a))
    expect(a.link('b').stats.oversized).toBe(1)
    expect(r.largest).toBeGreaterThan(5000)
    expect(r.largest).toBeLessThan(5300)
  })

  it('maxSyncBytes is validated', () => {
    for (const bad of [0, 63, 1.5, -1, Number.NaN, '1000' as unknown as number]) {
      expect(() => new AWLWWMap({ maxSyncBytes: bad })).toThrow(InvalidArgumentError)
    }
    expect(new AWLWWMap({}).maxSyncBytes).toBe(DEFAULT_MAX_SYNC_BYTES)
    expect(new AWLWWMap({ maxSyncBytes: 64 }).maxSyncBytes).toBe(64)
  })
})

describe('what gossip delivered is not sent again', () => {
  const big = (i: number) => `${i}-${'v'.repeat(1000)}`

  function settled(n: number) {
    const rs = Array.from({ length: n }, (_, i) => new AWLWWMap<string>({ replicaId: `r${i}` }))
    for (const x of rs) for (const y of rs) if (x !== y) syncPair(x, y)
    return rs
  }

  /** Writes on `writer`, gossiped to every other replica with joinFrom. */
  function writeAndGossip(rs: AWLWWMap<string>[], writer: AWLWWMap<string>, count: number) {
    for (let i = 0; i < count; i++) {
      const d = writer.set(`w-${writer.replicaId}-${i}`, big(i))
      for (const r of rs) if (r !== writer) r.joinFrom(writer.replicaId, decodeDelta(encodeDelta(d)))
    }
  }

  it("a writer's gossip does not wake the receiver's idle link back to the writer", () => {
    const [a, b] = settled(2) as [AWLWWMap<string>, AWLWWMap<string>]
    writeAndGossip([a, b], a, 10)
    expect(b.link('r0').generate()).toBeNull()
    // The writer's own link woke; it announces the writes by context and finds them there.
    const r = syncPair(a, b)
    expect(canonical(a)).toBe(canonical(b))
    expect(r.bytes).toBeLessThan(500)
  })

  it('writes every replica got by gossip cost each link a context exchange, not the values', () => {
    const rs = settled(4)
    writeAndGossip(rs, rs[0]!, 20)
    writeAndGossip(rs, rs[1]!, 20)
    let bytes = 0
    for (const x of rs) for (const y of rs) if (x !== y) bytes += syncPair(x, y).bytes
    const states = new Set(rs.map(canonical))
    expect(states.size).toBe(1)
    // 40 values of 1 kB each: resending them even once would cost 40 kB.
    expect(bytes).toBeLessThan(6_000)
  })

  it('a write the gossip lost is still repaired', () => {
    const rs = settled(3)
    const [a, b, c] = rs as [AWLWWMap<string>, AWLWWMap<string>, AWLWWMap<string>]
    const d = a.set('lost-to-c', big(1))
    b.joinFrom('r0', d)
    syncPair(b, c)
    expect(c.get('lost-to-c')).toBe(big(1))
    syncPair(a, c)
    expect(canonical(c)).toBe(canonical(a))
  })

  it('an observation the peer never confirms expires: the write is sent after all', () => {
    const [a, b] = settled(2) as [AWLWWMap<string>, AWLWWMap<string>]
    const d = a.set('k', 'v')
    // A wrongly believes B has its write (B never got it).
    a.link('r1').observe(d)
    syncPair(a, b)
    expect(b.get('k')).toBe('v')
    expect(canonical(a)).toBe(canonical(b))
  })
})

describe('broadcast writes: settled links and audits', () => {
  function pair() {
    const a = new AWLWWMap<string>({ replicaId: 'a' })
    const b = new AWLWWMap<string>({ replicaId: 'b' })
    return { a, b }
  }

  it('a link is settled once both sides agreed, and changes since do not unsettle it (they make it not idle)', () => {
    const { a, b } = pair()
    expect(a.link('b').settled).toBe(false) // never exchanged
    syncPair(a, b)
    expect(a.link('b').settled).toBe(true)
    expect(a.link('b').idle).toBe(true)
    a.broadcast(a.set('k', 'v'))
    expect(a.link('b').settled).toBe(true)
    expect(a.link('b').idle).toBe(false)
    // The sync contract is untouched: generate() still speaks, and the pair converges.
    syncPair(a, b)
    expect(b.get('k')).toBe('v')
    expect(a.link('b').idle).toBe(true)
  })

  it('a broadcast write is not sent in answer to the first report that lacks it (gossip may still be on its way), but to the second', () => {
    const { a, b } = pair()
    syncPair(a, b)
    a.broadcast(a.set('k', 'v'.repeat(500)))
    // b's report, made before the broadcast reached it.
    b.link('a').wake()
    a.link('b').receive(b.link('a').generate()!)
    const first = a.link('b').generate()!
    expect(first.length).toBeLessThan(200)
    b.link('a').receive(first)
    expect(b.has('k')).toBe(false)
    // b still lacks it at its next report: the broadcast was lost, and a sends it.
    a.link('b').receive(b.link('a').generate()!)
    const second = a.link('b').generate()!
    expect(second.length).toBeGreaterThan(500)
    b.link('a').receive(second)
    expect(b.get('k')).toBe('v'.repeat(500))
  })

  it('an audit (wake) of a settled link repairs what the broadcast lost, and ends idle', () => {
    const rs = ['x', 'y', 'z'].map((id) => new AWLWWMap<string>({ replicaId: id }))
    const [x, y, z] = rs as [AWLWWMap<string>, AWLWWMap<string>, AWLWWMap<string>]
    for (const p of rs) for (const q of rs) if (p !== q) syncPair(p, q)
    // x writes and broadcasts: y gets it, z's copy is lost.
    const d = x.set('lost-to-z', 'v')
    x.broadcast(d)
    y.joinFrom('x', decodeDelta(encodeDelta(d)))
    y.broadcast(d)
    for (const p of rs)
      for (const q of rs)
        if (p !== q) expect(p.link(q.replicaId).settled, `${p.replicaId}→${q.replicaId}`).toBe(true)
    // y audits z: any replica holding the write repairs the one without it.
    y.link('z').wake()
    expect(y.link('z').settled).toBe(false)
    const r = syncPair(y, z)
    expect(z.get('lost-to-z')).toBe('v')
    expect(r.messages).toBeLessThanOrEqual(6)
    expect(y.link('z').idle && z.link('y').idle).toBe(true)
    // An audit between equal replicas: one message each way.
    syncPair(x, y)
    y.link('x').wake()
    expect(syncPair(y, x).messages).toBeLessThanOrEqual(2)
  })

  it('amid writes on their way: a report lacking only broadcast writes leaves the audited link settled (not idle); a peer ahead of it, behind until its write lands', () => {
    const { a, b } = pair()
    syncPair(a, b)
    // a's write, broadcast (on its way to b); b's write, on its way to a (b broadcast it).
    a.broadcast(a.set('from-a', 'v'))
    const toA = b.set('from-b', 'w')
    b.broadcast(toA)
    // a audits b: one exchange, each side's report lacking the other's write in flight.
    a.link('b').wake()
    b.link('a').receive(a.link('b').generate()!)
    a.link('b').receive(b.link('a').generate()!)
    expect(a.link('b').hasToSend()).toBe(false)
    expect(a.link('b').behind).toBe(true)
    expect(a.link('b').settled).toBe(false)
    // b's write lands: a's link is settled, not idle, and nothing was sent twice.
    a.join(decodeDelta(encodeDelta(toA)))
    expect(a.link('b').behind).toBe(false)
    expect(a.link('b').settled).toBe(true)
    expect(a.link('b').idle).toBe(false)
    // The sync contract still holds: turns of generate() until both say nothing leave them equal.
    syncPair(a, b)
    expect(a.toMap()).toEqual(b.toMap())
  })

  it('a lost broadcast write: a plain audit amid writes leaves it to the next audit; one with expireAssumptions sends it in its second round trip', () => {
    const audit = (x: AWLWWMap<string>, y: AWLWWMap<string>, expire: boolean) => {
      x.link(y.replicaId).wake({ expireAssumptions: expire })
      // x asks, y answers, x answers that: two round trips' worth of messages, at most.
      y.link(x.replicaId).receive(x.link(y.replicaId).generate()!)
      x.link(y.replicaId).receive(y.link(x.replicaId).generate()!)
      const second = x.link(y.replicaId).generate()
      if (second) y.link(x.replicaId).receive(second)
    }
    for (const expire of [false, true]) {
      const { a, b } = pair()
      syncPair(a, b)
      a.broadcast(a.set('lost-to-b', 'v'.repeat(300)))
      audit(a, b, expire)
      expect(b.has('lost-to-b'), `expireAssumptions: ${expire}`).toBe(expire)
      if (!expire) {
        // The next audit finds b still lacking it: not on its way after all.
        audit(a, b, false)
        expect(b.get('lost-to-b')).toBe('v'.repeat(300))
      }
    }
  })

  it('wakeLinks wakes every link', () => {
    const { a, b } = pair()
    syncPair(a, b)
    a.wakeLinks()
    expect(a.link('b').settled).toBe(false)
    expect(a.link('b').generate()).not.toBeNull()
  })
})

describe('push small gaps, pull the bulk (generate with pushBytes)', () => {
  const PUSH = 8 * 1024
  type V = { i: number; s: string }

  /**
   * One request and its reply, as nact-horde runs them: the initiator generates with the push
   * limit, the responder answers with everything it can. Returns the bytes each way.
   */
  function request(from: AWLWWMap<V>, to: AWLWWMap<V>) {
    const msg = from.link(to.replicaId).generate({ pushBytes: PUSH })
    if (msg === null) return undefined
    to.link(from.replicaId).receive(msg)
    const reply = to.link(from.replicaId).generate()
    if (reply !== null) from.link(to.replicaId).receive(reply)
    return { sent: msg.length, received: reply?.length ?? 0 }
  }

  /** Replicas that have each written `n` keys and synced to equality. */
  function settled(names: string[], n: number) {
    const rs = names.map((r) => new AWLWWMap<V>({ replicaId: r, maxSyncBytes: 32 * 1024 }))
    for (const r of rs) for (let i = 0; i < n; i++) r.set(`${r.replicaId}-${i}`, { i, s: 'value' })
    for (const x of rs) for (const y of rs) if (x !== y) syncPair(x, y, { maxRounds: 10_000 })
    return rs
  }

  it('a few writes the peer lacks are pushed in the request itself', () => {
    const [a, b] = settled(['a', 'b'], 10) as [AWLWWMap<V>, AWLWWMap<V>]
    for (let i = 0; i < 5; i++) a.set(`lost-${i}`, { i, s: 'gossip lost it' })
    // The first request announces the writes by its context; the peer's reply is its report.
    request(a, b)
    expect(a.link('b').hasToSend({ pushBytes: PUSH })).toBe(true)
    const sent = a.link('b').stats.itemsSent
    request(a, b)
    expect(a.link('b').stats.itemsSent - sent).toBeGreaterThanOrEqual(5)
    expect(a.link('b').stats.pushesHeldBack).toBe(0)
    expect(canonical(b)).toBe(canonical(a))
  })

  it('a peer far behind is not pushed the bulk: it pulls it, once, in budget-sized replies', () => {
    const [a] = settled(['a'], 0) as [AWLWWMap<V>]
    for (let i = 0; i < 5000; i++) a.set(`k-${i}`, { i, s: 'value' })
    const joiner = new AWLWWMap<V>({ replicaId: 'j', maxSyncBytes: 32 * 1024 })
    // The old replica's own requests carry its context only, however often it asks.
    for (let i = 0; i < 5; i++) request(a, joiner)
    expect(joiner.size).toBe(0)
    expect(a.link('j').stats.pushesHeldBack).toBeGreaterThan(0)
    expect(a.link('j').hasToSend({ pushBytes: PUSH })).toBe(false)
    // The joiner pulls: while the old replica's report shows writes it lacks, it asks again.
    let received = 0
    let requests = 0
    do {
      received += request(joiner, a)?.received ?? 0
      requests++
    } while (joiner.link('a').behind && requests < 1000)
    expect(joiner.link('a').behind).toBe(false)
    expect(visible(joiner)).toEqual(visible(a))
    const state = encodeDelta(a.state()).length
    expect(received).toBeLessThan(1.2 * state)
    expect(requests).toBeGreaterThan(state / (32 * 1024))
  })

  it('a joiner fed by one of three replicas while the others ask it too receives the state about once', () => {
    const rs = settled(['a', 'b', 'c'], 2000)
    const joiner = new AWLWWMap<V>({ replicaId: 'j', maxSyncBytes: 32 * 1024 })
    let received = 0
    for (let turn = 0; turn < 1000 && (turn === 0 || joiner.link('a').behind); turn++) {
      // The others' periodic requests to the joiner, between the joiner's pulls from its feeder.
      for (const r of rs.slice(1)) {
        const before = joiner.link(r.replicaId).stats.bytesReceived
        request(r, joiner)
        received += joiner.link(r.replicaId).stats.bytesReceived - before
      }
      received += request(joiner, rs[0]!)?.received ?? 0
    }
    expect(visible(joiner)).toEqual(visible(rs[0]!))
    expect(received).toBeLessThan(1.3 * encodeDelta(rs[0]!.state()).length)
  })

  it('behind says whether the peer reported writes this replica lacks', () => {
    const [a, b] = settled(['a', 'b'], 3) as [AWLWWMap<V>, AWLWWMap<V>]
    expect(b.link('a').behind).toBe(false)
    a.set('new', { i: 1, s: 'x' })
    request(a, b)
    expect(b.link('a').behind).toBe(true)
    request(b, a)
    expect(b.link('a').behind).toBe(false)
    expect(b.get('new')).toEqual({ i: 1, s: 'x' })
  })
})
