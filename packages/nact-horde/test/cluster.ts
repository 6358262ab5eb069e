import { createMemoryNetwork, type MemoryNetwork } from '@nact-horde/transport'
import nact from 'nact'
import { type Behaviour, type Horde, type HordeOptions, startHorde, stopSelf } from 'nact-horde'

/** Polls `pred` until it holds or `timeout` ms pass (then throws, naming `what`). */
export async function waitFor(
  pred: () => boolean | Promise<boolean>,
  timeout = 5000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + timeout
  for (;;) {
    if (await pred()) return
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

/** A seeded PRNG (mulberry32): the same schedule for the same seed. */
export function prng(seed: number): () => number {
  let t = seed >>> 0
  return () => {
    t = (t + 0x6d2b79f5) >>> 0
    let x = Math.imul(t ^ (t >>> 15), 1 | t)
    x ^= x + Math.imul(x ^ (x >>> 7), 61 | x)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

/**
 * The gate of behaviour `gated`: while `hold` is set, its `init` waits for it, and `entered`
 * lists the node of every init that began (a test holds a start midway).
 */
export const initGate: { hold: Promise<void> | undefined; entered: string[] } = {
  hold: undefined,
  entered: [],
}

/** Example behaviours used across the tests. */
export const behaviours: Record<string, Behaviour> = {
  gated: {
    init: async (_args: unknown, ctx) => {
      initGate.entered.push(ctx.node)
      await initGate.hold
      return 0
    },
    handle: (s: number) => s + 1,
  },
  counter: {
    init: (args: { start?: number } | null) => args?.start ?? 0,
    handle: (
      n: number,
      msg: {
        add?: number
        crash?: boolean
        stop?: boolean
        get?: boolean
        replyTo?: unknown
        notify?: unknown[]
      },
      ctx,
    ) => {
      if (msg.crash) throw new Error('asked to crash')
      if (msg.stop) return stopSelf(n)
      const next = n + (msg.add ?? 0)
      if (msg.get && ctx.sender) nact.dispatch(ctx.sender as never, n)
      if (msg.replyTo) nact.dispatch(msg.replyTo as never, next)
      for (const r of msg.notify ?? []) nact.dispatch(r as never, { from: ctx.id, value: next })
      return next
    },
    handoff: { save: (n: number) => n, restore: (saved: unknown) => saved as number },
  },
  plain: {
    init: () => 0,
    handle: (s: number) => s + 1,
  },
  /** Takes 150 ms to stop (its terminate hook), so a planned move is long enough to race with. */
  slowStop: {
    init: () => 0,
    handle: (s: number) => s + 1,
    terminate: () => new Promise<void>((r) => setTimeout(r, 150)),
    handoff: { save: (s: number) => s, restore: (saved: unknown) => saved as number },
  },
  /** Keeps every message in order; answers `{ dump: replyTo }` with the list. */
  log: {
    init: () => [] as unknown[],
    handle: (list: unknown[], msg: { dump?: unknown; item?: unknown }) => {
      if (msg.dump) nact.dispatch(msg.dump as never, list)
      else list.push(msg.item)
      return list
    },
    handoff: { save: (list: unknown[]) => list, restore: (saved: unknown) => saved as unknown[] },
  },
}

export interface TestNode {
  horde: Horde
  system: unknown
  alive: boolean
}

/** N nodes of one horde on an in-memory network; `crash(i)` kills a node without a goodbye. */
export class Cluster {
  readonly nodes: TestNode[] = []
  constructor(
    readonly network: MemoryNetwork,
    private readonly options: Partial<HordeOptions>,
    /** The transports' failure timeout, ms: a node's loop blocked for half of it makes it stale. */
    private readonly failureTimeout = 300,
  ) {}

  static async start(
    n: number,
    options: Partial<HordeOptions> = {},
    { failureTimeout = 300 }: { failureTimeout?: number } = {},
  ): Promise<Cluster> {
    const c = new Cluster(createMemoryNetwork({ seed: 1 }), options, failureTimeout)
    for (let i = 0; i < n; i++) await c.add()
    await c.settle()
    return c
  }

  async add(options: Partial<HordeOptions> = {}): Promise<TestNode> {
    const system = nact.start()
    const transport = await this.network.createTransport({
      failureTimeout: this.failureTimeout,
      requestTimeout: 2000,
    })
    const horde = await startHorde(system, {
      name: 'test',
      behaviours,
      transport,
      syncInterval: 50,
      requestTimeout: 2000,
      ...this.options,
      ...options,
    })
    const node = { horde, system, alive: true }
    this.nodes.push(node)
    return node
  }

  get live(): TestNode[] {
    return this.nodes.filter((n) => n.alive)
  }

  /** Waits until every live node sees every live node as an alive member. */
  async settle(timeout = 5000): Promise<void> {
    const ids = this.live.map((n) => n.horde.nodeId).sort()
    await waitFor(
      () =>
        this.live.every((n) => {
          const alive = n.horde
            .members()
            .filter((m) => m.status === 'alive')
            .map((m) => m.nodeId)
            .sort()
          return JSON.stringify(alive) === JSON.stringify(ids)
        }),
      timeout,
      'membership to settle',
    )
  }

  /** Kills a node abruptly: its transport stops without a graceful horde stop. */
  async crash(i: number): Promise<void> {
    const n = this.nodes[i]!
    n.alive = false
    await n.horde.transport.stop()
    nact.stop(n.system as never)
  }

  /** id → nodes running it, over live nodes (from each node's local view). */
  async placement(): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>()
    for (const n of this.live) {
      for (const c of n.horde.localChildren()) {
        out.set(c.id, [...(out.get(c.id) ?? []), n.horde.nodeId])
      }
    }
    return out
  }

  /** The node running `id` (the first, if a duplicate exists). */
  ownerOf(id: string): TestNode | undefined {
    return this.live.find((n) => n.horde.localChildren().some((c) => c.id === id))
  }

  /** Sends a message to a child through a ref on the node that runs it. */
  send(id: string, msg: unknown): boolean {
    const owner = this.ownerOf(id)
    if (owner === undefined) return false
    nact.dispatch(owner.horde.ref(id) as never, msg)
    return true
  }

  /** A counter child's current value, asked of the node that runs it. */
  async count(id: string): Promise<number> {
    const owner = this.ownerOf(id)
    if (owner === undefined) throw new Error(`${id} runs nowhere`)
    return (await nact.query(owner.horde.ref(id) as never, (() => ({ get: true })) as never, 2000)) as number
  }

  /** True when each of `ids` runs on exactly one live node and nothing else runs. */
  async exactlyOnce(ids: string[]): Promise<boolean> {
    const p = await this.placement()
    return p.size === ids.length && ids.every((id) => p.get(id)?.length === 1)
  }

  async stop(): Promise<void> {
    for (const n of this.live) {
      n.alive = false
      await n.horde.stop()
      nact.stop(n.system as never)
    }
  }
}
