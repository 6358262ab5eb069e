import { AWLWWMap, type Delta } from '@nact-horde/crdt'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { CausalContext } from '../src/causal-context.js'
import { dotsOf } from '../src/sync-link.js'

/** Intervals `[lo, hi]` of small counters for a few replicas, in any order. */
const intervalsArb = fc.array(
  fc
    .tuple(fc.constantFrom('a', 'b', 'c'), fc.integer({ min: 1, max: 60 }), fc.nat(6))
    .map(([r, lo, len]) => ({ r, lo, hi: lo + len })),
  { maxLength: 40 },
)

/** Every dot of `ctx`, as "replica:counter". */
function dotSet(ctx: CausalContext): Set<string> {
  const out = new Set<string>()
  for (const [r, iv] of ctx.entries())
    for (let k = 0; k < iv.length; k += 2) for (let c = iv[k]!; c <= iv[k + 1]!; c++) out.add(`${r}:${c}`)
  return out
}

/** Sorted, disjoint and non-adjacent, each interval well formed. */
function wellFormed(ctx: CausalContext): boolean {
  for (const [, iv] of ctx.entries()) {
    for (let k = 0; k < iv.length; k += 2) {
      if (iv[k]! > iv[k + 1]!) return false
      if (k > 0 && iv[k]! <= iv[k - 1]! + 1) return false
    }
  }
  return true
}

describe('CausalContext', () => {
  it('holds exactly the dots added, as sorted, disjoint, non-adjacent intervals, whatever the order of adding', () => {
    fc.assert(
      fc.property(intervalsArb, (ivs) => {
        const ctx = new CausalContext()
        const model = new Set<string>()
        for (const { r, lo, hi } of ivs) {
          const before = model.size
          for (let c = lo; c <= hi; c++) model.add(`${r}:${c}`)
          // addInterval reports whether any dot was new.
          expect(ctx.addInterval(r, lo, hi)).toBe(model.size > before)
        }
        expect(wellFormed(ctx)).toBe(true)
        expect(dotSet(ctx)).toEqual(model)
        for (const r of ['a', 'b', 'c'])
          for (let c = 0; c <= 70; c++) expect(ctx.has(r, c)).toBe(model.has(`${r}:${c}`))
      }),
    )
  })

  it('merges like it adds: the same dots from one context merged into another as from adding each', () => {
    fc.assert(
      fc.property(intervalsArb, intervalsArb, (xs, ys) => {
        const base = new CausalContext()
        for (const { r, lo, hi } of xs) base.addInterval(r, lo, hi)
        const other = new CausalContext()
        for (const { r, lo, hi } of ys) for (let c = lo; c <= hi; c++) other.add(r, c)
        const merged = base.clone()
        merged.merge(other)
        const added = base.clone()
        for (const { r, lo, hi } of ys) for (let c = lo; c <= hi; c++) added.add(r, c)
        expect(wellFormed(merged)).toBe(true)
        expect(merged.equals(added)).toBe(true)
      }),
    )
  })
})

describe('dotsOf (what a broadcast tells every link)', () => {
  it('gathers every dot of a delta: live entries, superseded dots and ranges', () => {
    const a = new AWLWWMap<number>({ replicaId: 'a' })
    const b = new AWLWWMap<number>({ replicaId: 'b' })
    const deltas: Delta<number>[] = []
    for (let i = 0; i < 5; i++) deltas.push(a.set(`k${i}`, i))
    b.join(a.state())
    // b supersedes two of a's writes (dead dots) and writes a key of its own.
    deltas.push(b.set('k1', 10), b.set('k2', 20), b.set('x', 1), b.delete('k3'))
    for (const d of deltas) {
      const expected = new CausalContext()
      d.keys.forEach((kd) => {
        for (const e of kd.entries) expected.add(e.r, e.c)
        for (const x of kd.dead) expected.add(x.r, x.c)
      })
      expected.merge(d.ranges)
      expect(dotsOf(d).equals(expected)).toBe(true)
    }
    // A whole state carries ranges: every dot of the context is among the gathered ones.
    const state = b.state()
    const dots = dotsOf(state)
    for (const [r, iv] of state.ranges)
      for (let k = 0; k < iv.length; k += 2) expect(dots.has(r, iv[k]!)).toBe(true)
  })
})
