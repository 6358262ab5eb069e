import fc from 'fast-check'
import {
  hasQuorumOf,
  type MemberInfo,
  uniformDistribution,
  uniformQuorumDistribution,
  uniformRandomDistribution,
} from 'nact-horde'
import { describe, expect, it } from 'vitest'

const alive = (...ids: string[]): MemberInfo[] => ids.map((nodeId) => ({ nodeId, status: 'alive' }))
const children = Array.from({ length: 3000 }, (_, i) => ({ id: `child-${i}` }))

describe('uniformDistribution', () => {
  const s = uniformDistribution()

  it('is deterministic whatever the member order, and picks only alive members', () => {
    fc.assert(
      fc.property(fc.string(), fc.shuffledSubarray(['a', 'b', 'c', 'd', 'e'], { minLength: 1 }), (id, ms) => {
        const members = alive(...ms)
        const chosen = s.chooseNode({ id }, members)
        expect(chosen).toBe(s.chooseNode({ id }, [...members].reverse()))
        expect(ms).toContain(chosen)
      }),
    )
    expect(s.chooseNode({ id: 'x' }, [{ nodeId: 'a', status: 'dead' }])).toBeUndefined()
    expect(s.chooseNode({ id: 'x' }, [])).toBeUndefined()
  })

  it('spreads children evenly', () => {
    const counts = new Map<string, number>()
    for (const c of children) {
      const n = s.chooseNode(c, alive('a', 'b', 'c'))!
      counts.set(n, (counts.get(n) ?? 0) + 1)
    }
    for (const n of counts.values()) expect(Math.abs(n - 1000)).toBeLessThan(120)
  })

  it('a joining node takes about 1/N of the children and nothing else moves', () => {
    const before = alive('a', 'b', 'c')
    const after = alive('a', 'b', 'c', 'd')
    let moved = 0
    for (const c of children) {
      const x = s.chooseNode(c, before)
      const y = s.chooseNode(c, after)
      if (x !== y) {
        moved++
        expect(y).toBe('d')
      }
    }
    expect(moved / children.length).toBeGreaterThan(0.2)
    expect(moved / children.length).toBeLessThan(0.3)
  })

  it('a leaving node’s children spread over the others; the others’ children stay', () => {
    for (const c of children) {
      const x = s.chooseNode(c, alive('a', 'b', 'c'))
      const y = s.chooseNode(c, [...alive('a', 'b'), { nodeId: 'c', status: 'dead' }])
      if (x !== 'c') expect(y).toBe(x)
    }
  })
})

type Status = MemberInfo['status']
const dead = (nodeId: string): MemberInfo => ({ nodeId, status: 'dead' })
const leaving = (nodeId: string): MemberInfo => ({ nodeId, status: 'shutting_down' })
/** Node ids of 1–3 characters: short enough that many draws share a prefix. */
const nodeId = fc.string({ minLength: 1, maxLength: 3 })

describe('uniformQuorumDistribution', () => {
  const s = uniformQuorumDistribution()

  it('needs a strict majority of the voting members, or exactly half with the lowest id', () => {
    expect(s.hasQuorum(alive('a', 'b', 'c'))).toBe(true)
    expect(s.hasQuorum([...alive('a', 'b'), dead('c')])).toBe(true)
    expect(s.hasQuorum([...alive('a'), dead('b'), dead('c')])).toBe(false)
    // 2 of 4: the half holding the lowest id ('a') has quorum, the other half not.
    expect(s.hasQuorum([...alive('a', 'b'), dead('c'), dead('d')])).toBe(true)
    expect(s.hasQuorum([dead('a'), dead('b'), ...alive('c', 'd')])).toBe(false)
    expect(s.hasQuorum([...alive('d', 'a'), dead('c'), dead('b')])).toBe(true)
    expect(s.hasQuorum([...alive('a'), dead('b'), dead('c'), dead('d')])).toBe(false)
    // A member that announced it is leaving does not vote.
    expect(s.hasQuorum([...alive('a'), leaving('b')])).toBe(true)
    expect(s.hasQuorum([...alive('b'), leaving('a')])).toBe(true)
    // Voters b and c; 'a' is leaving, so the tie goes to 'b', the lowest voter.
    expect(s.hasQuorum([...alive('b'), leaving('a'), dead('c')])).toBe(true)
    expect(s.hasQuorum([...alive('c'), leaving('a'), dead('b')])).toBe(false)
    expect(s.hasQuorum([leaving('a')])).toBe(false)
    expect(s.hasQuorum([])).toBe(false)
    // Not heard from yet: votes, but is not alive.
    expect(s.hasQuorum([...alive('b'), { nodeId: 'a', status: 'uninitialized' }])).toBe(false)
    expect(s.chooseNode({ id: 'x' }, [...alive('a'), dead('b'), dead('c')])).toBeUndefined()
  })

  it('a 2|2 split leaves exactly one side placing children', () => {
    const left = [...alive('n1', 'n2'), dead('n3'), dead('n4')]
    const right = [dead('n1'), dead('n2'), ...alive('n3', 'n4')]
    expect(s.chooseNode({ id: 'x' }, left)).toMatch(/^n[12]$/)
    expect(s.chooseNode({ id: 'x' }, right)).toBeUndefined()
  })

  it('any split of the voting members into two sides gives exactly one side quorum', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.record({ id: nodeId, left: fc.boolean() }), {
          minLength: 1,
          maxLength: 9,
          selector: (m) => m.id,
        }),
        (ms) => {
          // Each side sees its own members alive and the others dead.
          const view = (left: boolean): MemberInfo[] =>
            ms.map((m) => ({ nodeId: m.id, status: m.left === left ? 'alive' : 'dead' }))
          const sides = [view(true), view(false)].filter((v) => s.hasQuorum(v))
          expect(sides).toHaveLength(1)
          expect(
            [view(true), view(false)].filter((v) => s.chooseNode({ id: 'x' }, v) !== undefined),
          ).toHaveLength(1)
        },
      ),
      { numRuns: 500 },
    )
  })

  it('with members shutting down (seen so by both sides): exactly one side, or none when nobody votes', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.record({ id: nodeId, left: fc.boolean(), leaving: fc.boolean() }), {
          minLength: 1,
          maxLength: 9,
          selector: (m) => m.id,
        }),
        (ms) => {
          const view = (left: boolean): MemberInfo[] =>
            ms.map((m) => ({
              nodeId: m.id,
              status: m.leaving ? 'shutting_down' : m.left === left ? 'alive' : 'dead',
            }))
          const voters = ms.filter((m) => !m.leaving).length
          const sides = [view(true), view(false)].filter((v) => s.hasQuorum(v))
          expect(sides).toHaveLength(voters === 0 ? 0 : 1)
        },
      ),
      { numRuns: 500 },
    )
  })

  it('at most one side has quorum with crashed members and leaving members one side sees dead', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(
          fc.record({
            id: nodeId,
            // 0 and 1: the two sides; 2: crashed, dead to both.
            place: fc.constantFrom(0, 1, 2),
            leaving: fc.boolean(),
            // How each side sees a leaving member it cannot reach: shutting down or dead.
            deadTo: fc.tuple(fc.boolean(), fc.boolean()),
          }),
          { minLength: 1, maxLength: 9, selector: (m) => m.id },
        ),
        (ms) => {
          const view = (side: 0 | 1): MemberInfo[] =>
            ms.map((m): MemberInfo => {
              const own = m.place === side
              let status: Status
              if (m.leaving) status = own || !m.deadTo[side] ? 'shutting_down' : 'dead'
              else status = own ? 'alive' : 'dead'
              return { nodeId: m.id, status }
            })
          expect([view(0), view(1)].filter((v) => s.hasQuorum(v)).length).toBeLessThanOrEqual(1)
        },
      ),
      { numRuns: 500 },
    )
  })

  it('one-node cluster: quorum exactly while the node is alive', () => {
    fc.assert(
      fc.property(
        nodeId,
        fc.constantFrom<Status>('alive', 'dead', 'uninitialized', 'shutting_down'),
        (id, st) => {
          expect(s.hasQuorum([{ nodeId: id, status: st }])).toBe(st === 'alive')
          expect(s.chooseNode({ id: 'x' }, [{ nodeId: id, status: st }])).toBe(
            st === 'alive' ? id : undefined,
          )
        },
      ),
    )
  })

  it('two-node cluster: the lower id keeps quorum alone, the higher does not; a leaving peer does not count', () => {
    fc.assert(
      fc.property(fc.uniqueArray(nodeId, { minLength: 2, maxLength: 2 }), fc.boolean(), ([x, y], flip) => {
        const [lo, hi] = x! < y! ? [x!, y!] : [y!, x!]
        const up = (nodeId: string): MemberInfo => ({ nodeId, status: 'alive' })
        const order = (a: MemberInfo, b: MemberInfo): MemberInfo[] => (flip ? [b, a] : [a, b])
        expect(s.hasQuorum(order(up(lo), up(hi)))).toBe(true)
        expect(s.hasQuorum(order(up(lo), dead(hi)))).toBe(true)
        expect(s.hasQuorum(order(dead(lo), up(hi)))).toBe(false)
        // Graceful shrink from two to one node, whichever leaves.
        expect(s.hasQuorum(order(up(lo), leaving(hi)))).toBe(true)
        expect(s.hasQuorum(order(leaving(lo), up(hi)))).toBe(true)
      }),
    )
  })

  it('does not depend on the order of the member list, and is hasQuorumOf over the voting ids', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(
          fc.record({
            nodeId,
            status: fc.constantFrom<Status>('alive', 'dead', 'uninitialized', 'shutting_down'),
          }),
          { maxLength: 9, selector: (m) => m.nodeId },
        ),
        fc.nat(),
        (ms, rot) => {
          const q = s.hasQuorum(ms)
          const k = ms.length === 0 ? 0 : rot % ms.length
          expect(s.hasQuorum([...ms.slice(k), ...ms.slice(0, k)].reverse())).toBe(q)
          const voting = ms.filter((m) => m.status !== 'shutting_down').map((m) => m.nodeId)
          const up = ms.filter((m) => m.status === 'alive').map((m) => m.nodeId)
          expect(hasQuorumOf(up, voting)).toBe(q)
        },
      ),
      { numRuns: 500 },
    )
  })
})

describe('hasQuorumOf', () => {
  it('counts each voting id once, ignores alive ids that do not vote, and has no quorum without voters', () => {
    expect(hasQuorumOf(['b', 'c', 'x', 'y'], ['a', 'b', 'c', 'd'])).toBe(false)
    expect(hasQuorumOf(['a', 'c'], ['d', 'c', 'b', 'a'])).toBe(true)
    expect(hasQuorumOf(new Set(['a', 'a']), ['a', 'b', 'b'])).toBe(true)
    expect(hasQuorumOf(['b', 'b'], ['a', 'b', 'a'])).toBe(false)
    expect(hasQuorumOf(['b', 'c', 'd'], ['a', 'b', 'c', 'd'])).toBe(true)
    expect(hasQuorumOf(['a'], [])).toBe(false)
    expect(hasQuorumOf([], ['a'])).toBe(false)
    // Lowest by code unit order, the same on every node: 'B' (0x42) < 'a' (0x61).
    expect(hasQuorumOf(['B'], ['a', 'B'])).toBe(true)
  })
})

describe('uniformRandomDistribution', () => {
  it('picks alive members only, using the given random source', () => {
    let i = 0
    const seq = [0, 0.5, 0.99]
    const s = uniformRandomDistribution(() => seq[i++ % 3]!)
    const ms: MemberInfo[] = [...alive('a', 'b'), { nodeId: 'z', status: 'dead' }, ...alive('c')]
    expect([0, 1, 2].map(() => s.chooseNode({ id: 'x' }, ms))).toEqual(['a', 'b', 'c'])
    expect(s.hasQuorum(ms)).toBe(true)
  })
})
