import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { type Behaviour, type ChildContext, type StopReason, stopSelf } from '../src/behaviour.js'
import {
  AlreadyStartedError,
  InvalidChildSpecError,
  InvalidOptionsError,
  NodeShuttingDownError,
  NotFoundError,
  RestartIntensityError,
  StartTimeoutError,
  TimeoutError,
  UnknownBehaviourError,
} from '../src/errors.js'
import {
  type ChildFailedDetail,
  LocalSupervisor,
  type LocalSupervisorEventMap,
  type LocalSupervisorInit,
} from '../src/local/local-supervisor.js'
import { type NactRef, nact } from '../src/local/nact.js'

// ---- helpers ----

/** Polls `pred` until it holds; fails after `timeoutMs`. For conditions no event announces. */
async function waitFor(pred: () => boolean, timeoutMs = 2000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 2))
  }
}

type Detail<K extends keyof LocalSupervisorEventMap> =
  LocalSupervisorEventMap[K] extends CustomEvent<infer D> ? D : never

/** The next event of `type` (matching `pred`), or a failure after `timeoutMs`. */
function nextEvent<K extends keyof LocalSupervisorEventMap>(
  sup: LocalSupervisor,
  type: K,
  pred: (d: Detail<K>) => boolean = () => true,
  timeoutMs = 2000,
): Promise<Detail<K>> {
  return new Promise((resolve, reject) => {
    const listener = (e: LocalSupervisorEventMap[K]) => {
      const d = e.detail as Detail<K>
      if (!pred(d)) return
      clearTimeout(timer)
      sup.removeEventListener(type, listener)
      resolve(d)
    }
    const timer = setTimeout(() => {
      sup.removeEventListener(type, listener)
      reject(new Error(`no '${type}' event within ${timeoutMs} ms`))
    }, timeoutMs)
    sup.addEventListener(type, listener)
  })
}

const EVENT_TYPES = [
  'child:started',
  'child:restarted',
  'child:stopped',
  'child:failed',
  'message:dead',
] as const
type Recorded = { type: (typeof EVENT_TYPES)[number]; detail: any }

function recordEvents(sup: LocalSupervisor): Recorded[] {
  const out: Recorded[] = []
  for (const type of EVENT_TYPES) sup.addEventListener(type, (e) => out.push({ type, detail: e.detail }))
  return out
}

// ---- behaviours under test ----

interface ProbeState {
  n: number
  seen: unknown[]
  incarnation: number
}
type ProbeMsg =
  | { op: 'add'; by: number }
  | { op: 'addAsync'; by: number }
  | { op: 'get' }
  | { op: 'crash' }
  | { op: 'crashAsync' }
  | { op: 'stop' }
  | { op: 'hang' }
  | { op: 'slow'; ms: number; v: unknown }
  | { op: 'record'; v: unknown }

interface ProbeArgs {
  start?: number
  failInit?: 'sync' | 'async'
  slowInit?: number
  /** `init` never settles: always, or only after a restart. */
  hangInit?: 'always' | 'restart'
}

/** What the behaviours did, in order, across the test. */
let trace: Array<{ what: string; id: string; incarnation?: number; state?: unknown; reason?: StopReason }> =
  []
const tick = () => new Promise<void>((r) => setImmediate(r))

const probe: Behaviour<ProbeState, ProbeArgs | undefined, ProbeMsg> = {
  async init(args, ctx: ChildContext) {
    trace.push({ what: 'init', id: ctx.id, incarnation: ctx.incarnation })
    if (args?.slowInit) await new Promise((r) => setTimeout(r, args.slowInit))
    if (args?.hangInit === 'always' || (args?.hangInit === 'restart' && ctx.incarnation > 1))
      await new Promise(() => {})
    if (args?.failInit === 'sync') throw new Error('init failed')
    if (args?.failInit === 'async') {
      await tick()
      throw new Error('init failed later')
    }
    return { n: args?.start ?? 0, seen: [], incarnation: ctx.incarnation }
  },
  async handle(state, msg, ctx) {
    if (msg.op === 'slow' || msg.op === 'hang') trace.push({ what: `begin-${msg.op}`, id: ctx.id })
    switch (msg.op) {
      case 'add':
        return { ...state, n: state.n + msg.by }
      case 'addAsync':
        await tick()
        return { ...state, n: state.n + msg.by }
      case 'get':
        nact.dispatch(ctx.sender as NactRef, state)
        return state
      case 'crash':
        throw new Error('boom')
      case 'crashAsync':
        await tick()
        throw new Error('boom later')
      case 'stop':
        return stopSelf(state)
      case 'hang':
        await new Promise(() => {})
        return state
      case 'slow':
        await new Promise((r) => setTimeout(r, msg.ms))
        return { ...state, seen: [...state.seen, msg.v] }
      case 'record':
        return { ...state, seen: [...state.seen, msg.v] }
    }
  },
  terminate(state, reason) {
    trace.push({ what: 'terminate', id: 'probe', state, reason })
  },
}

/** A purely synchronous handler, to check that plain (non-async) behaviours work. */
const syncCounter: Behaviour<number, { start: number }, { add: number } | { get: true }> = {
  init: (args) => args.start,
  handle: (state, msg, ctx) => {
    if ('get' in msg) {
      nact.dispatch(ctx.sender as NactRef, state)
      return state
    }
    return state + msg.add
  },
}

const hangingTerminate: Behaviour = {
  ...probe,
  terminate: () => new Promise(() => {}),
}
const throwingTerminate: Behaviour = {
  ...probe,
  terminate: () => {
    throw new Error('terminate is broken')
  },
}
const rejectingTerminate: Behaviour = {
  ...probe,
  terminate: async () => {
    await tick()
    throw new Error('terminate is broken later')
  },
}
const movable: Behaviour<ProbeState, ProbeArgs | undefined, ProbeMsg> = {
  ...probe,
  handoff: {
    save: (state) => ({ n: state.n, seen: state.seen }),
    restore: (saved, _args) => {
      trace.push({ what: 'restore', id: 'movable', state: saved })
      const s = saved as { n: number; seen: unknown[] }
      return { n: s.n, seen: s.seen, incarnation: -1 }
    },
  },
}

const hangingRestore: Behaviour<ProbeState, ProbeArgs | undefined, ProbeMsg> = {
  ...probe,
  handoff: { save: (state) => state, restore: () => new Promise<ProbeState>(() => {}) },
}

const behaviours = {
  probe,
  syncCounter,
  hangingTerminate,
  throwingTerminate,
  rejectingTerminate,
  movable,
  hangingRestore,
}

// ---- fixture ----

let system: NactRef
let clock: { t: number; now(): number }
let sups: LocalSupervisor[]

function supervisor(init: Partial<LocalSupervisorInit> = {}): LocalSupervisor {
  const sup = new LocalSupervisor({ system, behaviours, node: 'node-a', clock, ...init })
  sups.push(sup)
  return sup
}

const get = async (sup: LocalSupervisor, id: string) =>
  (await sup.query(id, { op: 'get' }, 1000)) as ProbeState

beforeEach(() => {
  trace = []
  system = nact.start()
  clock = {
    t: 1_000_000,
    now() {
      return this.t
    },
  }
  sups = []
})

afterEach(async () => {
  await Promise.all(sups.map((s) => s.stopAll()))
  nact.stop(system)
})

// ---- tests ----

describe('LocalSupervisor: starting', () => {
  it('starts a child as a nact actor, runs init with its context and reports it', async () => {
    const sup = supervisor()
    const started = nextEvent(sup, 'child:started')
    const { id, incarnation } = await sup.start({ id: 'user/42 ü', behaviour: 'probe', args: { start: 5 } })
    expect(id).toBe('user/42 ü')
    expect(await started).toEqual({ id, incarnation })
    expect(trace).toEqual([{ what: 'init', id, incarnation }])
    expect(sup.count()).toBe(1)
    expect(sup.children()).toEqual([
      { id, behaviour: 'probe', restart: 'permanent', status: 'running', incarnation },
    ])
    expect(sup.ref(id)).toBeDefined()
    expect((await get(sup, id)).n).toBe(5)
  })

  it('handles sync and async handlers, in order, via send, query and the plain nact ref', async () => {
    const sup = supervisor()
    await sup.start({ id: 'a', behaviour: 'probe' })
    await sup.start({ id: 's', behaviour: 'syncCounter', args: { start: 10 } })
    for (let i = 0; i < 50; i++) sup.send('a', { op: i % 2 ? 'add' : 'addAsync', by: 1 })
    nact.dispatch(sup.ref('a') as NactRef, { op: 'add', by: 100 })
    expect((await get(sup, 'a')).n).toBe(150)
    sup.send('s', { add: 2 })
    nact.dispatch(sup.ref('s') as NactRef, { add: 3 })
    expect(await sup.query('s', { get: true }, 1000)).toBe(15)
    expect(await nact.query(sup.ref('s') as NactRef, { get: true }, 1000)).toBe(15)
  })

  it('refuses a duplicate id with AlreadyStartedError naming the node, even while the first init runs', async () => {
    const sup = supervisor()
    const first = sup.start({ id: 'dup', behaviour: 'probe', args: { slowInit: 20 } })
    const err = await sup.start({ id: 'dup', behaviour: 'probe' }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(AlreadyStartedError)
    expect(err).toMatchObject({ name: 'AlreadyStartedError', id: 'dup', node: 'node-a' })
    await first
    await expect(sup.start({ id: 'dup', behaviour: 'probe' })).rejects.toBeInstanceOf(AlreadyStartedError)
    expect(sup.count()).toBe(1)
  })

  it('refuses an unknown behaviour (also inherited names) and invalid specs', async () => {
    const sup = supervisor()
    const err = await sup.start({ id: 'x', behaviour: 'nope' }).catch((e: unknown) => e)
    expect(err).toMatchObject({ name: 'UnknownBehaviourError', behaviour: 'nope' })
    await expect(sup.start({ id: 'x', behaviour: 'toString' })).rejects.toBeInstanceOf(UnknownBehaviourError)
    await expect(sup.start({ id: '', behaviour: 'probe' })).rejects.toBeInstanceOf(InvalidChildSpecError)
    await expect(sup.start({ id: '\uD800', behaviour: 'probe' })).rejects.toBeInstanceOf(
      InvalidChildSpecError,
    )
    await expect(
      sup.start({ id: 'x', behaviour: 'probe', restart: 'sometimes' as never }),
    ).rejects.toBeInstanceOf(InvalidChildSpecError)
    await expect(sup.start({ id: 'x', behaviour: 'probe', shutdown: -1 })).rejects.toBeInstanceOf(
      InvalidChildSpecError,
    )
    expect(sup.count()).toBe(0)
  })

  it('validates its options and behaviours with InvalidOptionsError', () => {
    expect(() => supervisor({ behaviours: { bad: { init: () => 0 } as never } })).toThrow(InvalidOptionsError)
    expect(() =>
      supervisor({ behaviours: { bad: { ...probe, handoff: { save: () => 0 } } as never } }),
    ).toThrow(/handoff/)
    expect(() => supervisor({ node: '' })).toThrow(InvalidOptionsError)
    expect(() => supervisor({ maxRestarts: -1 })).toThrow(InvalidOptionsError)
    expect(() => supervisor({ maxSeconds: 0 })).toThrow(InvalidOptionsError)
    for (const startTimeout of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, 86_400_001, '100' as never]) {
      expect(() => supervisor({ startTimeout }), String(startTimeout)).toThrow(/startTimeout/)
    }
    expect(() => supervisor({ startTimeout: 1 })).not.toThrow()
    expect(() => supervisor({ system: { system: { name: 'no-such-system' } } })).toThrow(InvalidOptionsError)
  })

  it.each(['sync', 'async'] as const)(
    'rejects the start with the error of an init that throws (%s), leaving nothing',
    async (how) => {
      const sup = supervisor()
      const events = recordEvents(sup)
      const started = sup.start({ id: 'bad', behaviour: 'probe', args: { failInit: how } })
      sup.send('bad', { op: 'record', v: 1 })
      await expect(started).rejects.toThrow(/init failed/)
      expect(sup.has('bad')).toBe(false)
      expect(sup.count()).toBe(0)
      expect(sup.ref('bad')).toBeUndefined()
      expect(trace.filter((t) => t.what === 'init')).toHaveLength(1) // not restarted
      expect(events.map((e) => [e.type, e.detail.reason])).toEqual([['message:dead', 'start_failed']])
      await sup.start({ id: 'bad', behaviour: 'probe' }) // the id is free again
      expect(sup.count()).toBe(1)
    },
  )
})

describe('LocalSupervisor: an init that never settles', () => {
  it.each([
    ['init', { id: 'h', behaviour: 'probe', args: { hangInit: 'always' } }, {}],
    ['handoff.restore', { id: 'h', behaviour: 'hangingRestore' }, { restoreState: { n: 1 } }],
  ] as const)('fails the first start after startTimeout (%s), leaving nothing', async (_, spec, opts) => {
    const sup = supervisor({ startTimeout: 80 })
    const events = recordEvents(sup)
    const t0 = Date.now()
    const started = sup.start(spec, opts).catch((e: unknown) => e)
    expect(sup.has('h')).toBe(true) // known (and its id taken) while init runs
    await expect(sup.start(spec)).rejects.toBeInstanceOf(AlreadyStartedError)
    sup.send('h', { op: 'record', v: 1 })
    const err = await started
    expect(Date.now() - t0).toBeGreaterThanOrEqual(75)
    expect(err).toBeInstanceOf(StartTimeoutError)
    expect(err).toBeInstanceOf(TimeoutError)
    expect(err).toMatchObject({ name: 'StartTimeoutError', id: 'h', timeout: 80 })
    expect((err as Error).message).toMatch(/startTimeout/)
    expect(sup.has('h')).toBe(false)
    expect(sup.count()).toBe(0)
    expect(events.map((e) => [e.type, e.detail.reason])).toEqual([['message:dead', 'start_failed']])
    await sup.start({ id: 'h', behaviour: 'probe' }) // the id is free again
    expect((await get(sup, 'h')).n).toBe(0)
  })

  it('after a restart counts as a crash: the restart intensity applies', async () => {
    const sup = supervisor({ startTimeout: 50, maxRestarts: 1 })
    const events = recordEvents(sup)
    await sup.start({ id: 'r', behaviour: 'probe', args: { hangInit: 'restart' } })
    const failed = nextEvent(sup, 'child:failed')
    sup.send('r', { op: 'crash' })
    const d = await failed
    // the crash restarted it once; its second init hung: a crash beyond maxRestarts 1
    expect(d).toMatchObject({ id: 'r', incarnation: 2, reason: 'crash' })
    expect(d.error).toBeInstanceOf(RestartIntensityError)
    expect(d.error.cause).toBeInstanceOf(StartTimeoutError)
    expect(events.map((e) => e.type)).toEqual([
      'child:started',
      'message:dead',
      'child:restarted',
      'child:failed',
    ])
    expect(sup.has('r')).toBe(false)
  })

  it('a timed-out init that settles later changes nothing', async () => {
    const sup = supervisor({ startTimeout: 30 })
    const events = recordEvents(sup)
    await expect(
      sup.start({ id: 'late', behaviour: 'probe', args: { slowInit: 80 } }),
    ).rejects.toBeInstanceOf(StartTimeoutError)
    await new Promise((r) => setTimeout(r, 100)) // the init resolves meanwhile
    expect(sup.has('late')).toBe(false)
    expect(events).toEqual([])
  })

  it('terminate during a pending first init stops it: the start rejects and the child is gone', async () => {
    const sup = supervisor({ startTimeout: 100 })
    const started = sup
      .start({
        id: 't',
        behaviour: 'probe',
        args: { hangInit: 'always' },
        shutdown: Number.POSITIVE_INFINITY,
      })
      .catch((e: unknown) => e)
    await tick()
    const t0 = Date.now()
    await sup.terminate('t')
    expect(Date.now() - t0).toBeLessThan(1100)
    expect(await started).toBeInstanceOf(StartTimeoutError)
    expect(sup.has('t')).toBe(false)
    await expect(sup.terminate('t')).rejects.toBeInstanceOf(NotFoundError)
  })

  it('stopAll resolves within its bound whatever the children do', async () => {
    const sup = supervisor({ startTimeout: 150 })
    const events = recordEvents(sup)
    const forever = Number.POSITIVE_INFINITY
    await sup.start({ id: 'hang-term', behaviour: 'hangingTerminate', shutdown: 100 })
    await sup.start({ id: 'throw-term', behaviour: 'throwingTerminate', shutdown: forever })
    await sup.start({ id: 'reject-term', behaviour: 'rejectingTerminate', shutdown: forever })
    await sup.start({ id: 'hang-msg', behaviour: 'probe', shutdown: 100 })
    sup.send('hang-msg', { op: 'hang' })
    await sup.start({
      id: 'hang-restart',
      behaviour: 'probe',
      args: { hangInit: 'restart' },
      shutdown: forever,
    })
    const restarted = nextEvent(sup, 'child:restarted')
    sup.send('hang-restart', { op: 'crash' })
    await restarted // its second init hangs
    const pending = sup
      .start({ id: 'hang-init', behaviour: 'probe', args: { hangInit: 'always' }, shutdown: forever })
      .catch((e: unknown) => e)
    await waitFor(() => trace.some((t) => t.what === 'begin-hang'), 2000, 'the hanging message')
    const t0 = Date.now()
    await sup.stopAll()
    // shutdown 100 + 1 s for the kill; the pending inits end at startTimeout (150)
    expect(Date.now() - t0).toBeLessThan(1100)
    expect(await pending).toBeInstanceOf(StartTimeoutError)
    expect(sup.count()).toBe(0)
    expect(sup.has('hang-init')).toBe(false)
    expect(
      events
        .filter((e) => e.type === 'child:stopped')
        .map((e) => [e.detail.id, e.detail.reason])
        .sort(),
    ).toEqual([
      ['hang-msg', 'killed'],
      ['hang-restart', 'crash'],
      ['hang-term', 'killed'],
      ['reject-term', 'shutdown'],
      ['throw-term', 'shutdown'],
    ])
    expect(events.some((e) => e.type === 'child:failed')).toBe(false) // stopped, not given up
  })
})

describe('LocalSupervisor: incarnation numbers', () => {
  it('count the runs of each child separately; actor names are never reused', async () => {
    const sup = supervisor({ maxRestarts: 10 })
    const started: unknown[] = []
    sup.addEventListener('child:started', (e) => started.push(e.detail))
    for (const id of ['a', 'b', 'c'])
      expect(await sup.start({ id, behaviour: 'probe' })).toEqual({ id, incarnation: 1 })
    expect(started).toEqual(['a', 'b', 'c'].map((id) => ({ id, incarnation: 1 })))
    expect(trace.map((t) => t.incarnation)).toEqual([1, 1, 1])

    const names = new Set<string | undefined>(['a', 'b', 'c'].map((id) => (sup.ref(id) as NactRef).name))
    for (const expected of [2, 3]) {
      const restarted = nextEvent(sup, 'child:restarted')
      sup.send('b', { op: 'crash' })
      expect(await restarted).toMatchObject({ id: 'b', incarnation: expected })
      expect((await get(sup, 'b')).incarnation).toBe(expected) // ctx.incarnation in init
      names.add((sup.ref('b') as NactRef).name)
    }
    expect((await get(sup, 'a')).incarnation).toBe(1)
    expect((await get(sup, 'c')).incarnation).toBe(1)
    expect(sup.children().map((c) => [c.id, c.incarnation])).toEqual([
      ['a', 1],
      ['b', 3],
      ['c', 1],
    ])

    // A new start of an id counts from 1 again, under a name no older ref points to.
    const stopped = nextEvent(sup, 'child:stopped')
    await sup.terminate('b')
    expect(await stopped).toMatchObject({ id: 'b', incarnation: 3 })
    expect(await sup.start({ id: 'b', behaviour: 'probe' })).toEqual({ id: 'b', incarnation: 1 })
    names.add((sup.ref('b') as NactRef).name)
    expect(names.size).toBe(6)
  })
})

describe('LocalSupervisor: crashes and restarts', () => {
  it.each(['crash', 'crashAsync'] as const)(
    'restarts a crashed child (%s) with a fresh init and a new incarnation',
    async (op) => {
      const sup = supervisor()
      const { incarnation } = await sup.start({ id: 'c', behaviour: 'probe', args: { start: 1 } })
      sup.send('c', { op: 'add', by: 41 })
      expect((await get(sup, 'c')).n).toBe(42)
      const restarted = nextEvent(sup, 'child:restarted')
      sup.send('c', { op })
      const d = await restarted
      expect(d).toMatchObject({ id: 'c', reason: 'crash' })
      expect((d.error as Error).message).toMatch(/boom/)
      expect(d.incarnation).toBeGreaterThan(incarnation)
      const state = await get(sup, 'c')
      expect(state).toEqual({ n: 1, seen: [], incarnation: d.incarnation }) // fresh init(args)
      expect(sup.children()).toMatchObject([{ id: 'c', status: 'running', incarnation: d.incarnation }])
      expect(trace.filter((t) => t.what === 'init').map((t) => t.incarnation)).toEqual([
        incarnation,
        d.incarnation,
      ])
    },
  )

  const cases: Array<
    [restart: 'permanent' | 'transient' | 'temporary', op: 'crash' | 'stop', outcome: string]
  > = [
    ['permanent', 'crash', 'restarted'],
    ['permanent', 'stop', 'restarted'],
    ['transient', 'crash', 'restarted'],
    ['transient', 'stop', 'stopped'],
    ['temporary', 'crash', 'stopped'],
    ['temporary', 'stop', 'stopped'],
  ]
  it.each(cases)('%s child after %s is %s', async (restart, op, outcome) => {
    const sup = supervisor()
    const events = recordEvents(sup)
    await sup.start({ id: 'k', behaviour: 'probe', restart })
    const reason = op === 'crash' ? 'crash' : 'normal'
    const done = nextEvent(sup, outcome === 'restarted' ? 'child:restarted' : 'child:stopped')
    sup.send('k', { op })
    expect(await done).toMatchObject({ id: 'k', reason })
    if (outcome === 'restarted') {
      expect((await get(sup, 'k')).n).toBe(0)
      expect(sup.count()).toBe(1)
    } else {
      expect(sup.has('k')).toBe(false)
      expect(sup.count()).toBe(0)
      expect(sup.send('k', { op: 'add', by: 1 })).toBe(false)
    }
    // exactly one exit event; a normal stop runs terminate, a crash does not
    expect(events.filter((e) => e.type !== 'message:dead' && e.type !== 'child:started')).toHaveLength(1)
    expect(trace.filter((t) => t.what === 'terminate').map((t) => t.reason)).toEqual(
      op === 'stop' ? ['normal'] : [],
    )
  })

  it('gives up only the child that exceeds the restart intensity; its siblings keep running with their state', async () => {
    const sup = supervisor({ maxRestarts: 3, maxSeconds: 5 })
    const events = recordEvents(sup)
    await sup.start({ id: 'sibling', behaviour: 'probe' })
    await sup.start({ id: 'other', behaviour: 'syncCounter', args: { start: 7 } })
    sup.send('sibling', { op: 'add', by: 3 })
    await sup.start({ id: 'flaky', behaviour: 'probe' })
    for (let i = 0; i < 3; i++) {
      const restarted = nextEvent(sup, 'child:restarted')
      sup.send('flaky', { op: 'crash' })
      await restarted
      clock.t += 1000 // all within the 5 s window
    }
    const failed = nextEvent(sup, 'child:failed')
    sup.send('flaky', { op: 'crash' })
    const d: ChildFailedDetail = await failed
    expect(d).toMatchObject({ id: 'flaky', reason: 'crash' })
    expect(d.error).toBeInstanceOf(RestartIntensityError)
    expect(d.error).toMatchObject({
      name: 'RestartIntensityError',
      id: 'flaky',
      maxRestarts: 3,
      maxSeconds: 5,
    })
    expect((d.error.cause as Error).message).toBe('boom')
    expect(sup.has('flaky')).toBe(false)
    expect(
      sup
        .children()
        .map((c) => c.id)
        .sort(),
    ).toEqual(['other', 'sibling'])
    expect((await get(sup, 'sibling')).n).toBe(3)
    expect(await sup.query('other', { get: true }, 1000)).toBe(7)
    expect(events.filter((e) => e.type === 'child:stopped')).toEqual([])
  })

  it('counts restarts only within the window of maxSeconds (injected clock)', async () => {
    const sup = supervisor({ maxRestarts: 2, maxSeconds: 5 })
    await sup.start({ id: 'f', behaviour: 'probe' })
    for (let i = 0; i < 10; i++) {
      const restarted = nextEvent(sup, 'child:restarted')
      sup.send('f', { op: 'crash' })
      await restarted
      clock.t += 2600 // two restarts never fall within 5 s of a third
    }
    expect(sup.has('f')).toBe(true)
    clock.t += 5000
    const failed = nextEvent(sup, 'child:failed')
    for (let i = 0; i < 2; i++) {
      const restarted = nextEvent(sup, 'child:restarted')
      sup.send('f', { op: 'crash' })
      await restarted
    }
    sup.send('f', { op: 'crash' })
    await failed
  })

  it('maxRestarts 0 gives a child up at its first crash', async () => {
    const sup = supervisor({ maxRestarts: 0 })
    await sup.start({ id: 'z', behaviour: 'probe' })
    const failed = nextEvent(sup, 'child:failed')
    sup.send('z', { op: 'crash' })
    await failed
    expect(sup.count()).toBe(0)
  })

  it('a crash in init after a restart counts as a crash towards the intensity', async () => {
    let inits = 0
    const failsAfterFirst: Behaviour = {
      init: () => {
        if (inits++ > 0) throw new Error('cannot come back')
        return 0
      },
      handle: () => {
        throw new Error('boom')
      },
    }
    const sup = supervisor({ behaviours: { failsAfterFirst }, maxRestarts: 2 })
    const events = recordEvents(sup)
    const failed = nextEvent(sup, 'child:failed')
    await sup.start({ id: 'i', behaviour: 'failsAfterFirst' })
    sup.send('i', 'go')
    expect((await failed).error.cause).toMatchObject({ message: 'cannot come back' })
    expect(inits).toBe(3)
    expect(events.map((e) => e.type)).toEqual([
      'child:started',
      'message:dead',
      'child:restarted',
      'child:restarted',
      'child:failed',
    ])
  })

  it('an actor stopped behind the supervisor’s back (nact.stop) exits as killed and is restarted', async () => {
    const sup = supervisor()
    await sup.start({ id: 'e', behaviour: 'probe' })
    const restarted = nextEvent(sup, 'child:restarted')
    nact.stop(sup.ref('e') as NactRef)
    expect(await restarted).toMatchObject({ id: 'e', reason: 'killed' })
    expect((await get(sup, 'e')).n).toBe(0)
  })
})

describe('LocalSupervisor: messages across restarts', () => {
  it('delivers messages queued behind a crash to the next incarnation, in order', async () => {
    const sup = supervisor()
    await sup.start({ id: 'm', behaviour: 'probe' })
    const restarted = nextEvent(sup, 'child:restarted')
    sup.send('m', { op: 'crashAsync' })
    for (let i = 0; i < 100; i++) sup.send('m', { op: 'record', v: i })
    await restarted
    await waitFor(() => sup.children()[0]?.status === 'running', 2000, 'the restart')
    expect((await get(sup, 'm')).seen).toEqual([...Array(100).keys()])
  })

  it('buffers messages sent while the child is restarting, bounded, and delivers them in order', async () => {
    const sup = supervisor({ maxBuffer: 5 })
    await sup.start({ id: 'b', behaviour: 'probe' })
    const dead: unknown[] = []
    const accepted: boolean[] = []
    sup.addEventListener('message:dead', (e) => {
      if (e.detail.reason === 'buffer_full') dead.push(e.detail.message)
      if (e.detail.reason !== 'crashed') return
      // Runs inside the crash window: the old incarnation is gone, the new one not yet spawned.
      expect(sup.ref('b')).toBeUndefined()
      expect(sup.children()[0]?.status).toBe('restarting')
      for (let i = 0; i < 8; i++) accepted.push(sup.send('b', { op: 'record', v: i }))
    })
    const restarted = nextEvent(sup, 'child:restarted')
    sup.send('b', { op: 'crash' })
    await restarted
    expect(accepted).toEqual([true, true, true, true, true, false, false, false])
    expect(dead).toEqual([5, 6, 7].map((v) => ({ op: 'record', v })))
    expect((await get(sup, 'b')).seen).toEqual([0, 1, 2, 3, 4])
  })

  it('a query sent while the child restarts waits for the new incarnation', async () => {
    const sup = supervisor()
    await sup.start({ id: 'q', behaviour: 'probe', args: { start: 9, slowInit: 0 } })
    let answer: Promise<unknown> | undefined
    sup.addEventListener('message:dead', (e) => {
      if (e.detail.reason === 'crashed') answer = sup.query('q', { op: 'get' }, 1000)
    })
    sup.send('q', { op: 'crash' })
    await waitFor(() => answer !== undefined, 2000, 'the crash')
    expect(await answer).toMatchObject({ n: 9 })
  })

  it('a stale ref of an old incarnation cannot reach the new one', async () => {
    const sup = supervisor()
    await sup.start({ id: 's', behaviour: 'probe' })
    const old = sup.ref('s') as NactRef
    const restarted = nextEvent(sup, 'child:restarted')
    sup.send('s', { op: 'crash' })
    await restarted
    nact.dispatch(old, { op: 'add', by: 1000 })
    await expect(nact.query(old, { op: 'get' }, 200)).rejects.toThrow(/stopped or never existed/)
    sup.send('s', { op: 'add', by: 1 })
    expect((await get(sup, 's')).n).toBe(1)
    expect(sup.ref('s')).not.toBe(old)

    // also across terminate and a new start of the same id
    const second = sup.ref('s') as NactRef
    await sup.terminate('s')
    await sup.start({ id: 's', behaviour: 'probe' })
    nact.dispatch(second, { op: 'add', by: 1000 })
    nact.dispatch(old, { op: 'add', by: 1000 })
    expect((await get(sup, 's')).n).toBe(0)
  })

  it('reports sends to unknown ids and query failures with typed errors', async () => {
    const sup = supervisor()
    const dead = nextEvent(sup, 'message:dead')
    expect(sup.send('ghost', 'hello')).toBe(false)
    expect(await dead).toEqual({ id: 'ghost', reason: 'not_found', message: 'hello' })
    await expect(sup.query('ghost', { op: 'get' }, 100)).rejects.toBeInstanceOf(NotFoundError)
    await sup.start({ id: 'mute', behaviour: 'probe' })
    const err = await sup.query('mute', { op: 'record', v: 0 }, 30).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(TimeoutError)
    await expect(sup.terminate('ghost')).rejects.toBeInstanceOf(NotFoundError)
    await expect(sup.drain('ghost')).rejects.toMatchObject({ name: 'NotFoundError', id: 'ghost' })
  })
})

describe('LocalSupervisor: terminate, drain, stopAll', () => {
  it('terminate runs terminate(state, reason) after the in-flight message and never restarts', async () => {
    const sup = supervisor()
    const events = recordEvents(sup)
    await sup.start({ id: 't', behaviour: 'probe', restart: 'permanent' })
    sup.send('t', { op: 'slow', ms: 30, v: 'in-flight' })
    await waitFor(() => trace.some((t) => t.what === 'begin-slow'), 2000, 'the message to begin')
    await sup.terminate('t')
    expect(trace.filter((t) => t.what === 'terminate')).toEqual([
      {
        what: 'terminate',
        id: 'probe',
        reason: 'shutdown',
        state: expect.objectContaining({ seen: ['in-flight'] }),
      },
    ])
    expect(sup.has('t')).toBe(false)
    expect(events.map((e) => [e.type, e.detail.reason])).toEqual([
      ['child:started', undefined],
      ['child:stopped', 'shutdown'],
    ])
  })

  it('kills a child whose terminate hangs, after its shutdown ms', async () => {
    const sup = supervisor()
    await sup.start({ id: 'h', behaviour: 'hangingTerminate', shutdown: 50 })
    const stopped = nextEvent(sup, 'child:stopped')
    const t0 = Date.now()
    await sup.terminate('h')
    const took = Date.now() - t0
    expect(await stopped).toMatchObject({ id: 'h', reason: 'killed' })
    expect(took).toBeGreaterThanOrEqual(45)
    expect(took).toBeLessThan(1000)
    expect(sup.count()).toBe(0)
  })

  it('kills a child whose in-flight message hangs, and drops what was queued behind it', async () => {
    const sup = supervisor()
    const events = recordEvents(sup)
    await sup.start({ id: 'h', behaviour: 'probe', shutdown: 40 })
    sup.send('h', { op: 'hang' })
    sup.send('h', { op: 'record', v: 'late' })
    await waitFor(() => trace.some((t) => t.what === 'begin-hang'), 2000, 'the message to begin')
    await sup.terminate('h')
    expect(events.filter((e) => e.type === 'child:stopped').map((e) => e.detail.reason)).toEqual(['killed'])
    expect(events.filter((e) => e.type === 'message:dead').map((e) => e.detail)).toEqual([
      { id: 'h', reason: 'stopped', message: { op: 'record', v: 'late' } },
    ])
    expect(trace.some((t) => t.what === 'terminate')).toBe(false)
  })

  it('a killed incarnation whose handler finishes later cannot affect a new child of the same id', async () => {
    let release: ((outcome: 'stop' | 'throw') => void) | undefined
    const gated: Behaviour = {
      init: (_args, ctx) => ({ n: 0, incarnation: ctx.incarnation }),
      handle: async (state, msg, ctx) => {
        if (msg === 'get') {
          nact.dispatch(ctx.sender as NactRef, state)
          return state
        }
        if (msg === 'add') return { ...state, n: state.n + 1 }
        const outcome = await new Promise<'stop' | 'throw'>((r) => {
          release = r
        })
        if (outcome === 'throw') throw new Error('too late')
        return stopSelf({ n: -1 })
      },
    }
    const sup = supervisor({ behaviours: { gated } })
    const events = recordEvents(sup)
    for (const outcome of ['stop', 'throw'] as const) {
      await sup.start({ id: 'g', behaviour: 'gated', shutdown: 20 })
      release = undefined
      sup.send('g', 'wait')
      await waitFor(() => release !== undefined, 2000, 'the gated message to begin')
      await sup.terminate('g') // killed: the gated message is still in flight
      await sup.start({ id: 'g', behaviour: 'gated' })
      sup.send('g', 'add')
      release!(outcome)
      await tick()
      sup.send('g', 'add')
      expect(await sup.query('g', 'get', 1000)).toMatchObject({ n: 2 })
      await sup.terminate('g')
    }
    expect(events.filter((e) => e.type !== 'message:dead').map((e) => [e.type, e.detail.reason])).toEqual(
      Array(2)
        .fill([
          ['child:started', undefined],
          ['child:stopped', 'killed'],
          ['child:started', undefined],
          ['child:stopped', 'shutdown'],
        ])
        .flat(),
    )
  })

  it('terminate during the restart window stops the child for good', async () => {
    const sup = supervisor()
    await sup.start({ id: 'r', behaviour: 'probe', restart: 'permanent' })
    let terminated: Promise<void> | undefined
    sup.addEventListener('message:dead', (e) => {
      if (e.detail.reason === 'crashed') terminated = sup.terminate('r')
    })
    const stopped = nextEvent(sup, 'child:stopped')
    sup.send('r', { op: 'crash' })
    expect(await stopped).toMatchObject({ id: 'r', reason: 'crash' })
    await terminated
    expect(sup.has('r')).toBe(false)
  })

  it('shutdown 0 kills at once without running terminate', async () => {
    const sup = supervisor()
    await sup.start({ id: 'b', behaviour: 'probe', shutdown: 0 })
    const stopped = nextEvent(sup, 'child:stopped')
    await sup.terminate('b')
    expect((await stopped).reason).toBe('killed')
    expect(trace.some((t) => t.what === 'terminate')).toBe(false)
  })

  it.each(['throwingTerminate', 'rejectingTerminate'])('%s does not crash anything', async (behaviour) => {
    const sup = supervisor()
    await sup.start({ id: 'x', behaviour })
    await sup.start({ id: 'y', behaviour: 'probe' })
    const stopped = nextEvent(sup, 'child:stopped')
    await sup.terminate('x')
    expect(await stopped).toMatchObject({ id: 'x', reason: 'shutdown' })
    sup.send('y', { op: 'add', by: 2 })
    expect((await get(sup, 'y')).n).toBe(2)
  })

  it('drain returns the saved handoff state and pending messages; a new start restores it', async () => {
    const a = supervisor({ node: 'node-a' })
    const b = supervisor({ node: 'node-b' })
    const events = recordEvents(a)
    await a.start({ id: 'mv', behaviour: 'movable', args: { start: 0 } })
    a.send('mv', { op: 'add', by: 5 })
    a.send('mv', { op: 'slow', ms: 20, v: 'x' })
    a.send('mv', { op: 'record', v: 'pending-1' })
    a.send('mv', { op: 'record', v: 'pending-2' })
    await waitFor(() => trace.some((t) => t.what === 'begin-slow'), 2000, 'the message to begin')
    const drained = a.drain('mv')
    a.send('mv', { op: 'record', v: 'pending-3' })
    const result = await drained
    expect(result.reason).toBe('handoff')
    expect(result.saved).toEqual({ n: 5, seen: ['x'] })
    expect(result.pending.map((e) => e.message)).toEqual(
      ['pending-1', 'pending-2', 'pending-3'].map((v) => ({ op: 'record', v })),
    )
    expect(a.has('mv')).toBe(false)
    expect(events.map((e) => [e.type, e.detail.reason])).toEqual([
      ['child:started', undefined],
      ['child:stopped', 'handoff'],
    ])
    expect(trace.filter((t) => t.what === 'terminate').map((t) => t.reason)).toEqual(['handoff'])

    await b.start({ id: 'mv', behaviour: 'movable', args: { start: 0 } }, { restoreState: result.saved })
    for (const e of result.pending) b.send('mv', e.message, e.sender)
    expect(await get(b, 'mv')).toEqual({
      n: 5,
      seen: ['x', 'pending-1', 'pending-2', 'pending-3'],
      incarnation: -1,
    })
    expect(trace.filter((t) => t.what === 'init')).toHaveLength(1)

    // restarts after a restore run a fresh init, not restore
    const restarted = nextEvent(b, 'child:restarted')
    b.send('mv', { op: 'crash' })
    const d = await restarted
    expect(await get(b, 'mv')).toEqual({ n: 0, seen: [], incarnation: d.incarnation })
  })

  it('drain of a behaviour without handoff returns no saved state', async () => {
    const sup = supervisor()
    await sup.start({ id: 'p', behaviour: 'probe' })
    const result = await sup.drain('p')
    expect(result).toEqual({ reason: 'handoff', pending: [] })
  })

  it('stopAll terminates every child in parallel, then the parent actor; later starts are refused', async () => {
    const slowStop: Behaviour = {
      init: () => 0,
      handle: (s) => s,
      terminate: () => new Promise((r) => setTimeout(r, 60)),
    }
    const sup = supervisor({ behaviours: { slowStop, probe } })
    const events = recordEvents(sup)
    for (let i = 0; i < 5; i++) await sup.start({ id: `s${i}`, behaviour: 'slowStop' })
    // a start whose init has not run yet completes, then the child is stopped like the others
    const pendingStart = sup.start({ id: 'pending-init', behaviour: 'probe' })
    const t0 = Date.now()
    await Promise.all([sup.stopAll(), sup.stopAll()])
    expect(Date.now() - t0).toBeLessThan(250)
    expect(await pendingStart).toMatchObject({ id: 'pending-init' })
    expect(sup.count()).toBe(0)
    expect(events.filter((e) => e.type === 'child:stopped')).toHaveLength(6)
    expect(trace.filter((t) => t.what === 'terminate')).toHaveLength(1)
    expect(events.some((e) => e.type === 'child:restarted')).toBe(false)
    await expect(sup.start({ id: 'late', behaviour: 'probe' })).rejects.toBeInstanceOf(NodeShuttingDownError)
  })

  it('every exit emits exactly one event, through a mix of crashes, self-stops and terminates', async () => {
    const sup = supervisor({ maxRestarts: 100 })
    const events = recordEvents(sup)
    const ids = ['a', 'b', 'c', 'd']
    for (const id of ids) await sup.start({ id, behaviour: 'probe', restart: 'permanent' })
    let exits = 0
    for (let round = 0; round < 5; round++) {
      for (const id of ids) {
        const exited = nextEvent(sup, 'child:restarted', (d) => d.id === id)
        sup.send(id, round % 2 ? { op: 'crashAsync' } : { op: 'stop' })
        await exited
        exits++
      }
    }
    await sup.stopAll()
    exits += ids.length
    const exitEvents = events.filter((e) =>
      ['child:restarted', 'child:stopped', 'child:failed'].includes(e.type),
    )
    expect(exitEvents).toHaveLength(exits)
    expect(events.filter((e) => e.type === 'child:started')).toHaveLength(ids.length)
  })
})
