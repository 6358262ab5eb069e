import {
  AWLWWMap,
  DecodeError,
  type Delta,
  decodeDelta,
  encodeDelta,
  InvalidArgumentError,
} from '@nact-horde/crdt'
import fc from 'fast-check'
import { Packr } from 'msgpackr'
import { describe, expect, it } from 'vitest'
import { canonical, ManualClock } from './helpers.js'

// Encoded with wire format version 1. If one of these breaks, the format changed: bump
// WIRE_VERSION and keep a decoder for the old one rather than editing the fixture.
const FIXTURES = {
  d1: 'lQEAkalyZXBsaWNhLWGRkqd1c2VyLTQylQABy0J4vP5WgAAAAN4ABKVjb3VudAGkdGFnc5GheKJva8Okbm9uZcCQ',
  d2: 'lQEAkqlyZXBsaWNhLWKpcmVwbGljYS1hkZOndXNlci00MpUAActCeLz+VoBwAADeAAGlY291bnQCkgEBkA==',
  d3: 'lQEAkalyZXBsaWNhLWGRk6d1c2VyLTQykJIAAZA=',
  state: 'lQEAkalyZXBsaWNhLWGRkqNiaW6VAALLQni8/laAcAAAxAQAAf7/kZMAAQI=',
  sync: 'mwEBkalyZXBsaWNhLWGRkwABAs488l1jzl5aNgUAkJCQkA==',
}

function scenario() {
  const clock = new ManualClock(1_700_000_000_000)
  const a = new AWLWWMap<unknown>({ replicaId: 'replica-a', clock })
  const b = new AWLWWMap<unknown>({ replicaId: 'replica-b', clock })
  const d1 = a.set('user-42', { count: 1, tags: ['x'], ok: true, none: null })
  b.join(d1)
  clock.t += 7
  const d2 = b.set('user-42', { count: 2 })
  const d3 = a.delete('user-42')
  a.set('bin', new Uint8Array([0, 1, 254, 255]))
  return { a, d1, d2, d3 }
}

/**
 * JSON values a map accepts: fast-check's JSON may hold an own "__proto__" key, which the map
 * refuses (msgpackr would rename it on decode); that refusal has its own test.
 */
const storableJson = (maxDepth: number) =>
  fc.jsonValue({ maxDepth }).filter((v) => !JSON.stringify(v).includes('"__proto__":'))

const b64 = (u: Uint8Array) => Buffer.from(u).toString('base64')
const bytes = (s: string) => new Uint8Array(Buffer.from(s, 'base64'))

describe('wire format', () => {
  it('encodes exactly as pinned (version 1)', () => {
    const { a, d1, d2, d3 } = scenario()
    expect(b64(encodeDelta(d1))).toBe(FIXTURES.d1)
    expect(b64(encodeDelta(d2))).toBe(FIXTURES.d2)
    expect(b64(encodeDelta(d3))).toBe(FIXTURES.d3)
    expect(b64(encodeDelta(a.state()))).toBe(FIXTURES.state)
    expect(b64(a.link('replica-b').generate()!)).toBe(FIXTURES.sync)
  })

  it('decodes the pinned fixtures into the same replica state', () => {
    const r = new AWLWWMap<unknown>({ replicaId: 'r' })
    expect(r.join(decodeDelta(bytes(FIXTURES.d1)))).toEqual([
      { type: 'add', key: 'user-42', value: { count: 1, tags: ['x'], ok: true, none: null } },
    ])
    r.join(decodeDelta(bytes(FIXTURES.d3)))
    r.join(decodeDelta(bytes(FIXTURES.d2)))
    // d2 (b's overwrite) and d3 (a's delete) are concurrent: the overwrite wins.
    expect(r.get('user-42')).toEqual({ count: 2 })
    r.join(decodeDelta(bytes(FIXTURES.state)))
    expect(r.get('bin')).toEqual(new Uint8Array([0, 1, 254, 255]))
  })

  it('a single-key delta with a small value is well under 100 bytes', () => {
    const a = new AWLWWMap({ replicaId: 'Xk3v9QpL2mZt8RwA' }) // 16-char id, as generated
    a.set('user-42', { n: 1 })
    expect(encodeDelta(a.set('user-42', { n: 2 })).length).toBeLessThan(100)
  })

  it('round-trips every kind of value', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), (v) => {
        // JSON has -0, which MessagePack keeps as 0; normalise the model.
        const value = JSON.parse(JSON.stringify(v))
        const a = new AWLWWMap<unknown>({ replicaId: 'a' })
        const b = new AWLWWMap<unknown>({ replicaId: 'b' })
        // JSON.parse makes "__proto__" an own key, which no decoder may restore: refused.
        if (JSON.stringify(value).includes('"__proto__":')) {
          expect(() => a.set('k', value)).toThrow(InvalidArgumentError)
          return
        }
        b.join(decodeDelta(encodeDelta(a.set('k', value))))
        expect(b.get('k')).toEqual(value)
      }),
      { numRuns: 300 },
    )
  })

  it('refuses a value with an own "__proto__" key instead of storing what would not round-trip', () => {
    const a = new AWLWWMap<unknown>({ replicaId: 'a' })
    expect(() => a.set('k', JSON.parse('{"x":{"__proto__":[]}}'))).toThrow(/__proto__/)
    expect(a.has('k')).toBe(false)
    // An ordinary object (whose __proto__ is its prototype, not a key) is fine.
    a.set('k', { x: {} })
    expect(a.get('k')).toEqual({ x: {} })
  })
})

describe('decoding untrusted bytes', () => {
  const victim = () => {
    const m = new AWLWWMap<unknown>({ replicaId: 'victim' })
    m.set('keep', 1)
    return m
  }

  it('random bytes either decode to a valid delta or throw DecodeError, and never corrupt a replica', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (junk) => {
        const m = victim()
        const before = canonical(m)
        let delta: ReturnType<typeof decodeDelta> | undefined
        try {
          delta = decodeDelta(junk)
        } catch (err) {
          expect(err).toBeInstanceOf(DecodeError)
        }
        if (delta !== undefined) m.join(delta)
        else expect(canonical(m)).toBe(before)
        expect(() => m.link('x').receive(junk)).toThrow(DecodeError)
        if (delta === undefined) expect(canonical(m)).toBe(before)
      }),
      { numRuns: 2000 },
    )
  })

  it('every truncation of a valid delta or sync message is refused', () => {
    const { a, d1 } = scenario()
    for (const full of [encodeDelta(d1), encodeDelta(a.state())]) {
      for (let n = 0; n < full.length; n++)
        expect(() => decodeDelta(full.subarray(0, n))).toThrow(DecodeError)
    }
    const msg = a.link('p').generate()!
    for (let n = 0; n < msg.length; n++) {
      expect(() => new AWLWWMap({ replicaId: 'v' }).link('p').receive(msg.subarray(0, n))).toThrow(
        DecodeError,
      )
    }
  })

  it('mutations of valid messages are refused or decode to something harmless', () => {
    const { d1 } = scenario()
    const good = encodeDelta(d1)
    fc.assert(
      fc.property(fc.nat(good.length - 1), fc.integer({ min: 0, max: 255 }), (i, byte) => {
        const bad = good.slice()
        bad[i] = byte
        const m = victim()
        try {
          m.join(decodeDelta(bad))
        } catch (err) {
          expect(err).toBeInstanceOf(DecodeError)
        }
        expect(m.get('keep')).toBe(1)
      }),
      { numRuns: 2000 },
    )
  })

  // Hand-written MessagePack for the hostile cases.
  const hostile: [string, number[]][] = [
    ['an array header claiming 4 billion elements', [0x95, 1, 0, 0x90, 0xdd, 0xff, 0xff, 0xff, 0xff, 0x90]],
    ['a string header claiming 4 GiB', [0x95, 1, 0, 0x91, 0xdb, 0xff, 0xff, 0xff, 0xff, 0x41]],
    [
      'a binary header claiming 4 GiB',
      [0x95, 1, 0, 0x90, 0x91, 0x92, 0xa1, 0x6b, 0x95, 0, 1, 1, 0, 0xc6, 0xff, 0xff, 0xff, 0xff],
    ],
    ['an unknown version', [0x95, 9, 0, 0x90, 0x90, 0x90]],
    ['a sync message where a delta is expected', [0x95, 1, 1, 0x90, 0x90, 0x90]],
    [
      'a negative counter',
      [0x95, 1, 0, 0x91, 0xa1, 0x61, 0x91, 0x92, 0xa1, 0x6b, 0x95, 0, 0xff, 1, 0, 1, 0x90],
    ],
    ['a zero counter', [0x95, 1, 0, 0x91, 0xa1, 0x61, 0x91, 0x92, 0xa1, 0x6b, 0x95, 0, 0, 1, 0, 1, 0x90]],
    [
      'a replica reference out of range',
      [0x95, 1, 0, 0x91, 0xa1, 0x61, 0x91, 0x92, 0xa1, 0x6b, 0x95, 5, 1, 1, 0, 1, 0x90],
    ],
    [
      'a fractional timestamp',
      [
        0x95, 1, 0, 0x91, 0xa1, 0x61, 0x91, 0x92, 0xa1, 0x6b, 0x95, 0, 1, 0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0,
        0, 1, 0x90,
      ],
    ],
    ['a key that is a number', [0x95, 1, 0, 0x91, 0xa1, 0x61, 0x91, 0x92, 0x07, 0x90, 0x90]],
    ['a reversed range', [0x95, 1, 0, 0x91, 0xa1, 0x61, 0x90, 0x91, 0x93, 0, 9, 3]],
    ['a range of the wrong shape', [0x95, 1, 0, 0x91, 0xa1, 0x61, 0x90, 0x91, 0x92, 0, 9]],
    ['a map where an array belongs', [0x95, 1, 0, 0x80, 0x90, 0x90]],
    [
      'a Date extension as a value',
      [0x95, 1, 0, 0x91, 0xa1, 0x61, 0x91, 0x92, 0xa1, 0x6b, 0x95, 0, 1, 1, 0, 0xd6, 0xff, 0, 0, 0, 1, 0x90],
    ],
    ['trailing garbage after the message', [0x95, 1, 0, 0x90, 0x90, 0x90, 0xc1]],
  ]
  for (const [what, raw] of hostile) {
    it(`refuses ${what}`, () => {
      const m = victim()
      const before = canonical(m)
      expect(() => m.join(decodeDelta(new Uint8Array(raw)))).toThrow(DecodeError)
      expect(canonical(m)).toBe(before)
    })
  }

  it('refuses values nested too deep to walk safely', () => {
    const deep = [
      0x95,
      1,
      0,
      0x91,
      0xa1,
      0x61,
      0x91,
      0x92,
      0xa1,
      0x6b,
      0x95,
      0,
      1,
      1,
      0,
      ...Array(100_000).fill(0x91),
      0xc0,
      0x90,
    ]
    expect(() => decodeDelta(new Uint8Array(deep))).toThrow(DecodeError)
  })
})

describe('the hand-written encoder', () => {
  // encodeDelta writes MessagePack itself for speed; it must produce exactly what msgpackr
  // produces for the documented layout, for every kind of key, value and replica id.
  const packr = new Packr({ useRecords: false })
  const reference = (d: Delta<unknown>) => {
    const ids: string[] = []
    const ref = (r: string) => (ids.includes(r) ? ids.indexOf(r) : ids.push(r) - 1)
    const keys: unknown[] = []
    for (const [key, kd] of d.keys) {
      const entries: unknown[] = []
      for (const e of kd.entries) entries.push(ref(e.r), e.c, e.wall, e.logical, e.value)
      if (kd.dead.length === 0) keys.push([key, entries])
      else keys.push([key, entries, kd.dead.flatMap((x) => [ref(x.r), x.c])])
    }
    const ranges: unknown[] = []
    for (const [r, iv] of d.ranges) if (iv.length > 0) ranges.push([ref(r), ...iv])
    return packr.pack([1, 0, ids, keys, ranges])
  }

  it('matches msgpackr byte for byte on random deltas and states', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            key: fc.string({ unit: 'grapheme', maxLength: 12 }),
            value: fc.oneof(storableJson(3), fc.uint8Array({ maxLength: 40 })),
            del: fc.boolean(),
            at: fc.nat(2),
          }),
          { maxLength: 20 },
        ),
        fc.string({ unit: 'grapheme', minLength: 1, maxLength: 20 }),
        (ops, id) => {
          const rs = [
            new AWLWWMap<unknown>({ replicaId: id }),
            new AWLWWMap<unknown>({ replicaId: `${id}-2` }),
            new AWLWWMap<unknown>({ replicaId: 'r3' }),
          ]
          for (const op of ops) {
            const value = op.value instanceof Uint8Array ? op.value : JSON.parse(JSON.stringify(op.value))
            const d = op.del ? rs[op.at]!.delete(op.key) : rs[op.at]!.set(op.key, value)
            expect(Buffer.from(encodeDelta(d)).equals(Buffer.from(reference(d)))).toBe(true)
            for (const r of rs) r.join(d)
          }
          const s = rs[0]!.state()
          expect(Buffer.from(encodeDelta(s)).equals(Buffer.from(reference(s)))).toBe(true)
        },
      ),
      { numRuns: 500 },
    )
  })
})
