import { AWLWWMap, type Delta, decodeDelta, encodeDelta } from '@nact-horde/crdt'
import { Unpackr } from 'msgpackr'
import { describe, expect, it } from 'vitest'
import { canonical, ManualClock, prng, syncPair, testSeed, visible } from './helpers.js'

/**
 * A hostile network for deltas and sync messages: per receiver queues, random flushing,
 * loss, duplication, reordering and delay. Seeded: `SEED=<n>` replays a failing run.
 */
class TestNetwork {
  private queues = new Map<
    string,
    { bytes: Uint8Array; kind: 'delta' | 'sync'; from: string; due: number }[]
  >()
  now = 0
  constructor(
    private readonly rand: () => number,
    private readonly replicas: Map<string, AWLWWMap<number>>,
    private readonly loss: number,
    /** When set: every sync message must keep to it, and deltas are joined with joinFrom. */
    private readonly budget?: number,
  ) {
    for (const id of replicas.keys()) this.queues.set(id, [])
  }

  send(from: string, to: string, kind: 'delta' | 'sync', bytes: Uint8Array): void {
    // Over the budget only when one item did not fit alone beside the context.
    if (kind === 'sync' && this.budget !== undefined && bytes.length > this.budget && itemsIn(bytes) > 1) {
      throw new Error(`a sync message of ${bytes.length} B over the budget of ${this.budget} B`)
    }
    if (this.rand() < this.loss) return
    const copies = this.rand() < 0.1 ? 2 : 1
    for (let i = 0; i < copies; i++) {
      this.queues.get(to)!.push({ bytes, kind, from, due: this.now + Math.floor(this.rand() * 5) })
    }
  }

  broadcast(from: string, delta: Delta<number>): void {
    const bytes = encodeDelta(delta)
    for (const to of this.replicas.keys()) if (to !== from) this.send(from, to, 'delta', bytes)
  }

  /** Delivers some due messages to one receiver, in random order. */
  flush(to: string): void {
    const q = this.queues.get(to)!
    const due = q.filter((m) => m.due <= this.now)
    this.queues.set(
      to,
      q.filter((m) => m.due > this.now),
    )
    for (let i = due.length - 1; i > 0; i--) {
      const j = Math.floor(this.rand() * (i + 1))
      ;[due[i], due[j]] = [due[j]!, due[i]!]
    }
    const r = this.replicas.get(to)!
    for (const m of due) {
      if (m.kind === 'delta') {
        if (this.budget === undefined) r.join(decodeDelta(m.bytes))
        else r.joinFrom(m.from, decodeDelta(m.bytes))
      } else {
        r.link(m.from).receive(m.bytes)
        const reply = r.link(m.from).generate()
        if (reply) this.send(to, m.from, 'sync', reply)
      }
    }
  }

  /** A replica starts an anti-entropy exchange with a peer (the periodic timer in a real node). */
  tick(from: string, to: string): void {
    const msg = this.replicas.get(from)!.link(to).generate()
    if (msg) this.send(from, to, 'sync', msg)
  }

  drop(): void {
    for (const id of this.queues.keys()) this.queues.set(id, [])
  }
}

const unpackr = new Unpackr({ useRecords: false })

/** Items in a sync message: live writes, per-key superseded-dot lists, tree nodes and listings. */
function itemsIn(bytes: Uint8Array): number {
  const msg = unpackr.unpack(bytes) as unknown[][]
  let n = msg[9]!.length / 3 + msg[10]!.length
  for (const part of msg[7] as unknown[][])
    n += (part[1] as unknown[]).length / 5 + (part.length === 3 ? 1 : 0)
  return n
}

function runScenario(
  seed: number,
  opts: { replicas: number; steps: number; keys: number; loss: number; maxSyncBytes?: number },
) {
  const rand = prng(seed)
  const clock = new ManualClock()
  const ids = Array.from({ length: opts.replicas }, (_, i) => `r${i}`)
  const replicas = new Map(
    ids.map((id) => [id, new AWLWWMap<number>({ replicaId: id, clock, maxSyncBytes: opts.maxSyncBytes })]),
  )
  const net = new TestNetwork(rand, replicas, opts.loss, opts.maxSyncBytes)
  const oracle = new AWLWWMap<number>({ replicaId: 'oracle' })
  const pick = <T>(xs: T[]) => xs[Math.floor(rand() * xs.length)]!

  for (let step = 0; step < opts.steps; step++) {
    net.now = step
    clock.t += Math.floor(rand() * 3)
    const id = pick(ids)
    const r = replicas.get(id)!
    const x = rand()
    const key = `k${Math.floor(rand() * opts.keys)}`
    if (x < 0.45) {
      const d = r.set(key, Math.floor(rand() * 1000))
      oracle.join(d)
      net.broadcast(id, d)
    } else if (x < 0.65) {
      const d = r.delete(key)
      oracle.join(d)
      net.broadcast(id, d)
    } else if (x < 0.9) {
      net.flush(pick(ids))
    } else {
      net.tick(id, pick(ids.filter((o) => o !== id)))
    }
  }
  // Whatever is still in flight is lost. Then sync rounds, over a ring and then at random,
  // until every link is silent.
  net.drop()
  const maxRounds = opts.maxSyncBytes === undefined ? 200 : 2000
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < ids.length; i++) {
      syncPair(replicas.get(ids[i]!)!, replicas.get(ids[(i + 1) % ids.length]!)!, { maxRounds })
    }
  }
  // Every pair's link was left mid-conversation by the random phase: let each settle.
  for (const x of ids)
    for (const y of ids) if (x < y) syncPair(replicas.get(x)!, replicas.get(y)!, { maxRounds })
  return { ids, replicas, oracle }
}

describe('seeded random convergence under loss, duplication, reordering and delay', () => {
  const seed = testSeed('convergence')

  for (const [n, loss, maxSyncBytes] of [
    [3, 0.2, undefined],
    [4, 0.4, undefined],
    [5, 0.6, undefined],
    [3, 0.3, 128],
    [5, 0.5, 200],
  ] as const) {
    const how =
      maxSyncBytes === undefined ? '' : `, ${maxSyncBytes} B sync budget, gossip joined with joinFrom`
    it(`${n} replicas, ${loss * 100}% loss${how}: all replicas equal the join of every write, and links fall silent`, () => {
      for (let run = 0; run < 20; run++) {
        const s = seed + run * 7919 + n
        const { ids, replicas, oracle } = runScenario(s, {
          replicas: n,
          steps: 300,
          keys: 12,
          loss,
          maxSyncBytes,
        })
        const expected = canonical(oracle)
        for (const id of ids) {
          // The oracle joined every delta ever made: nothing lost, nothing invented.
          expect(visible(replicas.get(id)!), `SEED=${s} replica ${id}`).toEqual(visible(oracle))
          for (const other of ids) {
            if (other !== id)
              expect(replicas.get(id)!.link(other).generate(), `SEED=${s} ${id}→${other}`).toBeNull()
          }
        }
        const states = ids.map((id) => canonical(replicas.get(id)!))
        expect(new Set(states).size, `SEED=${s}`).toBe(1)
        // Replicas have seen every write, including each superseded one the oracle has.
        const r0 = replicas.get(ids[0]!)!
        r0.join(oracle.state())
        expect(canonical(r0), `SEED=${s}`).toBe(states[0])
        expect(expected.length).toBeGreaterThan(0)
      }
    })
  }

  it('sync messages themselves may be lost: a lost message costs a resend, never a stuck link', () => {
    const rand = prng(seed)
    for (let run = 0; run < 30; run++) {
      // Half the runs with a budget so small that most messages carry one or two writes.
      const maxSyncBytes = run % 2 === 0 ? undefined : 96
      const a = new AWLWWMap<number>({ replicaId: 'a', maxSyncBytes })
      const b = new AWLWWMap<number>({ replicaId: 'b', maxSyncBytes })
      for (let i = 0; i < 200; i++) {
        const target = rand() < 0.5 ? a : b
        if (rand() < 0.7) target.set(`k${Math.floor(rand() * 50)}`, i)
        else target.delete(`k${Math.floor(rand() * 50)}`)
      }
      syncPair(a, b, { lose: () => rand() < 0.3, maxRounds: 5000 })
      expect(canonical(a), `SEED=${seed} run ${run}`).toBe(canonical(b))
    }
  })
})

describe('sequential model', () => {
  it('with every delta delivered before the next write, reads match a plain Map', () => {
    const seed = testSeed('sequential')
    const rand = prng(seed)
    const rs = ['a', 'b', 'c'].map((id) => new AWLWWMap<number>({ replicaId: id }))
    const model = new Map<string, number>()
    for (let i = 0; i < 2000; i++) {
      const r = rs[Math.floor(rand() * 3)]!
      const key = `k${Math.floor(rand() * 20)}`
      let d: Delta<number>
      if (rand() < 0.7) {
        d = r.set(key, i)
        model.set(key, i)
      } else {
        d = r.delete(key)
        model.delete(key)
      }
      for (const o of rs) if (o !== r) o.join(decodeDelta(encodeDelta(d)))
      for (const o of rs) expect(o.get(key), `SEED=${seed} step ${i}`).toBe(model.get(key))
    }
    for (const o of rs) expect(o.toMap()).toEqual(model)
  })
})
