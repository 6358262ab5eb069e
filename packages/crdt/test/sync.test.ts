import { AWLWWMap } from '@nact-horde/crdt'
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
