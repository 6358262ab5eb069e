import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { AWLWWMap } from '@nact-horde/crdt'
import { describe, expect, it } from 'vitest'
import { canonical, prng, syncPair, testSeed } from './helpers.js'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

function heapUsed(): number {
  gc()
  gc()
  return process.memoryUsage().heapUsed
}

describe('memory under churn', () => {
  it('1M set/delete operations over 1k keys across 3 linked replicas keep memory flat', () => {
    const seed = testSeed('churn')
    const rand = prng(seed)
    const rs = ['a', 'b', 'c'].map((id) => new AWLWWMap<{ n: number }>({ replicaId: id }))
    const TOTAL = 1_000_000
    const samples: number[] = []
    for (let op = 1; op <= TOTAL; op++) {
      const i = Math.floor(rand() * 3)
      const r = rs[i]!
      const key = `key-${Math.floor(rand() * 1000)}`
      const d = rand() < 0.7 ? r.set(key, { n: op }) : r.delete(key)
      // 10% of deltas are lost on the way to each peer; anti-entropy repairs them.
      for (let j = 0; j < 3; j++) if (j !== i && rand() >= 0.1) rs[j]!.join(d)
      if (op % 50_000 === 0) {
        syncPair(rs[0]!, rs[1]!)
        syncPair(rs[1]!, rs[2]!)
        syncPair(rs[0]!, rs[2]!)
        if (op >= 200_000) samples.push(heapUsed())
      }
    }
    syncPair(rs[0]!, rs[1]!)
    syncPair(rs[1]!, rs[2]!)
    syncPair(rs[0]!, rs[2]!)
    expect(canonical(rs[0]!)).toBe(canonical(rs[1]!))
    expect(canonical(rs[1]!)).toBe(canonical(rs[2]!))

    const first = samples[0]!
    const last = samples[samples.length - 1]!
    const max = Math.max(...samples)
    console.log(
      `churn heap after 200k ops ${(first / 1e6).toFixed(1)} MB, after 1M ${(last / 1e6).toFixed(1)} MB, max ${(max / 1e6).toFixed(1)} MB`,
    )
    // Flat: 800k more operations may not grow the heap by more than a few MB (the map
    // itself holds 1k keys). A leak of even 8 bytes per operation would add 6.4 MB.
    expect(last - first).toBeLessThan(4_000_000)
    expect(max - first).toBeLessThan(8_000_000)
  }, 120_000)
})
