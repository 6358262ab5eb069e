/**
 * Live dots per writing replica, ordered by counter, so that "which of my live writes fall in
 * these counter intervals" costs O(log n + answer) rather than a scan of the map. Removal is
 * lazy (the caller checks liveness of what a query yields) and arrays are compacted once
 * they are half dead, so memory follows the live set, not the history.
 */
export class DotIndex {
  private readonly byReplica = new Map<string, Column>()

  add(replica: string, counter: number, key: string): void {
    let col = this.byReplica.get(replica)
    if (col === undefined) {
      col = { counters: [], keys: [], sorted: true, live: 0 }
      this.byReplica.set(replica, col)
    }
    const n = col.counters.length
    if (n > 0 && col.counters[n - 1]! > counter) col.sorted = false
    col.counters.push(counter)
    col.keys.push(key)
    col.live++
  }

  /** Records that one live dot of `replica` died; compacts when most of the column is dead. */
  remove(replica: string, isLive: (replica: string, counter: number, key: string) => boolean): void {
    const col = this.byReplica.get(replica)
    if (col === undefined) return
    col.live--
    if (col.counters.length > 64 && col.counters.length > 2 * col.live) {
      let w = 0
      for (let i = 0; i < col.counters.length; i++) {
        const c = col.counters[i]!
        const k = col.keys[i]!
        if (isLive(replica, c, k)) {
          col.counters[w] = c
          col.keys[w] = k
          w++
        }
      }
      col.counters.length = w
      col.keys.length = w
      col.live = w
      if (w === 0) this.byReplica.delete(replica)
    }
  }

  /** Forgets the column of `replica` (it has no live dot left: it was retired). */
  drop(replica: string): void {
    this.byReplica.delete(replica)
  }

  /**
   * Calls `visit` for every indexed (counter, key) of `replica` with lo <= counter <= hi, in
   * counter order. A `visit` that returns `false` stops the walk; `query` then returns false.
   */
  query(replica: string, lo: number, hi: number, visit: (counter: number, key: string) => unknown): boolean {
    const col = this.byReplica.get(replica)
    if (col === undefined) return true
    if (!col.sorted) sortColumn(col)
    const cs = col.counters
    let a = 0
    let b = cs.length
    while (a < b) {
      const mid = (a + b) >>> 1
      if (cs[mid]! < lo) a = mid + 1
      else b = mid
    }
    for (let i = a; i < cs.length && cs[i]! <= hi; i++)
      if (visit(cs[i]!, col.keys[i]!) === false) return false
    return true
  }

  /** Number of index slots held (live and not yet compacted), for memory accounting. */
  get slots(): number {
    let n = 0
    for (const col of this.byReplica.values()) n += col.counters.length
    return n
  }
}

interface Column {
  counters: number[]
  keys: string[]
  sorted: boolean
  live: number
}

function sortColumn(col: Column): void {
  const order = col.counters.map((_, i) => i).sort((x, y) => col.counters[x]! - col.counters[y]!)
  col.counters = order.map((i) => col.counters[i]!)
  col.keys = order.map((i) => col.keys[i]!)
  col.sorted = true
}
