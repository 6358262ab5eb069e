// The downing rule, table by table: who is down given the agreed members and their votes.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { computeDown, isWinningCoalition, type Suspects } from '../../src/membership/downing.js'
import { computeView } from '../../src/membership/view.js'

const votes = (v: Record<string, Suspects>) => new Map(Object.entries(v))
const down = (members: string[], v: Record<string, Suspects>) => [...computeDown(members, votes(v))].sort()

describe('downing by agreement', () => {
  it.each([
    // [case, members, votes, down]
    ['nobody suspects anybody', ['a', 'b', 'c'], {}, []],
    ['a crashed: b and c saw it close', ['a', 'b', 'c'], { b: { a: 'closed' }, c: { a: 'closed' } }, ['a']],
    ['a fell silent for b and c', ['a', 'b', 'c'], { b: { a: 'silent' }, c: { a: 'silent' } }, ['a']],
    [
      'one cut link a–c: each suspects the other alone',
      ['a', 'b', 'c'],
      { a: { c: 'silent' }, c: { a: 'silent' } },
      [],
    ],
    [
      'a paused node suspects everyone: one vote each',
      ['a', 'b', 'c'],
      { c: { a: 'closed', b: 'closed' } },
      [],
    ],
    ['asymmetric: a does not hear b', ['a', 'b', 'c'], { a: { b: 'silent' } }, []],
    [
      'minority {a} | {b, c}: b and c down a, a downs nobody',
      ['a', 'b', 'c'],
      { a: { b: 'silent', c: 'silent' }, b: { a: 'silent' }, c: { a: 'silent' } },
      ['a'],
    ],
    [
      '2|2 split: the half with the lowest id wins',
      ['a', 'b', 'c', 'd'],
      {
        a: { c: 'silent', d: 'silent' },
        b: { c: 'silent', d: 'silent' },
        c: { a: 'silent', b: 'silent' },
        d: { a: 'silent', b: 'silent' },
      },
      ['c', 'd'],
    ],
    [
      'two nodes, silent split: the lower id keeps the cluster',
      ['a', 'b'],
      { a: { b: 'silent' }, b: { a: 'silent' } },
      ['b'],
    ],
    ['two nodes, the lower crashed: the survivor saw it close', ['a', 'b'], { b: { a: 'closed' } }, ['a']],
    ['two nodes, the lower silent to the higher: no agreement', ['a', 'b'], { b: { a: 'silent' } }, []],
    [
      'two nodes that each saw the other close (one was paused): the fast path downs nobody by itself',
      ['a', 'b'],
      { a: { b: 'closed' }, b: { a: 'closed' } },
      ['b'],
    ],
    ['one node: nobody to down', ['a'], {}, []],
    [
      'votes of a downed member do not count',
      ['a', 'b', 'c', 'd', 'e'],
      {
        a: { e: 'silent', d: 'silent' },
        b: { e: 'silent', d: 'silent' },
        c: { e: 'silent', d: 'silent' },
        e: { c: 'silent' },
      },
      ['d', 'e'],
    ],
    [
      'after d and e are down, a majority of the rest downs c',
      ['a', 'b', 'c', 'd', 'e'],
      {
        a: { c: 'silent', d: 'silent', e: 'silent' },
        b: { c: 'silent', d: 'silent', e: 'silent' },
        c: { d: 'silent' },
        d: {},
        e: {},
      },
      ['c', 'd', 'e'],
    ],
    [
      'votes of non-members do not count',
      ['a', 'b', 'c'],
      { x: { a: 'closed' }, y: { a: 'closed' }, b: { a: 'silent' } },
      [],
    ],
  ] as [string, string[], Record<string, Suspects>, string[]][])('%s', (_name, members, v, expected) => {
    expect(down(members, v)).toEqual(expected)
  })

  it('a split never lets both sides down each other (any members, any split, votes by reachability)', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.string({ minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 9 }),
        fc.array(fc.boolean(), { minLength: 9, maxLength: 9 }),
        (members, sides) => {
          const left = members.filter((_, i) => sides[i])
          const right = members.filter((_, i) => !sides[i])
          // Each side sees only its own votes, each member suspecting the whole other side.
          const seen = (side: string[], other: string[]) =>
            computeDown(
              members,
              votes(
                Object.fromEntries(side.map((m) => [m, Object.fromEntries(other.map((o) => [o, 'silent']))])),
              ),
            )
          const downedByLeft = [...seen(left, right)].filter((m) => right.includes(m))
          const downedByRight = [...seen(right, left)].filter((m) => left.includes(m))
          expect(downedByLeft.length > 0 && downedByRight.length > 0).toBe(false)
          // and when both sides are non-empty, exactly one side downs the other
          if (left.length > 0 && right.length > 0)
            expect(downedByLeft.length + downedByRight.length > 0).toBe(true)
        },
      ),
    )
  })

  it('winning coalitions: a strict majority, or half with the lowest id', () => {
    expect(isWinningCoalition(['a', 'b'], ['a', 'b', 'c'])).toBe(true)
    expect(isWinningCoalition(['c'], ['a', 'b', 'c'])).toBe(false)
    expect(isWinningCoalition(['a'], ['a', 'b'])).toBe(true)
    expect(isWinningCoalition(['b'], ['a', 'b'])).toBe(false)
    expect(isWinningCoalition(['x', 'y'], ['a', 'b', 'c'])).toBe(false)
    expect(isWinningCoalition([], [])).toBe(false)
  })
})

describe('the coordinator', () => {
  const view = (over: Partial<Parameters<typeof computeView>[0]>) =>
    computeView({
      self: 'b',
      shuttingDown: false,
      configured: ['a', 'b', 'c'],
      records: new Map([
        ['b', { status: 'alive', addresses: [] }],
        ['c', { status: 'alive', addresses: [] }],
      ]),
      suspicions: new Map(),
      up: new Set(['c']),
      suspects: {},
      inGrace: new Set(),
      stale: false,
      ...over,
    })

  it('is not a listed member that never started (it could never fail anything over)', () => {
    expect(view({}).coordinator).toBe('b')
  })

  it('is the lowest member standing even where this node cannot reach it (one coordinator for all)', () => {
    const records = new Map([
      ['a', { status: 'alive' as const, addresses: [] }],
      ['b', { status: 'alive' as const, addresses: [] }],
      ['c', { status: 'alive' as const, addresses: [] }],
    ])
    expect(view({ records, suspects: { a: 'silent' } }).coordinator).toBe('a')
  })
})
