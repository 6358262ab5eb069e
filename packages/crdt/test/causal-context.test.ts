import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { AWLWWMap } from '../src/aw-lww-map.js'
import { CausalContext } from '../src/causal-context.js'
import { dotsOf } from '../src/sync-link.js'
import type { Delta } from '../src/types.js'

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

  it('takes an empty interval (hi below lo) as no dots, wherever it falls', () => {
    fc.assert(
      fc.property(
        intervalsArb,
        fc.constantFrom('a', 'b', 'c', 'd'),
        fc.nat(80),
        fc.integer({ min: 1, max: 5 }),
        (ivs, r, hi, gap) => {
          const ctx = new CausalContext()
          for (const iv of ivs) ctx.addInterval(iv.r, iv.lo, iv.hi)
          const before = ctx.clone()
          expect(ctx.addInterval(r, hi + gap, hi)).toBe(false)
          expect(ctx.equals(before)).toBe(true)
        },
      ),
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
  /** The dots a link assumes its peer has (private: read for the test). */
  const assumed = (link: unknown) => (link as { assumedNew: CausalContext }).assumedNew

  it('gathers every dot of a delta: live entries, superseded dots and ranges', () => {
    const a = new AWLWWMap<number>({ replicaId: 'a' })
    const b = new AWLWWMap<number>({ replicaId: 'b' })
    const deltas: Delta<number>[] = []
    for (let i = 0; i < 5; i++) deltas.push(a.set(`k${i}`, i))
    b.join(a.state())
    // b supersedes two of a's writes (dead dots), writes a key of its own and deletes one.
    deltas.push(b.set('k1', 10), b.set('k2', 20), b.set('x', 1), b.delete('k3'))
    for (const d of deltas) {
      const dots = dotsOf(d)
      d.keys.forEach((kd) => {
        for (const e of kd.entries) expect(dots.has(e.r, e.c)).toBe(true)
        for (const x of kd.dead) expect(dots.has(x.r, x.c)).toBe(true)
      })
      let count = 0
      for (const [, iv] of dots.entries())
        for (let k = 0; k < iv.length; k += 2) count += iv[k + 1]! - iv[k]! + 1
      let expected = 0
      d.keys.forEach((kd) => {
        expected += kd.entries.length + kd.dead.length
      })
      expect(count).toBe(expected)
    }
    // A whole state: its dots are exactly the replica's context.
    const context = (b as unknown as { context: CausalContext }).context
    expect(dotsOf(b.state()).equals(context)).toBe(true)
  })

  it('leaves every link assuming exactly what observing the delta on each link did, the sender excepted', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(2), fc.constantFrom('k1', 'k2', 'k3', 'k4'), fc.boolean()), {
          maxLength: 30,
        }),
        (ops) => {
          const writers = [0, 1, 2].map((i) => new AWLWWMap<number>({ replicaId: `w${i}` }))
          const viaBroadcast = new AWLWWMap<number>({ replicaId: 'x' })
          const viaObserve = new AWLWWMap<number>({ replicaId: 'y' })
          const peers = ['p1', 'p2', 'p3']
          for (const p of peers) {
            viaBroadcast.link(p)
            viaObserve.link(p)
          }
          for (const [i, key, del] of ops) {
            const w = writers[i]!
            const d = del ? w.delete(key) : w.set(key, i)
            for (const o of writers) if (o !== w) o.join(d)
            viaBroadcast.broadcast(d, 'p2')
            for (const p of peers) if (p !== 'p2') viaObserve.link(p).observe(d)
          }
          for (const p of peers)
            expect(assumed(viaBroadcast.link(p)).equals(assumed(viaObserve.link(p)))).toBe(true)
        },
      ),
    )
  })
})
