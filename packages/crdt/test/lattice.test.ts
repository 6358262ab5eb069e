import { AWLWWMap, type Delta, InvalidArgumentError, mergeDeltas } from '@nact-horde/crdt'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { canonical, ManualClock, wire } from './helpers.js'

// A random history: three replicas write and delete a few keys and sometimes receive each
// other's deltas. Its outcome is three states and the deltas that were produced.
type Op =
  | { kind: 'set'; at: number; key: string; value: number }
  | { kind: 'del'; at: number; key: string }
  | { kind: 'deliver'; index: number; to: number }
  | { kind: 'tick' }

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    kind: fc.constant('set' as const),
    at: fc.nat(2),
    key: fc.constantFrom('a', 'b', 'c', 'd'),
    value: fc.nat(9),
  }),
  fc.record({ kind: fc.constant('del' as const), at: fc.nat(2), key: fc.constantFrom('a', 'b', 'c', 'd') }),
  fc.record({ kind: fc.constant('deliver' as const), index: fc.nat(), to: fc.nat(2) }),
  fc.record({ kind: fc.constant('tick' as const) }),
)

function play(ops: Op[]): { states: Delta<number>[]; deltas: Delta<number>[] } {
  const clock = new ManualClock()
  const rs = [0, 1, 2].map((i) => new AWLWWMap<number>({ replicaId: `r${i}`, clock }))
  const deltas: Delta<number>[] = []
  for (const op of ops) {
    if (op.kind === 'set') deltas.push(rs[op.at]!.set(op.key, op.value))
    else if (op.kind === 'del') deltas.push(rs[op.at]!.delete(op.key))
    else if (op.kind === 'tick') clock.t += 1
    else if (deltas.length > 0) rs[op.to]!.join(wire(deltas[op.index % deltas.length]!))
  }
  return { states: rs.map((r) => wire(r.state())), deltas }
}

const fresh = (...ds: Delta<number>[]) => {
  const m = new AWLWWMap<number>({ replicaId: 'observer' })
  for (const d of ds) m.join(d)
  return m
}

describe('join is a lattice join', () => {
  const history = fc.array(opArb, { minLength: 1, maxLength: 40 })

  it('is commutative', () => {
    fc.assert(
      fc.property(history, (ops) => {
        const {
          states: [a, b],
        } = play(ops)
        expect(canonical(fresh(a!, b!))).toBe(canonical(fresh(b!, a!)))
      }),
      { numRuns: 300 },
    )
  })

  it('is associative', () => {
    fc.assert(
      fc.property(history, (ops) => {
        const {
          states: [a, b, c],
        } = play(ops)
        const ab = fresh(a!, b!).state()
        const bc = fresh(b!, c!).state()
        expect(canonical(fresh(ab, c!))).toBe(canonical(fresh(a!, bc)))
      }),
      { numRuns: 300 },
    )
  })

  it('is idempotent, and a second join reports no diffs', () => {
    fc.assert(
      fc.property(history, (ops) => {
        const {
          states: [a, b],
        } = play(ops)
        const m = fresh(a!, b!)
        const before = canonical(m)
        expect(m.join(a!)).toEqual([])
        expect(m.join(b!)).toEqual([])
        expect(canonical(m)).toBe(before)
      }),
      { numRuns: 300 },
    )
  })

  it('applying every delta in any order, with duplicates, gives the same state', () => {
    fc.assert(
      fc.property(history, fc.integer(), (ops, seed) => {
        const { deltas } = play(ops)
        const shuffled = fc.sample(fc.shuffledSubarray(deltas, { minLength: deltas.length }), {
          seed,
          numRuns: 1,
        })[0]!
        const withDups = [...shuffled, ...deltas.slice(0, deltas.length >> 1)]
        expect(canonical(fresh(...withDups))).toBe(canonical(fresh(...deltas)))
      }),
      { numRuns: 300 },
    )
  })

  it('the join of the replicas’ states equals the join of all deltas they produced, once all are delivered', () => {
    fc.assert(
      fc.property(history, (ops) => {
        const { states, deltas } = play(ops)
        const all = fresh(...deltas)
        const merged = fresh(...states)
        // The states may know of a superseded dot the delta list also has: compare visible
        // content and, more strictly, the states after each also receives all deltas.
        for (const d of deltas) merged.join(d)
        expect(canonical(merged)).toBe(canonical(all))
      }),
      { numRuns: 300 },
    )
  })
})

describe('mergeDeltas: one delta for a batch of writes', () => {
  const history = fc.array(opArb, { minLength: 1, maxLength: 40 })
  /** A replica holding `base`, then `deltas` joined. */
  const after = (base: Delta<number>, deltas: Delta<number>[]) => {
    const m = fresh(base)
    for (const d of deltas) m.join(d)
    return m
  }

  it('joining the merge of any of the writes, in any order, with duplicates, equals joining each in turn', () => {
    fc.assert(
      fc.property(history, fc.integer(), fc.nat(2), (ops, seed, at) => {
        const { states, deltas } = play(ops)
        const picked = fc.sample(fc.shuffledSubarray(deltas), { seed, numRuns: 1 })[0]!
        const batch = [...picked, ...picked.slice(0, picked.length >> 1)]
        if (batch.length === 0) return
        const merged = wire(mergeDeltas(batch))
        const base = states[at]!
        expect(canonical(after(base, [merged]))).toBe(canonical(after(base, batch)))
        // A merge of merges is a merge: batches can be batched again (a relay's window).
        const half = batch.length >> 1
        const twice = mergeDeltas([
          mergeDeltas(batch.slice(0, half + 1)),
          mergeDeltas(batch.slice(half + 1).concat(batch[0]!)),
        ])
        expect(canonical(after(base, [wire(twice)]))).toBe(canonical(after(base, batch)))
      }),
      { numRuns: 300 },
    )
  })

  it('a write and the write superseding it merge into the later one, the earlier listed as superseded', () => {
    const m = new AWLWWMap<number>({ replicaId: 'a' })
    const first = m.set('k', 1)
    const second = m.set('k', 2)
    const merged = mergeDeltas([first, second])
    const kd = merged.keys.get('k')!
    expect(kd.entries.map((e) => e.value)).toEqual([2])
    expect(kd.dead).toEqual([{ r: 'a', c: 1 }])
    const other = new AWLWWMap<number>({ replicaId: 'b' })
    other.join(first)
    expect(other.join(wire(merged))).toEqual([{ type: 'add', key: 'k', value: 2 }])
  })

  it('refuses a delta with context ranges, with a message that says what to do', () => {
    const m = new AWLWWMap<number>({ replicaId: 'a' })
    const d = m.set('k', 1)
    expect(() => mergeDeltas([d, m.state()])).toThrow(InvalidArgumentError)
    expect(() => mergeDeltas([m.state()])).toThrow(/without context ranges/)
  })
})
