import { Packr, Unpackr } from 'msgpackr'
import { DecodeError } from './errors.js'
import { hasDuplicate, KeyTable } from './key-table.js'
import { MessagePackWriter } from './msgpack-writer.js'
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
/** The longest key (in UTF-16 code units) a delta may carry. */
export const MAX_KEY_LENGTH = 65_536

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
  /** Built only once the table is long: most messages name one or two replicas. */
  private index: Map<string, number> | undefined
  private lastId = ''
  private lastIndex = -1
  ref(id: string): number {
    // Consecutive references are mostly to the same replica.
    if (id === this.lastId) return this.lastIndex
    let i: number | undefined
    if (this.index === undefined) {
      i = this.ids.indexOf(id)
      if (i < 0) {
        i = this.ids.length
        this.ids.push(id)
        if (this.ids.length > SHORT_TABLE) this.index = new Map(this.ids.map((x, k) => [x, k]))
      }
    } else {
      i = this.index.get(id)
      if (i === undefined) {
        i = this.ids.length
        this.ids.push(id)
        this.index.set(id, i)
      }
    }
    this.lastId = id
    this.lastIndex = i
    return i
  }
}

/** Up to this many ids, a linear search beats building a Map. */
const SHORT_TABLE = 8

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
  if (!writerBusy) {
    // A value's getter could call encodeDelta again: only the outer call uses the writer.
    writerBusy = true
    try {
      const bytes = writeDelta(delta)
      if (bytes !== undefined) return bytes
    } finally {
      writerBusy = false
    }
  }
  const table = new ReplicaTable()
  const keys = encodeKeys(delta.keys, table)
  const ranges = encodeRanges(delta.ranges, table)
  return pack([WIRE_VERSION, KIND_DELTA, table.ids, keys, ranges])
}

const writer = new MessagePackWriter()
let writerBusy = false

/**
 * The fast path of {@link encodeDelta}: the same bytes as packing the arrays `encodeKeys`
 * and `encodeRanges` build, written directly. Undefined when a key or value needs msgpackr.
 */
function writeDelta<V>(delta: Delta<V>): Uint8Array | undefined {
  const keys = delta.keys
  // Our own deltas keep keys in a KeyTable: walk its arrays directly (no closure, no
  // iterator per call; a local write's delta is encoded once per write).
  const table = keys instanceof KeyTable ? (keys as KeyTable<V>) : undefined
  // The replica table comes first in the message: number the ids in the order the
  // array-building path meets them (each key's entries, then its dead dots; then ranges).
  const ids = new ReplicaTable()
  if (table !== undefined) {
    for (const kd of table.deltas) refIds(ids, kd)
  } else {
    keys.forEach((kd) => {
      refIds(ids, kd)
    })
  }
  let rangeParts = 0
  if (delta.ranges.size > 0) {
    for (const [r, iv] of delta.ranges) {
      if (iv.length === 0) continue
      ids.ref(r)
      rangeParts++
    }
  }
  const w = writer
  w.reset()
  w.arrayHeader(5)
  w.number(WIRE_VERSION)
  w.number(KIND_DELTA)
  w.arrayHeader(ids.ids.length)
  for (const id of ids.ids) if (!w.string(id)) return undefined
  w.arrayHeader(keys.size)
  if (table !== undefined) {
    for (let i = 0; i < table.names.length; i++) {
      if (!writeKey(w, ids, table.names[i]!, table.deltas[i]!)) return undefined
    }
  } else {
    let ok = true
    keys.forEach((kd, key) => {
      ok &&= writeKey(w, ids, key, kd)
    })
    if (!ok) return undefined
  }
  w.arrayHeader(rangeParts)
  if (delta.ranges.size > 0) {
    for (const [r, iv] of delta.ranges) {
      if (iv.length === 0) continue
      w.arrayHeader(iv.length + 1)
      w.number(ids.ref(r))
      for (let k = 0; k < iv.length; k++) w.number(iv[k]!)
    }
  }
  return w.result()
}

function refIds<V>(ids: ReplicaTable, kd: KeyDelta<V>): void {
  for (const e of kd.entries) ids.ref(e.r)
  for (const d of kd.dead) ids.ref(d.r)
}

/** One `[key, entries, dead?]` part; false when it needs msgpackr. */
function writeKey<V>(w: MessagePackWriter, ids: ReplicaTable, key: string, kd: KeyDelta<V>): boolean {
  const dead = kd.dead
  w.arrayHeader(dead.length === 0 ? 2 : 3)
  if (!w.string(key)) return false
  w.arrayHeader(kd.entries.length * 5)
  for (const e of kd.entries) {
    w.number(ids.ref(e.r))
    w.number(e.c)
    w.number(e.wall)
    w.number(e.logical)
    if (!w.value(e.value)) return false
  }
  if (dead.length > 0) {
    w.arrayHeader(dead.length * 2)
    for (const d of dead) {
      w.number(ids.ref(d.r))
      w.number(d.c)
    }
  }
  return true
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

const NO_DOTS: readonly Dot[] = []

function decodeEntry<V>(flat: unknown[], i: number, replicas: string[]): Entry<V> {
  return {
    r: replicaAt(replicas, flat[i]),
    c: counter(flat[i + 1]),
    wall: natural(flat[i + 2], 'timestamp'),
    logical: natural(flat[i + 3], 'logical clock'),
    value: sanitizeValue(flat[i + 4], 0) as V,
  }
}

export function decodeKeys<V>(v: unknown, replicas: string[]): KeyTable<V> {
  if (!Array.isArray(v)) throw new DecodeError('keys must be an array')
  const names: string[] = []
  const deltas: KeyDelta<V>[] = []
  for (const part of v) {
    if (!Array.isArray(part) || part.length < 2 || part.length > 3)
      throw new DecodeError('malformed key part')
    const key = decodeKey(part[0])
    const flat = part[1]
    if (!Array.isArray(flat) || flat.length % 5 !== 0)
      throw new DecodeError('entries must be a flat array of 5-tuples')
    // A one-entry literal for the common case, else sized up front: `push` onto [] would
    // reserve 17 slots, and a joining replica keeps these arrays (a full state has one per key).
    let entries: Entry<V>[]
    if (flat.length === 5) {
      entries = [decodeEntry<V>(flat, 0, replicas)]
    } else {
      entries = new Array<Entry<V>>(flat.length / 5)
      for (let i = 0; i < flat.length; i += 5) entries[i / 5] = decodeEntry<V>(flat, i, replicas)
    }
    const dead = part.length === 3 ? decodeDots(part[2], replicas) : NO_DOTS
    names.push(key)
    deltas.push({ entries, dead })
  }
  if (hasDuplicate(names)) throw new DecodeError('a key appears twice in one delta')
  return new KeyTable(names, deltas)
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
      // for-in rather than Object.keys: no array per value.
      for (const k in o) if (Object.hasOwn(o, k)) o[k] = sanitizeValue(o[k], depth + 1)
      return o
    }
    default:
      throw new DecodeError(`values must be plain data, got ${typeof v}`)
  }
}

// ——— size bounds, for byte budgets ———

/** Bytes MessagePack takes for the number `v` (as msgpackr and MessagePackWriter write it). */
export function numberSize(v: number): number {
  if (v >>> 0 === v) return v < 0x80 ? 1 : v < 0x100 ? 2 : v < 0x10000 ? 3 : 5
  if (v >> 0 === v) return v >= -0x20 ? 1 : v >= -0x80 ? 2 : v >= -0x8000 ? 3 : 5
  return 9
}

/** At least the bytes MessagePack takes for the string `s`. */
export function stringSize(s: string): number {
  const n = s.length
  // One byte per character when ASCII; otherwise UTF-8 takes at most 3 per UTF-16 unit.
  let ascii = true
  for (let i = 0; i < n; i++) {
    if (s.charCodeAt(i) >= 0x80) {
      ascii = false
      break
    }
  }
  if (!ascii) return 3 * n + 5
  return n + (n < 0x20 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : 5)
}

function headerSize(n: number): number {
  return n < 0x10 ? 1 : n < 0x10000 ? 3 : 5
}

/**
 * An upper bound of the bytes MessagePack takes for a stored value (exact for the common
 * shapes): what a sync message's byte budget charges for it.
 */
export function valueSize(v: unknown): number {
  switch (typeof v) {
    case 'number':
      return numberSize(v)
    case 'string':
      return stringSize(v)
    case 'boolean':
      return 1
    case 'object': {
      if (v === null) return 1
      if (v instanceof Uint8Array) return v.length + (v.length < 0x100 ? 2 : v.length < 0x10000 ? 3 : 5)
      if (Array.isArray(v)) {
        let n = headerSize(v.length)
        for (let i = 0; i < v.length; i++) n += valueSize(v[i])
        return n
      }
      // msgpackr writes plain objects with a map16 header (map32 past 65,535 keys).
      let n = 5
      const o = v as Record<string, unknown>
      for (const k in o) if (Object.hasOwn(o, k)) n += stringSize(k) + valueSize(o[k])
      return n
    }
    default:
      return 9
  }
}

/** An upper bound of the bytes one live entry takes inside a key part (replica ref, counter, HLC, value). */
export function entrySize<V>(e: Entry<V>, ref: number): number {
  return numberSize(ref) + numberSize(e.c) + numberSize(e.wall) + numberSize(e.logical) + valueSize(e.value)
}

/** An upper bound of a key part's bytes beyond its entries and dots: headers and the key. */
export function keyPartSize(key: string): number {
  // [key, entries, dead?]: array header, the key, two array headers.
  return 1 + stringSize(key) + 5 + 5
}

/** An upper bound of the bytes of a (replica ref, counter) pair. */
export function dotSize(ref: number, c: number): number {
  return numberSize(ref) + numberSize(c)
}
