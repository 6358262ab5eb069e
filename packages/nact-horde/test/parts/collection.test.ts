// The collection decision, table by table: which members that left are collected, and which
// replica ids are retired, given what the coordinator sees.
import { describe, expect, it } from 'vitest'
import {
  type CollectedMember,
  type CollectionInput,
  decideCollection,
} from '../../src/membership/collection.js'

const TTL = 1000
const NOW = 10_000

const member = (m: Partial<CollectedMember> & Pick<CollectedMember, 'replicas'>): CollectedMember => ({
  status: 'alive',
  reaped: false,
  leftSince: undefined,
  up: true,
  placed: 0,
  ...m,
})

const input = (i: Partial<CollectionInput>): CollectionInput => ({
  now: NOW,
  ttl: TTL,
  coordinator: true,
  ownReplica: 'ra',
  members: new Map([['a', member({ replicas: ['ra'] })]]),
  replicaIds: ['ra'],
  unnamedSince: new Map(),
  decisions: new Map(),
  ...i,
})

const left = (since: number, extra: Partial<CollectedMember> = {}): CollectedMember =>
  member({ status: 'left', leftSince: since, up: false, replicas: ['rb'], ...extra })

describe('decideCollection', () => {
  it.each([
    ['left for the ttl, gone, nothing placed: collected', left(NOW - TTL), ['b'], ['rb']],
    ['left for less than the ttl: kept', left(NOW - TTL + 1), [], []],
    ['still connected (it may still be handing over): kept', left(NOW - TTL, { up: true }), [], []],
    [
      'reaped while down (it may be alive behind a partition): kept',
      left(NOW - 100 * TTL, { reaped: true }),
      [],
      [],
    ],
    ['a child still placed on it: kept', left(NOW - TTL, { placed: 1 }), [], []],
    ['alive: kept', member({ replicas: ['rb'], up: false }), [], []],
    [
      'two concurrent records: both replica ids retired',
      left(NOW - TTL, { replicas: ['rb', 'rb2'] }),
      ['b'],
      ['rb', 'rb2'],
    ],
    [
      'an old record without a replica id: collected, nothing to retire',
      left(NOW - TTL, { replicas: [undefined] }),
      ['b'],
      [],
    ],
  ] as const)('%s', (_case, b, removed, retired) => {
    const d = decideCollection(
      input({
        members: new Map([
          ['a', member({ replicas: ['ra'] })],
          ['b', b],
        ]),
        replicaIds: ['ra', 'rb'],
      }),
    )
    expect(d.removeMembers).toEqual(removed)
    expect(d.retire).toEqual(retired)
  })

  it('decides nothing on a node that is not the coordinator', () => {
    const d = decideCollection(
      input({
        coordinator: false,
        members: new Map([['b', left(0)]]),
        replicaIds: ['ra', 'rx'],
        unnamedSince: new Map([['rx', 0]]),
        decisions: new Map([['ry', 0]]),
      }),
    )
    expect(d).toEqual({ removeMembers: [], retire: [], dropDecisions: [] })
  })

  it.each([
    ['unnamed for the ttl: retired', new Map([['rx', NOW - TTL]]), new Map<string, number>(), ['rx']],
    ['unnamed for less: kept', new Map([['rx', NOW - 1]]), new Map<string, number>(), []],
    ['already decided: not decided again', new Map([['rx', 0]]), new Map([['rx', NOW]]), []],
  ] as const)('a replica id no member record names, %s', (_case, unnamedSince, decisions, retired) => {
    const d = decideCollection(input({ replicaIds: ['ra', 'rx'], unnamedSince, decisions }))
    expect(d.retire).toEqual(retired)
  })

  it('never retires its own id, nor an id a record names', () => {
    const d = decideCollection(
      input({
        members: new Map([
          ['a', member({ replicas: ['ra'] })],
          ['b', member({ status: 'shutting_down', replicas: ['rb'] })],
        ]),
        replicaIds: ['ra', 'rb'],
        unnamedSince: new Map([
          ['ra', 0],
          ['rb', 0],
        ]),
      }),
    )
    expect(d.retire).toEqual([])
  })

  it('retires no unnamed id while an alive member has a record of an older version (no replica id)', () => {
    const d = decideCollection(
      input({
        members: new Map([
          ['a', member({ replicas: ['ra'] })],
          ['old', member({ replicas: [undefined] })],
        ]),
        replicaIds: ['ra', 'rx'],
        unnamedSince: new Map([['rx', 0]]),
      }),
    )
    expect(d.retire).toEqual([])
  })

  it('drops decisions older than the ttl', () => {
    const d = decideCollection(
      input({
        decisions: new Map([
          ['old', NOW - TTL],
          ['new', NOW - TTL + 1],
        ]),
      }),
    )
    expect(d.dropDecisions).toEqual(['old'])
  })
})
