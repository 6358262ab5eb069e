/**
 * A 16-ary hash tree over a map's live content, used by anti-entropy to find, in a few round
 * trips and a few kB, the keys on which two replicas differ — including removals and
 * overwrites of writes the peer already knows, which a version-vector comparison cannot see.
 *
 * A key's place is fixed by the hash of the key alone (level l holds the top 4·l bits), and a
 * node's hash is the XOR of its keys' hashes, so node hashes are comparable between replicas
 * whatever depth each has materialised, and an update costs one XOR per level. A replica
 * keeps `depth` levels (about 16–256 keys per leaf) and answers for deeper nodes by
 * filtering its leaf.
 */
export interface TreeItem {
  /** Hash of the key: fixes the item's leaf. */
  readonly kh: number
  /** Hash of the item's content (the key and its live dots). */
  h1: number
  h2: number
  /** Position in its leaf bucket; owned by the tree. */
  pos: number
}

/** Deepest level a node can have: all 32 bits of the key hash. */
export const MAX_LEVEL = 8
const KEYS_PER_LEAF_TO_GROW = 256
const MAX_DEPTH = 5

export class DigestTree<T extends TreeItem> {
  private depth = 1
  private levels: Uint32Array[] = [new Uint32Array(2 * 16)]
  private leaves: T[][] = Array.from({ length: 16 }, () => [])
  private count = 0
  /** Size past which one more level is kept. */
  private growAt = KEYS_PER_LEAF_TO_GROW * 16
  private root1 = 0
  private root2 = 0

  get size(): number {
    return this.count
  }

  get levelsKept(): number {
    return this.depth
  }

  root(): [number, number] {
    return [this.root1, this.root2]
  }

  add(item: T): void {
    const leaf = this.leaves[prefixOf(item.kh, this.depth)]!
    item.pos = leaf.length
    leaf.push(item)
    this.count++
    this.xor(item.kh, item.h1, item.h2)
    if (this.count > this.growAt) this.deepen()
  }

  remove(item: T): void {
    const leaf = this.leaves[prefixOf(item.kh, this.depth)]!
    const last = leaf.pop()!
    if (last !== item) {
      leaf[item.pos] = last
      last.pos = item.pos
    }
    this.count--
    this.xor(item.kh, item.h1, item.h2)
  }

  /** Call after changing an item's content hash from (old1, old2) to its current (h1, h2). */
  rehash(item: T, old1: number, old2: number): void {
    this.xor(item.kh, (old1 ^ item.h1) >>> 0, (old2 ^ item.h2) >>> 0)
  }

  /** Hash of node (level, prefix); level 0 is the root. */
  hash(level: number, prefix: number): [number, number] {
    if (level === 0) return [this.root1, this.root2]
    if (level <= this.depth) {
      const lv = this.levels[level - 1]!
      return [lv[2 * prefix]!, lv[2 * prefix + 1]!]
    }
    let h1 = 0
    let h2 = 0
    for (const item of this.itemsUnder(level, prefix)) {
      h1 ^= item.h1
      h2 ^= item.h2
    }
    return [h1 >>> 0, h2 >>> 0]
  }

  /**
   * Items under node (level, prefix), or undefined when the node holds more items than
   * `limit` (then compare its children instead of listing it).
   */
  itemsUnderIfFew(level: number, prefix: number, limit: number): T[] | undefined {
    if (level < this.depth) {
      // Count the leaves under the node without materialising them.
      const span = 16 ** (this.depth - level)
      let n = 0
      for (let p = prefix * span; p < (prefix + 1) * span; p++) {
        n += this.leaves[p]!.length
        if (n > limit) return undefined
      }
      const out: T[] = []
      for (let p = prefix * span; p < (prefix + 1) * span; p++) out.push(...this.leaves[p]!)
      return out
    }
    const items = this.itemsUnder(level, prefix)
    return items.length > limit ? undefined : items
  }

  private itemsUnder(level: number, prefix: number): T[] {
    const leaf = this.leaves[level >= this.depth ? prefix >>> (4 * (level - this.depth)) : -1]
    if (leaf === undefined) return []
    if (level === this.depth) return leaf.slice()
    return leaf.filter((item) => prefixOf(item.kh, level) === prefix)
  }

  private xor(kh: number, d1: number, d2: number): void {
    this.root1 = (this.root1 ^ d1) >>> 0
    this.root2 = (this.root2 ^ d2) >>> 0
    for (let l = 1; l <= this.depth; l++) {
      const lv = this.levels[l - 1]!
      const p = prefixOf(kh, l)
      lv[2 * p] = lv[2 * p]! ^ d1
      lv[2 * p + 1] = lv[2 * p + 1]! ^ d2
    }
  }

  /**
   * Keeps one level more. The levels above are unchanged (a node's hash does not depend on
   * how deep the tree is kept), so only the new level is summed and each leaf split in 16.
   */
  private deepen(): void {
    const depth = this.depth + 1
    const level = new Uint32Array(2 * 16 ** depth)
    const leaves: T[][] = []
    for (let p = 0; p < 16 ** depth; p++) leaves.push([])
    for (const leaf of this.leaves) {
      for (const item of leaf) {
        const p = prefixOf(item.kh, depth)
        const child = leaves[p]!
        item.pos = child.length
        child.push(item)
        level[2 * p] = level[2 * p]! ^ item.h1
        level[2 * p + 1] = level[2 * p + 1]! ^ item.h2
      }
    }
    this.levels.push(level)
    this.leaves = leaves
    this.depth = depth
    this.growAt = depth < MAX_DEPTH ? KEYS_PER_LEAF_TO_GROW * 16 ** depth : Number.POSITIVE_INFINITY
  }
}

/** The node at `level` that a key hash falls under. */
export function prefixOf(kh: number, level: number): number {
  return level === 0 ? 0 : kh >>> (32 - 4 * level)
}
