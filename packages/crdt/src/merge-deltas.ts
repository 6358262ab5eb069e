import { InvalidArgumentError } from './errors.js'
import { KeyTable } from './key-table.js'
import type { Delta, Dot, Entry, KeyDelta } from './types.js'

const EMPTY_RANGES: ReadonlyMap<string, readonly number[]> = new Map()

/**
 * Joins deltas that carry no context ranges — what `set`, `delete` and `rebase` return, and
 * any join of those — into one delta: joining it into a replica has the same effect as joining
 * each of them in turn, in any order. A sender that batches its writes ships one delta per
 * batch, and every receiver decodes and joins one message instead of one per write.
 *
 * Per key this is the dot-store join of the deltas' key-scoped contexts: a write stays unless
 * another delta supersedes it (lists its dot as dead without holding it); the superseded dots
 * of all of them are kept. Throws {@link InvalidArgumentError} for a delta with ranges (a
 * whole state, a sync message's delta): those cover writes the delta does not list, which a
 * key-scoped join cannot express.
 */
export function mergeDeltas<V>(deltas: readonly Delta<V>[]): Delta<V> {
  for (const d of deltas) {
    if (d.ranges.size > 0) {
      throw new InvalidArgumentError(
        'mergeDeltas takes deltas without context ranges (what set, delete and rebase return); ship a state or a sync delta on its own',
      )
    }
  }
  if (deltas.length === 1) return deltas[0]!
  const names: string[] = []
  const merged: KeyDelta<V>[] = []
  const at = new Map<string, number>()
  for (const d of deltas) {
    d.keys.forEach((kd, key) => {
      const i = at.get(key)
      if (i === undefined) {
        at.set(key, names.length)
        names.push(key)
        merged.push(kd)
      } else merged[i] = joinKey(merged[i]!, kd)
    })
  }
  return { keys: new KeyTable(names, merged), ranges: EMPTY_RANGES }
}

/** Whether `dots` holds dot `d` (a set of `r c` keys for long lists: relayed deltas can be large). */
function holder(dots: readonly Dot[]): (d: Dot) => boolean {
  if (dots.length <= 8) return (d) => dots.some((x) => x.r === d.r && x.c === d.c)
  const set = new Set(dots.map((x) => `${x.c} ${x.r}`))
  return (d) => set.has(`${d.c} ${d.r}`)
}

/** The join of two deltas of one key: each side's writes the other side has not superseded. */
function joinKey<V>(a: KeyDelta<V>, b: KeyDelta<V>): KeyDelta<V> {
  const deadInA = holder(a.dead)
  const deadInB = holder(b.dead)
  const liveInA = holder(a.entries)
  const entries: Entry<V>[] = []
  for (const e of a.entries) if (!deadInB(e)) entries.push(e)
  for (const e of b.entries) if (!deadInA(e) && !liveInA(e)) entries.push(e)
  const dead = a.dead.slice()
  for (const d of b.dead) if (!deadInA(d)) dead.push(d)
  return { entries, dead }
}
