import fc from 'fast-check'
import {
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

describe('uniformQuorumDistribution', () => {
  const s = uniformQuorumDistribution()
  it('needs a strict majority of the voting members', () => {
    const dead = (nodeId: string): MemberInfo => ({ nodeId, status: 'dead' })
    expect(s.hasQuorum(alive('a', 'b', 'c'))).toBe(true)
    expect(s.hasQuorum([...alive('a', 'b'), dead('c')])).toBe(true)
    expect(s.hasQuorum([...alive('a'), dead('b'), dead('c')])).toBe(false)
    expect(s.hasQuorum([...alive('a', 'b'), dead('c'), dead('d')])).toBe(false)
    // A member that announced it is leaving does not vote.
    expect(s.hasQuorum([...alive('a'), { nodeId: 'b', status: 'shutting_down' }])).toBe(true)
    expect(s.hasQuorum([])).toBe(false)
    expect(s.chooseNode({ id: 'x' }, [...alive('a'), dead('b'), dead('c')])).toBeUndefined()
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
