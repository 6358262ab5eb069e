import { AWLWWMap, DEFAULT_MAX_CLOCK_DRIFT, HybridClock, InvalidArgumentError } from '@nact-horde/crdt'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { canonical, ManualClock, syncPair, visible, wire } from './helpers.js'

const HOUR = 3_600_000

/** The timestamp of the live write of `key` made by replica `r`. */
function stamp(m: AWLWWMap<unknown>, key: string, r: string): { wall: number; logical: number } {
  const e = m
    .state()
    .keys.get(key)
    ?.entries.find((x) => x.r === r)
  if (e === undefined) throw new Error(`${m.replicaId} holds no live write of ${key} by ${r}`)
  return { wall: e.wall, logical: e.logical }
}

describe('a remote timestamp far ahead does not drag the clock forward', () => {
  it('a delta 5 h ahead is stored, but later local writes carry local time', () => {
    const fast = new ManualClock(1_700_000_000_000 + 5 * HOUR)
    const local = new ManualClock(1_700_000_000_000)
    const a = new AWLWWMap<unknown>({ replicaId: 'a', clock: fast })
    const b = new AWLWWMap<unknown>({ replicaId: 'b', clock: local })

    expect(b.join(wire(a.set('k', 'from the future')))).toEqual([
      { type: 'add', key: 'k', value: 'from the future' },
    ])
    expect(b.get('k')).toBe('from the future')
    expect(b.stats().timestampsNotAdopted).toBe(1)

    local.t += 10
    b.set('other', 1)
    expect(stamp(b, 'other', 'b')).toEqual({ wall: local.t, logical: 0 })
    // A write that has seen the future one supersedes it by dots, whatever the timestamps.
    b.set('k', 'from b, after seeing it')
    expect(stamp(b, 'k', 'b').wall).toBe(local.t)
    a.join(wire(b.state()))
    expect(a.get('k')).toBe('from b, after seeing it')
    expect(a.siblings('k')).toEqual(['from b, after seeing it'])
    expect(canonical(a)).toBe(canonical(b))
  })

  it('the same holds when the write arrives through anti-entropy', () => {
    const fast = new ManualClock(1_700_000_000_000 + 5 * HOUR)
    const local = new ManualClock(1_700_000_000_000)
    const a = new AWLWWMap<unknown>({ replicaId: 'a', clock: fast })
    const b = new AWLWWMap<unknown>({ replicaId: 'b', clock: local })
    a.set('x', 1)
    a.set('y', 2)
    syncPair(a, b)
    expect(visible(b)).toEqual([
      ['x', 1],
      ['y', 2],
    ])
    expect(b.stats().timestampsNotAdopted).toBe(2)
    b.set('z', 3)
    expect(stamp(b, 'z', 'b').wall).toBe(local.t)
  })

  it('a joined write already known is not counted again', () => {
    const a = new AWLWWMap<unknown>({ replicaId: 'a', clock: new ManualClock(1_000 + 5 * HOUR) })
    const b = new AWLWWMap<unknown>({ replicaId: 'b', clock: new ManualClock(1_000) })
    const d = wire(a.set('k', 1))
    b.join(d)
    b.join(d)
    b.join(wire(a.state()))
    expect(b.stats().timestampsNotAdopted).toBe(1)
  })

  it('a timestamp within maxClockDrift is adopted, so a write after it orders after it', () => {
    const ahead = new ManualClock(1_000_000 + 30_000)
    const local = new ManualClock(1_000_000)
    const a = new AWLWWMap<unknown>({ replicaId: 'a', clock: ahead })
    const b = new AWLWWMap<unknown>({ replicaId: 'b', clock: local })
    b.join(wire(a.set('k', 1)))
    b.set('j', 2)
    expect(stamp(b, 'j', 'b')).toEqual({ wall: ahead.t, logical: 1 })
    expect(b.stats().timestampsNotAdopted).toBe(0)
  })

  it('the bound is measured from the local wall clock at the time of the join', () => {
    const local = new ManualClock(1_000_000)
    const b = new AWLWWMap<unknown>({ replicaId: 'b', clock: local, maxClockDrift: 1_000 })
    const a = new AWLWWMap<unknown>({ replicaId: 'a', clock: new ManualClock(1_000_000 + 5_000) })
    const early = wire(a.set('k', 1))
    const late = wire(a.set('j', 1))
    b.join(early) // 5 s ahead, bound 1 s: not adopted
    local.t += 4_500 // the remote write is now 0.5 s ahead
    b.join(late)
    expect(b.stats().timestampsNotAdopted).toBe(1)
    b.set('mine', 1)
    expect(stamp(b, 'mine', 'b')).toEqual({ wall: 1_005_000, logical: 2 })
  })

  it('concurrent writes, one of them far ahead: every replica reads the same winner', () => {
    const fast = new ManualClock(1_000_000 + 5 * HOUR)
    const local = new ManualClock(1_000_000)
    const a = new AWLWWMap<unknown>({ replicaId: 'a', clock: fast })
    const b = new AWLWWMap<unknown>({ replicaId: 'b', clock: local })
    const c = new AWLWWMap<unknown>({ replicaId: 'c', clock: local })
    const da = wire(a.set('k', 'ahead'))
    const db = wire(b.set('k', 'local'))
    a.join(db)
    b.join(da)
    c.join(db)
    c.join(da)
    // The far-ahead write keeps its timestamp everywhere, so it wins the tie-break everywhere.
    for (const m of [a, b, c]) {
      expect(m.get('k')).toBe('ahead')
      expect(m.siblings('k')).toEqual(['ahead', 'local'])
    }
    expect(canonical(a)).toBe(canonical(b))
    expect(canonical(b)).toBe(canonical(c))
  })

  it('Infinity adopts every remote timestamp (the behaviour before the bound)', () => {
    const local = new ManualClock(1_000_000)
    const b = new AWLWWMap<unknown>({ replicaId: 'b', clock: local, maxClockDrift: Number.POSITIVE_INFINITY })
    const a = new AWLWWMap<unknown>({ replicaId: 'a', clock: new ManualClock(1_000_000 + 5 * HOUR) })
    b.join(wire(a.set('k', 1)))
    b.set('j', 1)
    expect(stamp(b, 'j', 'b')).toEqual({ wall: 1_000_000 + 5 * HOUR, logical: 1 })
    expect(b.stats().timestampsNotAdopted).toBe(0)
  })

  it('maxClockDrift is validated', () => {
    for (const bad of [-1, Number.NaN, '60000', null]) {
      expect(() => new AWLWWMap({ replicaId: 'a', maxClockDrift: bad as number })).toThrow(
        InvalidArgumentError,
      )
    }
    expect(() => new HybridClock(Date, -5)).toThrow(InvalidArgumentError)
    expect(new AWLWWMap({ replicaId: 'a', maxClockDrift: 0 }).stats()).toMatchObject({
      timestampsNotAdopted: 0,
    })
    expect(DEFAULT_MAX_CLOCK_DRIFT).toBe(60_000)
  })
})

describe('HybridClock.observe', () => {
  it('refuses a wall time beyond the bound and leaves the clock unchanged', () => {
    const wall = new ManualClock(1_000)
    const hlc = new HybridClock(wall, 100)
    expect(hlc.tick()).toEqual({ wall: 1_000, logical: 0 })
    expect(hlc.observe(1_101, 0)).toBe(false)
    expect(hlc.timestampsNotAdopted).toBe(1)
    expect(hlc.tick()).toEqual({ wall: 1_000, logical: 1 })
    expect(hlc.observe(1_100, 7)).toBe(true)
    expect(hlc.tick()).toEqual({ wall: 1_100, logical: 8 })
  })

  it('still adopts a greater logical part at its own wall time, even when that is past the bound', () => {
    // The local wall clock stepped back (NTP correction) after the clock issued 5_000.
    const wall = new ManualClock(5_000)
    const hlc = new HybridClock(wall, 100)
    hlc.tick()
    wall.t = 1_000
    expect(hlc.observe(5_000, 9)).toBe(true)
    expect(hlc.tick()).toEqual({ wall: 5_000, logical: 10 })
  })
})

describe('convergence with skewed clocks (property)', () => {
  type Op =
    | { kind: 'set'; at: number; key: string; value: number }
    | { kind: 'del'; at: number; key: string }
    | { kind: 'deliver'; index: number; to: number }
    | { kind: 'tick'; ms: number }

  const opArb: fc.Arbitrary<Op> = fc.oneof(
    fc.record({
      kind: fc.constant('set' as const),
      at: fc.nat(3),
      key: fc.constantFrom('a', 'b', 'c'),
      value: fc.nat(9),
    }),
    fc.record({ kind: fc.constant('del' as const), at: fc.nat(3), key: fc.constantFrom('a', 'b', 'c') }),
    fc.record({ kind: fc.constant('deliver' as const), index: fc.nat(), to: fc.nat(3) }),
    fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 1, max: 2_000 }) }),
  )
  // Offsets around a 1 s bound: equal, within it, just past it, hours ahead and behind.
  const offsetArb = fc.constantFrom(0, 0, 300, 999, 1_001, 5 * HOUR, -5 * HOUR)

  it('replicas converge, read the same values, and never write past their own clock + maxClockDrift', () => {
    fc.assert(
      fc.property(
        fc.array(offsetArb, { minLength: 4, maxLength: 4 }),
        fc.array(opArb, { maxLength: 60 }),
        (offsets, ops) => {
          const base = new ManualClock(10 * HOUR)
          const maxClockDrift = 1_000
          const clocks = offsets.map((off) => ({ now: () => base.t + off }))
          const rs = clocks.map(
            (clock, i) => new AWLWWMap<number>({ replicaId: `r${i}`, clock, maxClockDrift }),
          )
          const deltas = []
          const check = (i: number, key: string) => {
            const e = rs[i]!.state()
              .keys.get(key)!
              .entries.find((x) => x.r === `r${i}`)!
            expect(e.wall).toBeLessThanOrEqual(clocks[i]!.now() + maxClockDrift)
          }
          for (const op of ops) {
            if (op.kind === 'set') {
              deltas.push(rs[op.at]!.set(op.key, op.value))
              check(op.at, op.key)
            } else if (op.kind === 'del') deltas.push(rs[op.at]!.delete(op.key))
            else if (op.kind === 'tick') base.t += op.ms
            else if (deltas.length > 0) rs[op.to]!.join(wire(deltas[op.index % deltas.length]!))
          }
          for (let round = 0; round < 2; round++)
            for (let i = 0; i < rs.length; i++) syncPair(rs[i]!, rs[(i + 1) % rs.length]!)
          for (const r of rs.slice(1)) {
            expect(canonical(r)).toBe(canonical(rs[0]!))
            expect(visible(r)).toEqual(visible(rs[0]!))
            // The winner is the same; the others come in no particular order.
            for (const key of ['a', 'b', 'c']) {
              expect(r.siblings(key)[0]).toEqual(rs[0]!.siblings(key)[0])
              expect(r.siblings(key).sort()).toEqual(rs[0]!.siblings(key).sort())
            }
          }
        },
      ),
      { numRuns: 300 },
    )
  })
})
