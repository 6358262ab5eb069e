import { fnv1a } from './hash.js'
import type { KeyDelta } from './types.js'

/**
 * The `keys` of the deltas this package builds (local writes, `state()`, decoded messages): a
 * read-only map held as two arrays in insertion order. A JS Map of 100k string keys costs tens
 * of milliseconds to fill, and these are almost always only iterated (by `join` and the
 * encoder), so the lookup index behind `get`/`has` is built only when first asked for.
 */
export class KeyTable<V> implements ReadonlyMap<string, KeyDelta<V>> {
  private index: Map<string, number> | undefined

  /** `names[i]` is the key of `deltas[i]`; names are distinct. Both arrays are owned. */
  constructor(
    readonly names: readonly string[],
    readonly deltas: readonly KeyDelta<V>[],
  ) {}

  get size(): number {
    return this.names.length
  }

  get(key: string): KeyDelta<V> | undefined {
    const i = this.indexOf(key)
    return i < 0 ? undefined : this.deltas[i]
  }

  has(key: string): boolean {
    return this.indexOf(key) >= 0
  }

  forEach(
    visit: (value: KeyDelta<V>, key: string, map: ReadonlyMap<string, KeyDelta<V>>) => void,
    thisArg?: unknown,
  ): void {
    const { names, deltas } = this
    for (let i = 0; i < names.length; i++) visit.call(thisArg, deltas[i]!, names[i]!, this)
  }

  *entries(): MapIterator<[string, KeyDelta<V>]> {
    for (let i = 0; i < this.names.length; i++) yield [this.names[i]!, this.deltas[i]!]
  }

  *keys(): MapIterator<string> {
    yield* this.names
  }

  *values(): MapIterator<KeyDelta<V>> {
    yield* this.deltas
  }

  [Symbol.iterator](): MapIterator<[string, KeyDelta<V>]> {
    return this.entries()
  }

  get [Symbol.toStringTag](): string {
    return 'KeyTable'
  }

  private indexOf(key: string): number {
    // Small tables (every local write's delta) are searched; big ones get an index once.
    if (this.names.length <= 8) return this.names.indexOf(key)
    if (this.index === undefined) {
      this.index = new Map()
      for (let i = 0; i < this.names.length; i++) this.index.set(this.names[i]!, i)
    }
    return this.index.get(key) ?? -1
  }
}

/** Longest probe run accepted before {@link hasDuplicate} gives up on its own table. */
const MAX_PROBE = 32

/**
 * Whether `names` holds some string twice. An open-addressing table of indices keyed by
 * FNV-1a: far cheaper than a JS Set for 100k keys. FNV is not seeded, so hostile input can
 * make it collide; past {@link MAX_PROBE} steps it hands over to a Set (V8's string hash
 * is seeded), keeping the check linear whatever the bytes.
 */
export function hasDuplicate(names: readonly string[]): boolean {
  const n = names.length
  if (n < 2) return false
  let size = 16
  while (size < 2 * n) size *= 2
  const mask = size - 1
  const slots = new Int32Array(size).fill(-1)
  for (let i = 0; i < n; i++) {
    const name = names[i]!
    let h = fnv1a(name) & mask
    for (let probe = 0; ; probe++) {
      const j = slots[h]!
      if (j < 0) {
        slots[h] = i
        break
      }
      if (names[j] === name) return true
      if (probe > MAX_PROBE) return new Set(names).size !== n
      h = (h + 1) & mask
    }
  }
  return false
}
