import { AWLWWMap, DecodeError, type Diff, InvalidArgumentError } from '@nact-horde/crdt'
import { describe, expect, it } from 'vitest'
import { canonical, ManualClock, syncPair, visible, wire } from './helpers.js'

const pair = (clock = new ManualClock()) =>
  [
    new AWLWWMap<unknown>({ replicaId: 'a', clock }),
    new AWLWWMap<unknown>({ replicaId: 'b', clock }),
  ] as const

describe('AWLWWMap reads and local writes', () => {
  it('reads back what it wrote, and forgets what it deleted', () => {
    const [a] = pair()
    a.set('x', 1)
    a.set('y', { n: [1, 'two', null, true] })
    a.set('x', 2)
    expect(a.get('x')).toBe(2)
    expect(a.get('y')).toEqual({ n: [1, 'two', null, true] })
    expect(a.has('x')).toBe(true)
    expect(a.size).toBe(2)
    a.delete('x')
    expect(a.has('x')).toBe(false)
    expect(a.get('x')).toBeUndefined()
    expect([...a.keys()]).toEqual(['y'])
    expect(a.toMap()).toEqual(new Map([['y', { n: [1, 'two', null, true] }]]))
  })

  it('holds Uint8Array values and ships them as Uint8Array', () => {
    const [a, b] = pair()
    b.join(wire(a.set('bin', new Uint8Array([1, 2, 255]))))
    const v = b.get('bin') as Uint8Array
    expect(v).toBeInstanceOf(Uint8Array)
    expect(v.constructor).toBe(Uint8Array)
    expect([...v]).toEqual([1, 2, 255])
  })

  it('refuses values that are not JSON-like, with a typed error', () => {
    const [a] = pair()
    for (const bad of [
      undefined,
      () => 1,
      new Date(),
      new Map(),
      Number.NaN,
      Number.POSITIVE_INFINITY,
      { d: new Set() },
      10n,
    ]) {
      expect(() => a.set('k', bad)).toThrow(InvalidArgumentError)
    }
    expect(() => a.set(42 as unknown as string, 1)).toThrow(InvalidArgumentError)
    expect(a.size).toBe(0)
  })

  it('deleting an absent key is a no-op delta', () => {
    const [a, b] = pair()
    const d = a.delete('nope')
    expect(b.join(d)).toEqual([])
    expect(canonical(b)).toBe(canonical(new AWLWWMap({ replicaId: 'b' })))
  })
})

describe('add-wins and last-writer-wins', () => {
  it('a later write (one that has seen the earlier) wins, even when its wall clock is behind', () => {
    const ca = new ManualClock(2_000_000)
    const cb = new ManualClock(1_000_000) // b's clock is far behind a's
    const a = new AWLWWMap({ replicaId: 'a', clock: ca })
    const b = new AWLWWMap({ replicaId: 'b', clock: cb })
    b.join(wire(a.set('k', 'from a')))
    const later = b.set('k', 'from b, after seeing a')
    a.join(wire(later))
    expect(a.get('k')).toBe('from b, after seeing a')
    expect(b.get('k')).toBe('from b, after seeing a')
    expect(canonical(a)).toBe(canonical(b))
  })

  it('concurrent set and delete: the set wins on both replicas', () => {
    const [a, b] = pair()
    const base = a.set('k', 'v0')
    b.join(wire(base))
    const del = a.delete('k')
    const set = b.set('k', 'v1')
    a.join(wire(set))
    b.join(wire(del))
    expect(a.get('k')).toBe('v1')
    expect(b.get('k')).toBe('v1')
    expect(canonical(a)).toBe(canonical(b))
  })

  it('concurrent sets: the greater timestamp wins everywhere', () => {
    const clock = new ManualClock()
    const a = new AWLWWMap({ replicaId: 'a', clock })
    const b = new AWLWWMap({ replicaId: 'b', clock })
    const da = a.set('k', 'a-earlier')
    clock.t += 5
    const db = b.set('k', 'b-later')
    a.join(wire(db))
    b.join(wire(da))
    expect(a.get('k')).toBe('b-later')
    expect(b.get('k')).toBe('b-later')
  })

  it('concurrent sets with equal timestamps: the greater replica id wins everywhere', () => {
    const clock = new ManualClock()
    const a = new AWLWWMap({ replicaId: 'zeta', clock })
    const b = new AWLWWMap({ replicaId: 'alpha', clock })
    const da = a.set('k', 'from zeta')
    const db = b.set('k', 'from alpha')
    a.join(wire(db))
    b.join(wire(da))
    expect(a.get('k')).toBe('from zeta')
    expect(b.get('k')).toBe('from zeta')
  })

  it('a write that has seen two concurrent writes supersedes both', () => {
    const [a, b] = pair()
    const c = new AWLWWMap<unknown>({ replicaId: 'c' })
    const da = a.set('k', 1)
    const db = b.set('k', 2)
    c.join(wire(da))
    c.join(wire(db))
    const dc = c.set('k', 3)
    a.join(wire(db))
    a.join(wire(dc))
    expect(a.get('k')).toBe(3)
    expect(a.state().keys.get('k')?.entries.length).toBe(1)
  })

  it('a delete that has seen the value removes it on replicas that later receive it', () => {
    const [a, b] = pair()
    b.join(wire(a.set('k', 1)))
    a.join(wire(b.delete('k')))
    expect(a.has('k')).toBe(false)
  })

  it('a delta arriving before the one it supersedes still ends with the later value', () => {
    const [a, b] = pair()
    const first = a.set('k', 'first')
    const second = a.set('k', 'second')
    b.join(wire(second))
    b.join(wire(first))
    expect(b.get('k')).toBe('second')
    expect(canonical(a)).toBe(canonical(b))
  })
})

describe('join diffs', () => {
  it('reports adds with the winning value and removes, once', () => {
    const [a, b] = pair()
    const d1 = a.set('k', 1)
    expect(b.join(wire(d1))).toEqual<Diff<unknown>[]>([{ type: 'add', key: 'k', value: 1 }])
    expect(b.join(wire(d1))).toEqual([])
    expect(b.join(wire(a.set('k', 2)))).toEqual([{ type: 'add', key: 'k', value: 2 }])
    expect(b.join(wire(a.delete('k')))).toEqual([{ type: 'remove', key: 'k' }])
    expect(b.join(wire(a.delete('k')))).toEqual([])
  })

  /** Two concurrent writes of 'k': `winner` has the later timestamp. */
  const concurrent = () => {
    const clock = new ManualClock()
    const a = new AWLWWMap({ replicaId: 'a', clock })
    const b = new AWLWWMap({ replicaId: 'b', clock })
    clock.t += 10
    const winner = a.set('k', 'winner')
    clock.t -= 5
    return { winner, loser: b.set('k', 'loser') }
  }

  it('reports nothing when a concurrent write loses to the current winner', () => {
    const { winner, loser } = concurrent()
    const c = new AWLWWMap<unknown>({ replicaId: 'c' })
    expect(c.join(wire(winner))).toHaveLength(1)
    expect(c.join(wire(loser))).toEqual([])
    expect(c.get('k')).toBe('winner')
  })

  it('with siblingDiffs, reports a concurrent write that loses (siblings changed, the winner did not)', () => {
    const { winner, loser } = concurrent()
    const c = new AWLWWMap<unknown>({ replicaId: 'c', siblingDiffs: true })
    expect(c.join(wire(winner))).toHaveLength(1)
    expect(c.join(wire(loser))).toEqual([{ type: 'add', key: 'k', value: 'winner' }])
    expect(c.siblings('k')).toEqual(['winner', 'loser'])
    // Joining it again changes nothing: nothing to report.
    expect(c.join(wire(loser))).toEqual([])
  })

  it('refuses a key longer than any replica could decode', () => {
    const m = new AWLWWMap({ replicaId: 'a' })
    expect(() => m.set('k'.repeat(65_537), 1)).toThrow(InvalidArgumentError)
    expect(m.set('k'.repeat(65_536), 1).keys.size).toBe(1)
  })

  it('reports nothing when an overwrite carries an equal value', () => {
    const [a, b] = pair()
    b.join(wire(a.set('k', { same: [1] })))
    expect(b.join(wire(a.set('k', { same: [1] })))).toEqual([])
  })

  it('a full state join reports every key once', () => {
    const [a, b] = pair()
    for (let i = 0; i < 50; i++) a.set(`k${i}`, i)
    const diffs = b.join(wire(a.state()))
    expect(diffs).toHaveLength(50)
    expect(b.join(wire(a.state()))).toEqual([])
  })
})

describe('state ranges', () => {
  it('a full state removes writes the sender has seen superseded, and nothing else', () => {
    const [a, b] = pair()
    b.join(wire(a.set('gone', 1)))
    b.join(wire(a.set('kept', 1)))
    const onlyB = b.set('mine', 1)
    a.delete('gone') // b never hears of this delete directly
    const diffs = b.join(wire(a.state()))
    expect(diffs).toEqual([{ type: 'remove', key: 'gone' }])
    expect(visible(b)).toEqual([
      ['kept', 1],
      ['mine', 1],
    ])
    a.join(wire(onlyB))
    expect(canonical(a)).toBe(canonical(b))
  })
})

describe('errors', () => {
  it('replica ids are validated', () => {
    expect(() => new AWLWWMap({ replicaId: '' })).toThrow(InvalidArgumentError)
    expect(() => new AWLWWMap({ replicaId: 'x'.repeat(65) })).toThrow(InvalidArgumentError)
  })

  it('a fresh replica gets a random id, different every time', () => {
    expect(new AWLWWMap().replicaId).not.toBe(new AWLWWMap().replicaId)
  })

  it('link.receive rejects bad bytes with DecodeError and leaves the replica untouched', () => {
    const [a] = pair()
    a.set('k', 1)
    const before = canonical(a)
    expect(() => a.link('b').receive(new Uint8Array([0x93, 1, 2]))).toThrow(DecodeError)
    expect(a.link('b').stats.rejected).toBe(1)
    expect(canonical(a)).toBe(before)
  })
})

describe('sync basics', () => {
  it('two empty replicas settle at once and then stay silent', () => {
    const [a, b] = pair()
    const r = syncPair(a, b)
    expect(r.rounds).toBeLessThanOrEqual(3)
    expect(a.link('b').generate()).toBeNull()
    expect(b.link('a').generate()).toBeNull()
  })

  it('a local change wakes a silent link, and it falls silent again after syncing', () => {
    const [a, b] = pair()
    syncPair(a, b)
    a.set('k', 1)
    expect(a.link('b').generate()).not.toBeNull()
    syncPair(a, b)
    expect(b.get('k')).toBe(1)
    expect(a.link('b').generate()).toBeNull()
    expect(b.link('a').generate()).toBeNull()
  })

  it('unlink drops the peer state; a new link starts over and still converges', () => {
    const [a, b] = pair()
    a.set('k', 1)
    syncPair(a, b)
    a.unlink('b')
    b.unlink('a')
    a.set('j', 2)
    syncPair(a, b)
    expect(canonical(a)).toBe(canonical(b))
  })
})
