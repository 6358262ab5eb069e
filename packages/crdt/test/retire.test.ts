// Retiring the replica ids of processes that are gone: the context, and every sync message,
// stop carrying them; their dots can never come back; visible content never changes.

import { AWLWWMap, type Delta, decodeDelta, encodeDelta } from '@nact-horde/crdt'
import { describe, expect, it } from 'vitest'
import { canonical, prng, syncPair, testSeed, visible } from './helpers.js'

const wire = <V>(d: Delta<V>): Delta<V> => decodeDelta(encodeDelta(d as Delta<never>)) as Delta<V>

/** Replicas a, b, c, and a gone process `ghost` whose writes they all hold. */
function clusterWithGhost() {
  const ghost = new AWLWWMap<number>({ replicaId: 'ghost' })
  const ghostDeltas = [ghost.set('g1', 1), ghost.set('g2', 2), ghost.set('shared', 3)]
  const reps = ['a', 'b', 'c'].map((id) => new AWLWWMap<number>({ replicaId: id }))
  for (const m of reps) for (const d of ghostDeltas) m.join(wire(d))
  return { ghost, ghostDeltas, reps }
}

/** Alternates turns between a and b for `turns` turns, whether or not they settle. */
function exchange(a: AWLWWMap<number>, b: AWLWWMap<number>, turns: number): number {
  let bytes = 0
  for (let i = 0; i < turns; i++) {
    const m1 = a.link(b.replicaId).generate()
    if (m1) {
      bytes += m1.length
      b.link(a.replicaId).receive(m1)
    }
    const m2 = b.link(a.replicaId).generate()
    if (m2) {
      bytes += m2.length
      a.link(b.replicaId).receive(m2)
    }
  }
  return bytes
}

describe('retire', () => {
  it('refuses its own id and an id with live writes here, changing nothing', () => {
    const { reps } = clusterWithGhost()
    const a = reps[0]!
    a.set('x', 1)
    const before = canonical(a)
    expect(a.retire('a')).toBe(false)
    expect(a.liveCount('ghost')).toBe(3)
    expect(a.retire('ghost')).toBe(false)
    expect(canonical(a)).toBe(before)
    expect(a.retiredIds()).toEqual([])
    expect(a.stats().retired).toBe(0)
  })

  it('drops a fully superseded id from the context and ignores its dots from then on', () => {
    const { ghostDeltas, reps } = clusterWithGhost()
    const [a, b] = reps as [AWLWWMap<number>, AWLWWMap<number>]
    for (const k of ['g1', 'g2']) b.delete(k)
    b.set('shared', 30)
    syncPair(a, b)
    expect(a.liveCount('ghost')).toBe(0)
    const content = visible(a)
    expect(a.replicaIds()).toContain('ghost')
    expect(a.retire('ghost')).toBe(true)
    expect(a.retire('ghost')).toBe(true)
    expect(a.replicaIds()).not.toContain('ghost')
    expect(a.retiredIds()).toEqual(['ghost'])
    expect(a.stats()).toMatchObject({ replicaIds: 1, retired: 1, retiredIgnored: 0 })

    // Old deltas of the ghost (gossip replayed late, a relayed state) bring nothing back.
    for (const d of ghostDeltas) expect(a.join(wire(d))).toEqual([])
    expect(a.join(wire(b.state()))).toEqual([])
    expect(visible(a)).toEqual(content)
    expect(a.replicaIds()).not.toContain('ghost')
    expect(a.stats().retiredIgnored).toBeGreaterThanOrEqual(3)

    // Forgotten: its dots are accepted again (the application forgets only once all retired it).
    expect(a.forgetRetired('ghost')).toBe(true)
    expect(a.forgetRetired('ghost')).toBe(false)
    a.join(wire(ghostDeltas[0]!))
    expect(a.replicaIds()).toContain('ghost')
  })

  it('three replicas: one retires before the others; they keep syncing, then converge and go quiet', () => {
    const { reps } = clusterWithGhost()
    const [a, b, c] = reps as [AWLWWMap<number>, AWLWWMap<number>, AWLWWMap<number>]
    a.delete('g1')
    a.delete('g2')
    a.set('shared', 4)
    syncPair(a, b)
    syncPair(b, c)
    syncPair(a, c)
    const content = visible(a)
    for (const m of reps) expect(m.liveCount('ghost')).toBe(0)

    expect(a.retire('ghost')).toBe(true)
    // b and c still hold the ghost's dots: links stay busy, nothing re-enters a.
    exchange(a, b, 10)
    exchange(a, c, 10)
    expect(a.replicaIds()).not.toContain('ghost')
    expect(b.replicaIds()).toContain('ghost')
    for (const m of reps) expect(visible(m)).toEqual(content)

    expect(b.retire('ghost')).toBe(true)
    exchange(b, c, 5)
    expect(c.retire('ghost')).toBe(true)
    syncPair(a, b)
    syncPair(b, c)
    syncPair(a, c)
    for (const m of reps) {
      expect(visible(m)).toEqual(content)
      expect(m.replicaIds().sort()).toEqual(['a'])
    }
    expect(canonical(b)).toBe(canonical(a))
    expect(canonical(c)).toBe(canonical(a))
    for (const [x, y] of [
      [a, b],
      [b, c],
      [a, c],
    ] as const) {
      expect(x.link(y.replicaId).generate()).toBeNull()
      expect(y.link(x.replicaId).generate()).toBeNull()
    }
    // A fresh link's first message no longer names the ghost.
    const first = a.link('fresh').generate()!
    expect(Buffer.from(first).includes(Buffer.from('ghost'))).toBe(false)
  })

  it('forgets the retired id in the kept state of every link', () => {
    const { reps } = clusterWithGhost()
    const [a, b] = reps as [AWLWWMap<number>, AWLWWMap<number>]
    for (const k of ['g1', 'g2', 'shared']) a.delete(k)
    syncPair(a, b)
    a.retire('ghost')
    b.retire('ghost')
    // Equal once both retired: the links settle in a round or two, and carry no ghost dot.
    const r = syncPair(a, b)
    expect(r.rounds).toBeLessThanOrEqual(3)
    expect(Buffer.from(a.link('b').generate() ?? new Uint8Array()).includes(Buffer.from('ghost'))).toBe(false)
  })
})

describe('rebase', () => {
  it('re-issues the live writes of a gone replica under this one: same reads, siblings kept, newer writes still win', () => {
    const { reps } = clusterWithGhost()
    const [a, b, c] = reps as [AWLWWMap<number>, AWLWWMap<number>, AWLWWMap<number>]
    // A write to `shared` concurrent with the ghost's (a sibling, newer timestamp).
    const dShared = new AWLWWMap<number>({ replicaId: 'z' }).set('shared', 33)
    a.join(wire(dShared))
    const before = visible(a)
    const siblings = a.siblings('shared').sort()
    const delta = a.rebase('ghost')
    expect(visible(a)).toEqual(before)
    expect(a.siblings('shared').sort()).toEqual(siblings)
    expect(a.liveCount('ghost')).toBe(0)
    expect(a.liveCount('a')).toBe(3)
    expect(a.retire('ghost')).toBe(true)

    // c joins the rebase: the ghost's writes are superseded there too, reads unchanged.
    c.join(wire(dShared))
    const cBefore = visible(c)
    c.join(wire(delta))
    expect(visible(c)).toEqual(cBefore)
    expect(c.liveCount('ghost')).toBe(0)

    // A write made concurrently with the rebase, superseding the ghost's write, still wins.
    const newer = b.set('g1', 100)
    a.join(wire(newer))
    expect(a.get('g1')).toBe(100)
    expect(() => a.rebase('a')).toThrow(/own/)
  })

  it('a write that already has a twin (the same value and time from another rebase) is only superseded', () => {
    const { reps } = clusterWithGhost()
    const [a, , c] = reps as [AWLWWMap<number>, AWLWWMap<number>, AWLWWMap<number>]
    const rebased = a.rebase('ghost')
    // Only a's new writes reach c (a budget-cut sync message carries no superseded dot): c holds both.
    c.join({
      keys: new Map([...rebased.keys].map(([k, kd]) => [k, { entries: kd.entries, dead: [] }])),
      ranges: new Map(),
    })
    expect(c.liveCount('ghost')).toBe(3)
    expect(c.liveCount('a')).toBe(3)
    const before = visible(c)
    const d = c.rebase('ghost')
    expect(visible(c)).toEqual(before)
    expect(c.liveCount('c')).toBe(0)
    expect([...d.keys.values()].every((kd) => kd.entries.length === 0)).toBe(true)
    expect(c.siblings('g1')).toEqual([1])
  })

  it('renewReplicaId: a replica whose id the others retired continues under a new one', () => {
    const a = new AWLWWMap<number>({ replicaId: 'a' })
    const b = new AWLWWMap<number>({ replicaId: 'b' })
    b.join(wire(a.set('x', 1)))
    const old = a.replicaId
    const fresh = a.renewReplicaId()
    expect(fresh).not.toBe(old)
    expect(a.replicaId).toBe(fresh)
    b.join(wire(a.rebase(old)))
    expect(a.retire(old)).toBe(true)
    b.retire(old)
    b.join(wire(a.set('y', 2)))
    syncPair(a, b)
    expect(visible(b)).toEqual([
      ['x', 1],
      ['y', 2],
    ])
    expect(b.replicaIds()).toEqual([fresh])
  })
})

describe('seeded: retiring a replica whose writes are superseded everywhere never changes what any replica reads', () => {
  it('under loss, duplication and replays of old messages', () => {
    const seed = testSeed('retire')
    const rand = prng(seed)
    const ids = ['r0', 'r1', 'r2', 'r3']
    const reps = ids.map((id) => new AWLWWMap<number>({ replicaId: id }))
    const ghosts = ['g0', 'g1'].map((id) => new AWLWWMap<number>({ replicaId: id }))
    const old: { to: number; kind: 'delta' | 'sync'; bytes: Uint8Array; from: number }[] = []
    const keys = Array.from({ length: 12 }, (_, i) => `k${i}`)
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!

    // The ghosts write, their writes reach some replicas; then the live replicas overwrite or
    // delete every key, and the cluster syncs until equal: every ghost write is superseded.
    for (let i = 0; i < 40; i++) {
      const g = pick(ghosts)
      const bytes = encodeDelta(g.set(pick(keys), Math.floor(rand() * 1000)))
      for (let to = 0; to < reps.length; to++) {
        old.push({ to, kind: 'delta', bytes, from: -1 })
        if (rand() < 0.5) reps[to]!.join(decodeDelta(bytes))
      }
    }
    for (let i = 0; i < reps.length; i++) {
      const g = ghosts[i % 2]!
      for (const to of reps) to.join(decodeDelta(encodeDelta(g.state())))
    }
    for (const k of keys) {
      const w = pick(reps)
      const bytes = encodeDelta(rand() < 0.3 ? w.delete(k) : w.set(k, Math.floor(rand() * 1000)))
      for (let to = 0; to < reps.length; to++) if (rand() > 0.3) reps[to]!.join(decodeDelta(bytes))
    }
    for (let round = 0; round < 3; round++)
      for (let i = 0; i < reps.length; i++)
        for (let j = i + 1; j < reps.length; j++) syncPair(reps[i]!, reps[j]!)
    const content = JSON.stringify(visible(reps[0]!))
    for (const m of reps) {
      expect(JSON.stringify(visible(m))).toBe(content)
      for (const g of ghosts) expect(m.liveCount(g.replicaId)).toBe(0)
    }

    // Retire each ghost id on each replica at random moments, amid lossy sync and replays of
    // old ghost deltas and old sync messages.
    const pending = reps.flatMap((_, i) => ghosts.map((g) => ({ i, id: g.replicaId })))
    for (let step = 0; step < 600; step++) {
      const x = rand()
      if (x < 0.05 && pending.length > 0) {
        const k = Math.floor(rand() * pending.length)
        const { i, id } = pending.splice(k, 1)[0]!
        expect(reps[i]!.retire(id)).toBe(true)
      } else if (x < 0.15 && old.length > 0) {
        const o = pick(old)
        const to = reps[o.to]!
        if (o.kind === 'delta') to.join(decodeDelta(o.bytes))
        else to.link(ids[o.from]!).receive(o.bytes)
      } else {
        const i = Math.floor(rand() * reps.length)
        let j = Math.floor(rand() * (reps.length - 1))
        if (j >= i) j++
        const bytes = reps[i]!.link(ids[j]!).generate()
        if (bytes !== null) {
          if (rand() < 0.2) old.push({ to: j, kind: 'sync', bytes, from: i })
          if (rand() > 0.25) reps[j]!.link(ids[i]!).receive(bytes)
        }
      }
      for (const m of reps) expect(JSON.stringify(visible(m))).toBe(content)
    }
    for (const { i, id } of pending) expect(reps[i]!.retire(id)).toBe(true)
    for (let round = 0; round < 2; round++)
      for (let i = 0; i < reps.length; i++)
        for (let j = i + 1; j < reps.length; j++) syncPair(reps[i]!, reps[j]!)
    for (const m of reps) {
      expect(JSON.stringify(visible(m))).toBe(content)
      expect(canonical(m)).toBe(canonical(reps[0]!))
      for (const g of ghosts) expect(m.replicaIds()).not.toContain(g.replicaId)
    }
  })
})
