// The placement decisions, table by table: (records, runs here?, view) → actions. Pure.
import { describe, expect, it } from 'vitest'
import { uniformDistribution } from '../../src/distribution/strategy.js'
import { decide, type PlacementContext } from '../../src/placement/decide.js'
import { type ChildRecord, resolveChild } from '../../src/state/records.js'

const spec = (id = 'k') => ({
  id,
  behaviour: 'counter',
  args: null,
  restart: 'permanent' as const,
  shutdown: 100,
})
const rec = (node: string, epoch: number, extra: Partial<ChildRecord> = {}): ChildRecord => ({
  node,
  epoch,
  spec: spec(),
  ...extra,
})
const alive = (...ids: string[]) => ids.map((nodeId) => ({ nodeId, status: 'alive' as const }))

function ctx(over: Partial<PlacementContext> = {}): PlacementContext {
  const gone = new Set<string>()
  return {
    self: 'a',
    members: alive('a', 'b', 'c'),
    gone: (n) => gone.has(n),
    leaving: false,
    quorum: true,
    canAct: true,
    coordinator: true,
    stale: false,
    presumedDown: false,
    strategy: uniformDistribution(),
    redistribution: 'passive',
    now: 10_000,
    tombstoneTtl: 1000,
    ...over,
  }
}
const goneSet =
  (...ids: string[]) =>
  (n: string) =>
    ids.includes(n)

describe('resolveChild: every replica picks the same record', () => {
  it.each([
    [
      'a tombstone beats a concurrent placement of a higher epoch',
      [rec('b', 3), rec('a', 2, { terminated: true, at: 1 })],
      'tombstone',
    ],
    ['the higher epoch beats a stale placement', [rec('c', 1), rec('b', 2)], 'b'],
    ['equal epochs: the same winner whatever the order', [rec('b', 2), rec('c', 2)], 'same'],
  ] as [string, ChildRecord[], string][])('%s', (_n, siblings, expected) => {
    const r1 = resolveChild(siblings)!
    const r2 = resolveChild([...siblings].reverse())!
    expect(r1).toEqual(r2)
    if (expected === 'tombstone') expect(r1.terminated).toBe(true)
    else if (expected !== 'same') expect(r1.node).toBe(expected)
  })
})

describe('decide', () => {
  it.each([
    // [case, siblings, running here, context, expected action kinds]
    ['no record, not running: nothing', [], false, {}, []],
    ['no record, running: stop', [], true, {}, ['stop']],
    ['mine, not running: run', [rec('a', 1)], false, {}, ['run']],
    [
      'mine, not running, but this node just woke from a stall: wait',
      [rec('a', 1)],
      false,
      { stale: true },
      [],
    ],
    ['mine, running: nothing', [rec('a', 1)], true, {}, []],
    ['mine, running, no quorum: pause (keep the record)', [rec('a', 1)], true, { quorum: false }, ['pause']],
    [
      'mine, running, woke to find the others hung up on it: pause (they failed it over)',
      [rec('a', 1)],
      true,
      { stale: true, presumedDown: true },
      ['pause'],
    ],
    [
      'mine, running, woke from a stall nobody noticed: keep running',
      [rec('a', 1)],
      true,
      { stale: true },
      [],
    ],
    [
      'mine, a finished move carrying state: drop the state',
      [rec('a', 2, { from: 'b', saved: 5, hasSaved: true })],
      true,
      {},
      ['write'],
    ],
    ['mine, running, leaving: hand off', [rec('a', 1)], true, { leaving: true }, ['handoff']],
    [
      'mine, running, leaving, nobody to take it: pause',
      [rec('a', 1)],
      true,
      { leaving: true, members: alive('a') },
      ['pause'],
    ],
    ['elsewhere, running here: stop as a conflict (no claim-back)', [rec('b', 2)], true, {}, ['stop']],
    [
      'elsewhere, owner merely suspected: nothing (no failover without agreement)',
      [rec('b', 1)],
      false,
      {
        members: [
          { nodeId: 'a', status: 'alive' },
          { nodeId: 'b', status: 'suspected' },
          { nodeId: 'c', status: 'alive' },
        ],
      },
      [],
    ],
    [
      'elsewhere, owner downed, coordinator, can act: fail over',
      [rec('b', 1)],
      false,
      {
        gone: goneSet('b'),
        members: [
          { nodeId: 'a', status: 'alive' },
          { nodeId: 'b', status: 'dead' },
          { nodeId: 'c', status: 'alive' },
        ],
      },
      ['write'],
    ],
    [
      'elsewhere, owner downed, failed over to this node: write, and start it in the same turn',
      [rec('b', 1)],
      false,
      {
        gone: goneSet('b'),
        members: alive('a'),
        strategy: { ...uniformDistribution(), chooseNode: () => 'a' },
      },
      ['write', 'run'],
    ],
    [
      'elsewhere, owner downed, failed over to this node while its view is stale: write only',
      [rec('b', 1)],
      false,
      {
        gone: goneSet('b'),
        stale: true,
        members: alive('a'),
        strategy: { ...uniformDistribution(), chooseNode: () => 'a' },
      },
      ['write'],
    ],
    [
      'elsewhere, owner downed, failed over to another node: write only',
      [rec('b', 1)],
      false,
      { gone: goneSet('b'), strategy: { ...uniformDistribution(), chooseNode: () => 'c' } },
      ['write'],
    ],
    [
      'elsewhere, owner downed, but this node cannot act (stale or no majority heard): nothing',
      [rec('b', 1)],
      false,
      {
        gone: goneSet('b'),
        canAct: false,
        members: [
          { nodeId: 'a', status: 'alive' },
          { nodeId: 'b', status: 'dead' },
        ],
      },
      [],
    ],
    [
      'elsewhere, owner downed, not the coordinator: nothing',
      [rec('b', 1)],
      false,
      { gone: goneSet('b'), coordinator: false },
      [],
    ],
    [
      'elsewhere, owner downed, temporary child: forget it',
      [{ ...rec('b', 1), spec: { ...spec(), restart: 'temporary' as const } }],
      false,
      {
        gone: goneSet('b'),
        members: [
          { nodeId: 'a', status: 'alive' },
          { nodeId: 'b', status: 'dead' },
        ],
      },
      ['forget'],
    ],
    ['terminated, running here: stop', [rec('a', 1, { terminated: true, at: 9500 })], true, {}, ['stop']],
    [
      'terminated long ago, coordinator: purge the tombstone',
      [rec('a', 1, { terminated: true, at: 1 })],
      false,
      {},
      ['purge'],
    ],
    ['terminated recently: keep the tombstone', [rec('a', 1, { terminated: true, at: 9500 })], false, {}, []],
  ] as [string, ChildRecord[], boolean, Partial<PlacementContext>, string[]][])(
    '%s',
    (_n, siblings, running, over, kinds) => {
      expect(decide(siblings, running, ctx(over)).map((a) => a.kind)).toEqual(kinds)
    },
  )

  it('a failover writes the next epoch and keeps the state of an unfinished move', () => {
    const moving = rec('b', 4, { from: 'c', saved: { n: 7 }, hasSaved: true })
    const [a] = decide([moving], false, ctx({ gone: goneSet('b'), members: alive('a', 'c') }))
    expect(a).toMatchObject({ kind: 'write', failover: true, expected: moving })
    if (a?.kind !== 'write') throw new Error('expected a write')
    expect(a.record).toMatchObject({ epoch: 5, saved: { n: 7 }, hasSaved: true, from: 'c' })
  })

  it('active redistribution moves a child to the strategy’s node only when this node can act', () => {
    const strategy = { name: 'to-b', chooseNode: () => 'b', hasQuorum: () => true }
    const acts = (canAct: boolean) =>
      decide([rec('a', 1)], true, ctx({ strategy, redistribution: 'active', canAct })).map((x) => x.kind)
    expect(acts(true)).toEqual(['handoff'])
    expect(acts(false)).toEqual([])
  })
})
