import { Packr, Unpackr } from 'msgpackr'
import { DecodeError } from './errors.js'
import type { Delta, Dot, Entry, KeyDelta } from './types.js'
import { MAX_VALUE_DEPTH } from './value.js'

/**
 * Wire format, version 1: a MessagePack array whose first element is the format version and
 * second the message kind, followed by a table of the replica ids the message mentions
 * (everything else refers to them by index). Deltas:
 *
 *   [1, 0, replicas, keys, ranges]
 *   keys   = [[key, [r, c, wall, logical, value, …], [r, c, …]?], …]   live entries, superseded dots
 *   ranges = [[r, lo, hi, lo, hi, …], …]                                 seen counter intervals
 *
 * Sync messages (see sync-link.ts) are `[1, 1, replicas, context, root1, root2, eq, keys,
 * ranges, nodes, listings]`. Pinned by base64 fixtures in the tests: change the version
 * number when changing the layout.
 */
export const WIRE_VERSION = 1
export const KIND_DELTA = 0
export const KIND_SYNC = 1

const MAX_REPLICA_ID = 64
const MAX_KEY_LENGTH = 65_536

const packr = new Packr({ useRecords: false })
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' })

export function pack(message: unknown[]): Uint8Array {
  return packr.pack(message)
}

/** Turns bytes into the top-level array of a message of ours, or throws DecodeError. */
export function unpackMessage(bytes: Uint8Array, kind: number): unknown[] {
  if (!(bytes instanceof Uint8Array)) throw new DecodeError('expected a Uint8Array')
  if (bytes.length === 0) throw new DecodeError('empty message')
  let msg: unknown
  try {
    msg = unpackr.unpack(bytes)
  } catch (err) {
    throw new DecodeError(`not valid MessagePack (${(err as Error).message})`, { cause: err })
  }
  if (!Array.isArray(msg)) throw new DecodeError('a message must be an array')
  if (msg[0] !== WIRE_VERSION) throw new DecodeError(`unsupported wire format version ${String(msg[0])}`)
  if (msg[1] !== kind) throw new DecodeError(`expected message kind ${kind}, got ${String(msg[1])}`)
  return msg
}

/** Numbers each replica id a message mentions. */
export class ReplicaTable {
  readonly ids: string[] = []
  private readonly index = new Map<string, number>()
  private lastId = ''
  private lastIndex = -1
  ref(id: string): number {
    // Consecutive references are mostly to the same replica.
    if (id === this.lastId) return this.lastIndex
    let i = this.index.get(id)
    if (i === undefined) {
      i = this.ids.length
      this.ids.push(id)
      this.index.set(id, i)
    }
    this.lastId = id
    this.lastIndex = i
    return i
  }
}

export function encodeKeys<V>(keys: ReadonlyMap<string, KeyDelta<V>>, table: ReplicaTable): unknown[] {
  const out: unknown[] = []
  for (const [key, kd] of keys) {
    const entries: unknown[] = []
    for (const e of kd.entries) entries.push(table.ref(e.r), e.c, e.wall, e.logical, e.value)
    if (kd.dead.length === 0) {
      out.push([key, entries])
    } else {
      const dead: unknown[] = []
      for (const d of kd.dead) dead.push(table.ref(d.r), d.c)
      out.push([key, entries, dead])
    }
  }
  return out
}

export function encodeRanges(ranges: ReadonlyMap<string, readonly number[]>, table: ReplicaTable): unknown[] {
  const out: unknown[] = []
  for (const [r, iv] of ranges) if (iv.length > 0) out.push([table.ref(r), ...iv])
  return out
}

/** Encodes a delta for the wire. */
export function encodeDelta<V>(delta: Delta<V>): Uint8Array {
  const table = new ReplicaTable()
  const keys = encodeKeys(delta.keys, table)
  const ranges = encodeRanges(delta.ranges, table)
  return pack([WIRE_VERSION, KIND_DELTA, table.ids, keys, ranges])
}

/**
 * Decodes a delta, validating every field: on truncated, random or hostile bytes it throws
 * {@link DecodeError} (quickly, without large allocations) and never yields a delta that
 * could corrupt a replica.
 */
export function decodeDelta<V = unknown>(bytes: Uint8Array): Delta<V> {
  const msg = unpackMessage(bytes, KIND_DELTA)
  if (msg.length !== 5) throw new DecodeError(`a delta has 5 fields, got ${msg.length}`)
  const replicas = decodeReplicas(msg[2])
  return { keys: decodeKeys<V>(msg[3], replicas), ranges: decodeRanges(msg[4], replicas) }
}

export function decodeReplicas(v: unknown): string[] {
  if (!Array.isArray(v)) throw new DecodeError('replica table must be an array')
  const seen = new Set<string>()
  for (const id of v) {
    if (typeof id !== 'string' || id.length === 0 || id.length > MAX_REPLICA_ID) {
      throw new DecodeError('replica ids must be strings of 1 to 64 characters')
    }
    if (seen.has(id)) throw new DecodeError('duplicate replica id in table')
    seen.add(id)
  }
  return v as string[]
}

function replicaAt(replicas: string[], i: unknown): string {
  if (typeof i !== 'number' || !Number.isInteger(i) || i < 0 || i >= replicas.length) {
    throw new DecodeError('replica reference out of range')
  }
  return replicas[i]!
}

export function counter(v: unknown, what = 'counter'): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) {
    throw new DecodeError(`${what} must be a positive safe integer`)
  }
  return v
}

function natural(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw new DecodeError(`${what} must be a non-negative safe integer`)
  }
  return v
}

export function decodeKey(v: unknown): string {
  if (typeof v !== 'string' || v.length > MAX_KEY_LENGTH)
    throw new DecodeError('keys must be strings of at most 64 KiB')
  return v
}

export function decodeDots(v: unknown, replicas: string[]): Dot[] {
  if (!Array.isArray(v) || v.length % 2 !== 0)
    throw new DecodeError('dots must be a flat array of (replica, counter) pairs')
  const out: Dot[] = []
  for (let i = 0; i < v.length; i += 2) out.push({ r: replicaAt(replicas, v[i]), c: counter(v[i + 1]) })
  return out
}

export function decodeKeys<V>(v: unknown, replicas: string[]): Map<string, KeyDelta<V>> {
  if (!Array.isArray(v)) throw new DecodeError('keys must be an array')
  const keys = new Map<string, KeyDelta<V>>()
  for (const part of v) {
    if (!Array.isArray(part) || part.length < 2 || part.length > 3)
      throw new DecodeError('malformed key part')
    const key = decodeKey(part[0])
    const flat = part[1]
    if (!Array.isArray(flat) || flat.length % 5 !== 0)
      throw new DecodeError('entries must be a flat array of 5-tuples')
    const entries: Entry<V>[] = []
    for (let i = 0; i < flat.length; i += 5) {
      entries.push({
        r: replicaAt(replicas, flat[i]),
        c: counter(flat[i + 1]),
        wall: natural(flat[i + 2], 'timestamp'),
        logical: natural(flat[i + 3], 'logical clock'),
        value: sanitizeValue(flat[i + 4], 0) as V,
      })
    }
    const dead = part.length === 3 ? decodeDots(part[2], replicas) : []
    const before = keys.size
    keys.set(key, { entries, dead })
    if (keys.size === before) throw new DecodeError('a key appears twice in one delta')
  }
  return keys
}

export function decodeRanges(v: unknown, replicas: string[]): Map<string, number[]> {
  if (!Array.isArray(v)) throw new DecodeError('ranges must be an array')
  const ranges = new Map<string, number[]>()
  for (const part of v) {
    if (!Array.isArray(part) || part.length < 3 || part.length % 2 !== 1)
      throw new DecodeError('malformed range part')
    const r = replicaAt(replicas, part[0])
    if (ranges.has(r)) throw new DecodeError('a replica appears twice in ranges')
    const iv: number[] = []
    let prev = 0
    for (let i = 1; i < part.length; i += 2) {
      const lo = counter(part[i], 'range bound')
      const hi = counter(part[i + 1], 'range bound')
      if (lo > hi || lo <= prev) throw new DecodeError('ranges must be ascending, disjoint intervals')
      iv.push(lo, hi)
      prev = hi
    }
    ranges.set(r, iv)
  }
  return ranges
}

/**
 * Checks a decoded value is JSON-like and makes binary data plain, self-owned Uint8Arrays
 * (not views into the message buffer, which would keep it alive).
 */
function sanitizeValue(v: unknown, depth: number): unknown {
  if (depth > MAX_VALUE_DEPTH) throw new DecodeError(`value nested deeper than ${MAX_VALUE_DEPTH} levels`)
  switch (typeof v) {
    case 'string':
    case 'boolean':
      return v
    case 'number':
      if (!Number.isFinite(v)) throw new DecodeError('values must not hold NaN or infinities')
      return v
    case 'object': {
      if (v === null) return v
      if (v instanceof Uint8Array) return v.constructor === Uint8Array ? v.slice() : new Uint8Array(v)
      if (Array.isArray(v)) {
        for (let i = 0; i < v.length; i++) v[i] = sanitizeValue(v[i], depth + 1)
        return v
      }
      if (Object.getPrototypeOf(v) !== Object.prototype) throw new DecodeError('values must be plain data')
      const o = v as Record<string, unknown>
      for (const k of Object.keys(o)) o[k] = sanitizeValue(o[k], depth + 1)
      return o
    }
    default:
      throw new DecodeError(`values must be plain data, got ${typeof v}`)
  }
}
