import { InvalidArgumentError } from './errors.js'

/** Values deeper than this are refused: deeper nesting is a stack-overflow vector, not data. */
export const MAX_VALUE_DEPTH = 64

/** Throws {@link InvalidArgumentError} unless `v` is JSON-like data or a Uint8Array. */
export function assertValue(v: unknown): void {
  const problem = valueProblem(v, 0)
  if (problem !== undefined) {
    throw new InvalidArgumentError(
      `map values must be JSON-like data (null, booleans, finite numbers, strings, arrays, plain objects) or Uint8Array: ${problem}`,
    )
  }
}

/** Why `v` is not a storable value, or undefined when it is. */
export function valueProblem(v: unknown, depth: number): string | undefined {
  if (depth > MAX_VALUE_DEPTH) return `nested deeper than ${MAX_VALUE_DEPTH} levels`
  switch (typeof v) {
    case 'string':
    case 'boolean':
      return undefined
    case 'number':
      return Number.isFinite(v) ? undefined : `${v} is not a finite number`
    case 'object': {
      if (v === null || v instanceof Uint8Array) return undefined
      if (Array.isArray(v)) {
        for (const x of v) {
          const p = valueProblem(x, depth + 1)
          if (p !== undefined) return p
        }
        return undefined
      }
      const proto = Object.getPrototypeOf(v)
      if (proto !== Object.prototype && proto !== null) {
        return `${proto?.constructor?.name ?? 'an object'} is not a plain object`
      }
      // for-in over own keys rather than Object.values: no array per checked object (this
      // runs on every local write); the same values are visited.
      const o = v as Record<string, unknown>
      for (const k in o) {
        if (!Object.hasOwn(o, k)) continue
        // msgpackr renames it on decode (against prototype pollution): it would not round-trip.
        if (k === '__proto__') return 'an own key named "__proto__" cannot be stored (rename it)'
        const p = valueProblem(o[k], depth + 1)
        if (p !== undefined) return p
      }
      return undefined
    }
    default:
      return `${typeof v} cannot be stored`
  }
}

/** Structural equality of stored values. */
export function valuesEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    if (!(a instanceof Uint8Array && b instanceof Uint8Array) || a.length !== b.length) return false
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
    return true
  }
  if (Array.isArray(a) !== Array.isArray(b)) return false
  if (Array.isArray(a)) {
    const bb = b as unknown[]
    if (a.length !== bb.length) return false
    for (let i = 0; i < a.length; i++) if (!valuesEqual(a[i], bb[i])) return false
    return true
  }
  const ka = Object.keys(a)
  if (ka.length !== Object.keys(b).length) return false
  for (const k of ka) {
    if (
      !Object.hasOwn(b, k) ||
      !valuesEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])
    ) {
      return false
    }
  }
  return true
}
