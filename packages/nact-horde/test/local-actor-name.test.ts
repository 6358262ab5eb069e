import fc from 'fast-check'
import { afterAll, describe, expect, it } from 'vitest'
import { decodeChildName, encodeChildName, encodeParentName } from '../src/local/actor-name.js'
import { NACT_NAME_PATTERN, nact } from '../src/local/nact.js'

// Well-formed strings of any code points (astral ones included), as ids may be.
const anyId = fc.string({ unit: 'binary', minLength: 1, maxLength: 64 })
const anySerial = fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER })

describe('child actor names', () => {
  const system = nact.start()
  afterAll(() => nact.stop(system))

  it('always match nact’s name pattern and decode back to (id, serial)', () => {
    fc.assert(
      fc.property(anyId, anySerial, (id, serial) => {
        const name = encodeChildName(id, serial)
        expect(name).toMatch(NACT_NAME_PATTERN)
        expect(decodeChildName(name)).toEqual({ id, serial })
      }),
      { numRuns: 2000 },
    )
  })

  it('are distinct for distinct (id, serial)', () => {
    fc.assert(
      fc.property(anyId, anyId, anySerial, anySerial, (a, b, i, j) => {
        fc.pre(a !== b || i !== j)
        expect(encodeChildName(a, i)).not.toBe(encodeChildName(b, j))
      }),
    )
  })

  it('are accepted by a real nact spawn', () => {
    const parent = nact.spawn(system, (s: unknown) => s, 'names')
    let k = 0
    fc.assert(
      fc.property(anyId, (id) => {
        const ref = nact.spawn(parent, (s: unknown) => s, encodeChildName(id, ++k))
        nact.stop(ref)
      }),
      { numRuns: 300 },
    )
  })

  it('rejects what it did not produce', () => {
    for (const name of [
      '',
      'c.',
      'x.YQ.1',
      'c.YQ',
      'c.YQ.0',
      'c.YQ.01',
      'c.Y=.1',
      'c.YR.1',
      'anonymous-12',
      'c.YQ.-1',
    ]) {
      expect(decodeChildName(name)).toBeUndefined()
    }
  })

  it('refuses ids that are not well-formed Unicode, which would collide after UTF-8 encoding', () => {
    expect(() => encodeChildName('\uD800', 1)).toThrow(RangeError)
    expect(() => encodeChildName('a\uDC00b', 1)).toThrow(RangeError)
    expect(() => encodeChildName('ok', 0)).toThrow(RangeError)
  })

  it('parent names fit nact too', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), fc.uuid(), (horde, unique) => {
        expect(encodeParentName(horde, unique)).toMatch(NACT_NAME_PATTERN)
      }),
    )
  })
})
