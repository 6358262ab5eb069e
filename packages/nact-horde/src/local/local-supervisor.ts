/**
 * The local supervision layer: runs children as nact actors on one node's nact system and
 * reports their lifecycle. It knows nothing of the network or the CRDT; the distributed
 * supervisor decides placement and drives this layer.
 *
 * nact 7.6.2 has no monitors, does not cascade stops, and crashes the process when `onCrash` or
 * `afterStop` throw, so this layer owns the lifecycle: every child is spawned under one parent
 * actor per supervisor, its `onCrash` only records the crash and answers `stop` (it never
 * throws), its `afterStop` tells the supervisor (once, although nact may call it twice), and the
 * supervisor decides restarts itself. Each (re)start's actor name carries a serial number unique
 * on this node, so a stale ref of an older incarnation reaches nothing; the incarnation number
 * behaviours see counts the runs of one child (1, then 2 after a restart, …).
 *
 * Nothing here waits for a behaviour without a bound: an `init` (or `handoff.restore`) that has
 * not settled after `startTimeout` ms is a crash, and a graceful stop is cut off after the spec's
 * `shutdown` ms.
 */
import { randomUUID } from 'node:crypto'
import createDebug from 'debug'
import {
  type Behaviour,
  type ChildContext,
  type ChildSpec,
  isStopMarker,
  type RestartType,
  type StopReason,
  type TerminateReason,
  validateBehaviours,
  validateChildSpec,
} from '../behaviour.js'
import {
  AlreadyStartedError,
  HordeError,
  InvalidOptionsError,
  NodeShuttingDownError,
  NotFoundError,
  RestartIntensityError,
  StartTimeoutError,
  TimeoutError,
  UnknownBehaviourError,
} from '../errors.js'
import { TypedEventTarget } from '../typed-event-target.js'
import { decodeChildName, encodeChildName, encodeParentName } from './actor-name.js'
import {
  type NactContext,
  type NactContextWithMailbox,
  type NactEnvelope,
  type NactRef,
  type NactSupervisionContext,
  nact,
} from './nact.js'

const log = createDebug('horde:local')
const logError = createDebug('horde:local:error')

/** A source of time in ms; injected so tests can simulate the restart-intensity window. */
export interface Clock {
  now(): number
}

export const DEFAULT_MAX_RESTARTS = 3
export const DEFAULT_MAX_SECONDS = 5
export const DEFAULT_SHUTDOWN = 5000
export const DEFAULT_MAX_BUFFER = 1000
export const DEFAULT_START_TIMEOUT = 5000
/** The largest `startTimeout` accepted, ms (one day). */
export const MAX_START_TIMEOUT = 86_400_000
export const DEFAULT_RESTART: RestartType = 'permanent'

export interface LocalSupervisorInit {
  /** The nact system (the ref returned by `nact.start()`) the children run on. */
  system: unknown
  /** Behaviours by name; validated at construction. */
  behaviours: Record<string, Behaviour>
  /** This node's id, reported in contexts and AlreadyStartedError. */
  node: string
  /** Used in the parent actor's name, for readable nact paths. @default 'local' */
  name?: string
  /** Restarts of one child allowed within `maxSeconds`; one more gives that child up. @default 3 */
  maxRestarts?: number
  /** @default 5 */
  maxSeconds?: number
  /** Shutdown ms of specs that give none. @default 5000 */
  defaultShutdown?: number
  /**
   * Messages held per child while it has no incarnation to take them (between a crash and the
   * restart); beyond it `message:dead` with reason `buffer_full`. @default 1000
   */
  maxBuffer?: number
  /**
   * How long an incarnation's `init` (or `handoff.restore`) may take, ms, 1 – 86 400 000. One that
   * has not settled by then is stopped and counts as a crash: the restart intensity applies, and a
   * first start rejects with StartTimeoutError. Also bounds how long a stop waits for a pending
   * `init`. @default 5000
   */
  startTimeout?: number
  /** @default Date */
  clock?: Clock
}

export interface StartOptions {
  /** A value from `drain()`'s `saved`: the first incarnation runs `handoff.restore` instead of `init`. */
  restoreState?: unknown
}

export interface LocalChildInfo {
  id: string
  behaviour: string
  restart: RestartType
  status: 'running' | 'restarting'
  /** Runs of this child since it was started here: 1, then 2 after its first restart, … */
  incarnation: number
}

export interface DrainResult {
  /** `handoff.save(state)` of the last committed state, when the behaviour has `handoff`. */
  saved?: unknown
  /** What `handoff.save` threw, if it did (then `saved` is absent). */
  saveError?: unknown
  /** Messages accepted for the child but not handled, oldest first, with their nact senders: forward them to the new owner. */
  pending: NactEnvelope[]
  /** 'handoff', or 'killed' when the stop exceeded the shutdown time, or 'crash'. */
  reason: StopReason
}

export type DeadLetterReason = 'not_found' | 'buffer_full' | 'stopped' | 'failed' | 'start_failed' | 'crashed'

export interface ChildStartedDetail {
  id: string
  incarnation: number
}
export interface ChildRestartedDetail {
  id: string
  /** The new incarnation. */
  incarnation: number
  /** Why the previous incarnation stopped. */
  reason: StopReason
  error?: unknown
}
export interface ChildStoppedDetail {
  id: string
  incarnation: number
  reason: StopReason
  error?: unknown
}
export interface ChildFailedDetail {
  id: string
  incarnation: number
  /** Why the last incarnation stopped. */
  reason: StopReason
  error: RestartIntensityError
}
export interface MessageDeadDetail {
  id: string
  reason: DeadLetterReason
  message: unknown
}

export interface LocalSupervisorEventMap {
  'child:started': CustomEvent<ChildStartedDetail>
  'child:restarted': CustomEvent<ChildRestartedDetail>
  'child:stopped': CustomEvent<ChildStoppedDetail>
  'child:failed': CustomEvent<ChildFailedDetail>
  'message:dead': CustomEvent<MessageDeadDetail>
}

type Phase = 'init' | 'running' | 'stopping' | 'crashed' | 'exited'

interface Deferred<T> {
  promise: Promise<T>
  resolve: (value: T) => void
  reject: (reason: unknown) => void
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void
  let reject!: (reason: unknown) => void
  const promise = new Promise<T>((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}

const RESOLVED: Promise<void> = Promise.resolve()
const NONE: readonly NactEnvelope[] = []

/**
 * One run of a child: one nact actor, whose nact state is this object (so the handler and hooks
 * nact calls can be shared by all children instead of closures per child).
 *
 * A node holds many thousands of children, nearly all of them just running, so everything only a
 * stop, a crash or a waiter needs is made when first needed: the `…Wait` deferreds exist only
 * while someone waits, the arrays only once they hold something.
 */
interface Incarnation {
  rec: ChildRecord
  /** The child's run number (ctx.incarnation): 1 for its first incarnation, +1 per restart. */
  n: number
  /** Unique over all incarnations of this supervisor: the number in the actor's name. */
  serial: number
  ref: NactRef
  phase: Phase
  state: unknown
  initialized: boolean
  restore: { saved: unknown } | undefined
  /** A message (or init) is being handled. */
  busy: boolean
  /** Resolved when `busy` clears; made by a stop waiting for the handler. */
  idleWait: Deferred<void> | undefined
  crash: { error: unknown; message: unknown } | undefined
  /** Messages accepted but not to be handled by this incarnation, oldest first. */
  leftover: NactEnvelope[] | undefined
  /** The nact actor takes no more messages (stopped, or stopping at once after a crash). */
  detached: boolean
  /** Messages sent via the supervisor after `detached`, to follow `leftover`. */
  late: NactEnvelope[] | undefined
  /** `init` has run (or the actor stopped before it could). */
  initSettled: boolean
  initWait: Deferred<void> | undefined
  /** Fires `startTimeout` ms after the spawn unless `init` settled first. */
  startTimer: NodeJS.Timeout | undefined
  /** `init` did not settle in time: whatever it returns later is ignored. */
  initTimedOut: boolean
  /** nact's first `afterStop` has run. */
  nactStopped: boolean
  nactStopWait: Deferred<void> | undefined
  stopping: Promise<DrainResult> | undefined
}

interface ChildRecord {
  spec: { id: string; behaviour: string; args: unknown; restart: RestartType; shutdown: number }
  behaviour: Behaviour
  current: Incarnation
  /** Incarnations spawned for this record so far: the last one's `n`. */
  runs: number
  started: boolean
  /** Settles with the first incarnation's init (resolve on success, reject on failure); then dropped. */
  firstStart: Deferred<void> | undefined
  /** Resolved when the record is removed (stopped, failed or start failed); made by a waiter. */
  removedWait: Deferred<void> | undefined
  /** A stop the supervisor was asked for: never restart. */
  final: boolean
  /** Set by drain: leftover messages are returned instead of dead-lettered. */
  pendingOut: NactEnvelope[] | undefined
  /** Messages sent while no incarnation can take them (between a crash and the restart). */
  buffer: NactEnvelope[] | undefined
  /** Clock times of recent restarts, for the intensity window. */
  restarts: number[] | undefined
  /** Called whenever `current` changes or the record is removed. */
  watchers: Set<() => void> | undefined
}

/** The first message of every incarnation: runs `init` (or `restore`) inside the actor. */
const INIT: unique symbol = Symbol('nact-horde.init')
/**
 * Ends a graceful stop from inside the actor, behind the messages already queued (which the
 * handler diverts to `leftover`). Calling nact's stop from outside instead would lose the message
 * nact has already taken off the mailbox and scheduled: its stop() cancels that setImmediate.
 */
const STOP: unique symbol = Symbol('nact-horde.stop')

/**
 * Runs children on one node. See the module comment for how it deals with nact.
 *
 * Events (CustomEvent, `detail` as typed in LocalSupervisorEventMap). Every exit of an
 * incarnation emits exactly one of `child:restarted` (a new incarnation was spawned),
 * `child:stopped` (final) or `child:failed` (restart intensity exceeded, given up); `child:started`
 * is emitted once when the first `init` succeeds. A start whose first `init` fails emits nothing
 * (its promise rejects). `message:dead` reports every message that will never be handled.
 */
export class LocalSupervisor extends TypedEventTarget<LocalSupervisorEventMap> {
  readonly node: string
  private readonly behaviours: Record<string, Behaviour>
  private readonly maxRestarts: number
  private readonly maxSeconds: number
  private readonly defaultShutdown: number
  private readonly maxBuffer: number
  private readonly startTimeout: number
  private readonly clock: Clock
  private readonly parent: NactRef
  private readonly records = new Map<string, ChildRecord>()
  /** Records in `records` that have started. */
  private startedCount = 0
  /** Strictly increasing over all children of this supervisor, so actor names never repeat. */
  private serials = 0
  private stopped?: Promise<void>
  /** nact's handler and hooks for every child actor, shared: the actor's nact state is its incarnation. */
  private readonly actorProps = {
    // INIT goes straight to runInit: one promise per start fewer than through handleMessage.
    handle: (inc: unknown, msg: unknown, nctx: NactContext) =>
      msg === INIT ? this.runInit(inc as Incarnation) : this.handleMessage(inc as Incarnation, msg, nctx),
    onCrash: (msg: unknown, err: unknown, nctx: NactSupervisionContext) => this.onCrash(msg, err, nctx),
    afterStop: (inc: unknown, nctx: NactContextWithMailbox) => this.afterStop(inc as Incarnation, nctx),
  }

  constructor(init: LocalSupervisorInit) {
    super()
    if (typeof init !== 'object' || init === null) {
      throw new InvalidOptionsError('LocalSupervisor needs options { system, behaviours, node }')
    }
    const opts = {
      name: 'local',
      maxRestarts: DEFAULT_MAX_RESTARTS,
      maxSeconds: DEFAULT_MAX_SECONDS,
      defaultShutdown: DEFAULT_SHUTDOWN,
      maxBuffer: DEFAULT_MAX_BUFFER,
      startTimeout: DEFAULT_START_TIMEOUT,
      clock: Date as Clock,
      ...init,
    }
    validateBehaviours(opts.behaviours)
    if (typeof opts.node !== 'string' || opts.node.length === 0) {
      throw new InvalidOptionsError("'node' must be a non-empty string (this node's id)")
    }
    if (!Number.isInteger(opts.maxRestarts) || opts.maxRestarts < 0) {
      throw new InvalidOptionsError("'maxRestarts' must be an integer >= 0")
    }
    if (typeof opts.maxSeconds !== 'number' || !(opts.maxSeconds > 0)) {
      throw new InvalidOptionsError("'maxSeconds' must be a number > 0")
    }
    if (typeof opts.defaultShutdown !== 'number' || !(opts.defaultShutdown >= 0)) {
      throw new InvalidOptionsError("'defaultShutdown' must be a number of ms >= 0 (or Infinity)")
    }
    if (!Number.isInteger(opts.maxBuffer) || opts.maxBuffer < 0) {
      throw new InvalidOptionsError("'maxBuffer' must be an integer >= 0")
    }
    if (
      typeof opts.startTimeout !== 'number' ||
      !(opts.startTimeout >= 1 && opts.startTimeout <= MAX_START_TIMEOUT)
    ) {
      throw new InvalidOptionsError(
        `'startTimeout' must be a number of ms from 1 to ${MAX_START_TIMEOUT} (how long init may take)`,
      )
    }
    if (typeof opts.clock?.now !== 'function')
      throw new InvalidOptionsError("'clock' must have now(): number")
    this.node = opts.node
    this.behaviours = opts.behaviours
    this.maxRestarts = opts.maxRestarts
    this.maxSeconds = opts.maxSeconds
    this.defaultShutdown = opts.defaultShutdown
    this.maxBuffer = opts.maxBuffer
    this.startTimeout = opts.startTimeout
    this.clock = opts.clock
    try {
      this.parent = nact.spawn(
        opts.system as NactRef,
        (state) => state,
        encodeParentName(String(opts.name), randomUUID()),
        {
          // Children never escalate (their onCrash always answers stop); this is a safety net.
          onCrash: (_msg, err, ctx) => {
            logError('parent actor of %s saw a fault: %O', this.node, err)
            return ctx.resume
          },
        },
      )
    } catch (err) {
      throw new InvalidOptionsError(`'system' must be a running nact system (nact.start()): ${String(err)}`)
    }
  }

  /**
   * Starts a child and resolves once its `init` (or `restore`) has run. Rejects with
   * InvalidChildSpecError, UnknownBehaviourError, AlreadyStartedError, NodeShuttingDownError,
   * StartTimeoutError (init took longer than `startTimeout`), whatever `init` threw, or a
   * HordeError when the child was terminated before its init completed; then nothing is left
   * running. `has(id)` is true from the call until it settles.
   */
  async start(spec: ChildSpec, opts: StartOptions = {}): Promise<{ id: string; incarnation: number }> {
    validateChildSpec(spec)
    if (this.stopped) throw new NodeShuttingDownError(this.node)
    if (!Object.hasOwn(this.behaviours, spec.behaviour)) throw new UnknownBehaviourError(spec.behaviour)
    if (this.records.has(spec.id)) throw new AlreadyStartedError(spec.id, this.node)
    const behaviour = this.behaviours[spec.behaviour]!
    const rec: ChildRecord = {
      spec: {
        id: spec.id,
        behaviour: spec.behaviour,
        args: spec.args,
        restart: spec.restart ?? DEFAULT_RESTART,
        shutdown: spec.shutdown ?? this.defaultShutdown,
      },
      behaviour,
      current: undefined as unknown as Incarnation,
      runs: 0,
      started: false,
      firstStart: undefined,
      removedWait: undefined,
      final: false,
      pendingOut: undefined,
      buffer: undefined,
      restarts: undefined,
      watchers: undefined,
    }
    this.forget(spec.id)
    this.records.set(spec.id, rec)
    const restore = 'restoreState' in opts ? { saved: opts.restoreState } : undefined
    if (restore && !behaviour.handoff)
      log('%s: restoreState given but behaviour has no handoff; using init', spec.id)
    const firstStart = deferred<void>()
    rec.firstStart = firstStart
    try {
      this.spawnIncarnation(rec, behaviour.handoff ? restore : undefined)
    } catch (err) {
      this.forget(spec.id)
      throw err
    }
    await firstStart.promise
    return { id: spec.id, incarnation: rec.current.n }
  }

  /**
   * Sends a message to the child's current incarnation. While the child is restarting the
   * message is held (up to `maxBuffer`) and delivered, in order, to the next incarnation.
   * Returns false (and emits `message:dead`) when the message was not accepted.
   */
  send(id: string, message: unknown, sender?: NactRef): boolean {
    const rec = this.records.get(id)
    if (!rec) {
      this.dead(id, 'not_found', message)
      return false
    }
    return this.deliver(rec, { message, sender })
  }

  /**
   * nact's query against the child's current incarnation: `message` may be a function of the
   * temporary reply ref. Waits for a restarting child within the same `timeout`. Rejects with
   * NotFoundError or TimeoutError.
   */
  async query(id: string, message: unknown, timeout: number): Promise<unknown> {
    const deadline = Date.now() + timeout
    const rec = this.records.get(id)
    if (!rec) throw new NotFoundError(id)
    const inc = await this.whenAccepting(rec, timeout)
    const remaining = Math.max(1, deadline - Date.now())
    try {
      return await nact.query(inc.ref, message, remaining)
    } catch (err) {
      if (err instanceof Error && err.message === 'Query Timeout') {
        throw new TimeoutError(`query to child '${id}' got no reply within ${timeout} ms`, timeout)
      }
      throw err
    }
  }

  /** The nact ref of the child's current incarnation; undefined when absent or between incarnations. */
  ref(id: string): unknown {
    const inc = this.records.get(id)?.current
    return inc && (inc.phase === 'init' || inc.phase === 'running') ? inc.ref : undefined
  }

  /**
   * The ids of the children {@link LocalSupervisor.children} lists, without building their
   * infos, in the order the children were first started here (a child started since comes
   * after every child listed before it; one that became listed in place, its first `init`
   * ended, keeps its place).
   */
  runningIds(): string[] {
    const out: string[] = []
    for (const rec of this.records.values()) if (listed(rec)) out.push(rec.spec.id)
    return out
  }

  /** Started children that take messages (a child whose first `init` is still running, or that is being stopped for good, is not listed). */
  children(): LocalChildInfo[] {
    const out: LocalChildInfo[] = []
    for (const rec of this.records.values()) {
      if (!listed(rec)) continue
      const phase = rec.current.phase
      out.push({
        id: rec.spec.id,
        behaviour: rec.spec.behaviour,
        restart: rec.spec.restart,
        status: phase === 'init' || phase === 'crashed' ? 'restarting' : 'running',
        incarnation: rec.current.n,
      })
    }
    return out
  }

  /** Drops the record of `id`, keeping the count of started children. */
  private forget(id: string): void {
    const rec = this.records.get(id)
    if (rec === undefined) return
    this.records.delete(id)
    if (rec.started) this.startedCount--
  }

  /** Children that have started (kept as they start and go: O(1), for metrics). */
  count(): number {
    return this.startedCount
  }

  /** The ids of every child this supervisor holds (starting, running, restarting or stopping), live. */
  ids(): IterableIterator<string> {
    return this.records.keys()
  }

  has(id: string): boolean {
    return this.records.has(id)
  }

  /**
   * Stops a child for good: after its in-flight message, runs `terminate(state, reason)`; if that
   * takes longer than the spec's `shutdown` ms the actor is stopped anyway ('killed'). Resolves
   * when the child is gone (its event emitted), whatever the behaviour does, within `shutdown`
   * ms plus at most 1 s; a child whose `init` is still pending is waited for at most until its
   * `startTimeout` (it then ends as a start failure). With `shutdown: Infinity` the wait for the
   * in-flight message and `terminate` has no bound. Works during a pending first `init` too: that
   * start then rejects. Rejects with NotFoundError.
   */
  async terminate(id: string, reason: TerminateReason = 'shutdown'): Promise<void> {
    const rec = this.records.get(id)
    if (!rec) throw new NotFoundError(id)
    rec.final = true
    const inc = rec.current
    if (inc.phase === 'init' || inc.phase === 'running') void this.stopIncarnation(rec, inc, reason, false)
    await this.whenRemoved(rec)
  }

  /**
   * Stops a child for a planned move: like `terminate(id, 'handoff')`, and returns
   * `handoff.save(state)` plus the messages it accepted but did not handle. No restart.
   */
  async drain(id: string): Promise<DrainResult> {
    const rec = this.records.get(id)
    if (!rec) throw new NotFoundError(id)
    rec.final = true
    rec.pendingOut ??= []
    const inc = rec.current
    let result: DrainResult | undefined
    if (inc.phase === 'init' || inc.phase === 'running')
      result = await this.stopIncarnation(rec, inc, 'handoff', true)
    else if (inc.stopping) result = await inc.stopping
    await this.whenRemoved(rec)
    const pending = rec.pendingOut
    if (!result) return { pending, reason: inc.crash ? 'crash' : 'handoff' }
    return { ...result, pending }
  }

  /**
   * Terminates every child in parallel (each honouring its shutdown time), then stops the parent
   * actor: nact does not cascade stops, so this is the only clean way down. Resolves within the
   * largest bound of `terminate` over the children (their shutdown time plus at most 1 s, or
   * `startTimeout` for a pending init, whichever is smaller). Idempotent; after it starts, `start`
   * rejects with NodeShuttingDownError.
   */
  stopAll(reason: TerminateReason = 'shutdown'): Promise<void> {
    this.stopped ??= (async () => {
      log('%s: stopping all %d children (%s)', this.node, this.records.size, reason)
      await Promise.all(
        [...this.records.keys()].map((id) =>
          this.terminate(id, reason).catch((err: unknown) => logError('%s: terminate failed: %O', id, err)),
        ),
      )
      nact.stop(this.parent)
    })()
    return this.stopped
  }

  // ---- internals ----

  private spawnIncarnation(rec: ChildRecord, restore?: { saved: unknown }): Incarnation {
    const serial = ++this.serials
    const name = encodeChildName(rec.spec.id, serial)
    const inc: Incarnation = {
      rec,
      n: rec.runs + 1,
      serial,
      ref: undefined as unknown as NactRef,
      phase: 'init',
      state: undefined,
      initialized: false,
      restore,
      busy: false,
      idleWait: undefined,
      crash: undefined,
      leftover: undefined,
      detached: false,
      late: undefined,
      initSettled: false,
      initWait: undefined,
      startTimer: undefined,
      initTimedOut: false,
      nactStopped: false,
      nactStopWait: undefined,
      stopping: undefined,
    }
    const { handle, onCrash, afterStop } = this.actorProps
    inc.ref = nact.spawn(this.parent, handle, name, { initialState: inc, onCrash, afterStop })
    rec.runs = inc.n
    rec.current = inc
    inc.startTimer = setTimeout(() => this.startTimedOut(inc), this.startTimeout)
    nact.dispatch(inc.ref, INIT)
    log('%s: spawned incarnation %d as %s', rec.spec.id, inc.n, name)
    this.notify(rec)
    return inc
  }

  /** The context `init` and `handle` see; made per call, as nothing keeps it between calls. */
  private context(inc: Incarnation): ChildContext {
    return {
      self: inc.ref,
      name: inc.ref.name ?? '',
      id: inc.rec.spec.id,
      node: this.node,
      incarnation: inc.n,
    }
  }

  /** nact's handler for every message but INIT. Answers the incarnation: it is the actor's nact state. */
  private async handleMessage(inc: Incarnation, msg: unknown, nctx: NactContext): Promise<Incarnation> {
    if (msg === STOP) {
      inc.detached = true
      nact.stop(nctx.self)
      return inc
    }
    if (inc.phase !== 'running') {
      // Stopping after the in-flight message: keep the rest for the next owner.
      ;(inc.leftover ??= []).push({ message: msg, sender: nctx.sender })
      return inc
    }
    const { rec } = inc
    inc.busy = true
    try {
      const ctx = this.context(inc)
      ctx.sender = nctx.sender
      const next = await rec.behaviour.handle(inc.state, msg, ctx)
      if ((inc.phase as Phase) === 'exited') return inc // killed meanwhile: the result comes too late
      if (isStopMarker(next)) {
        inc.state = next.state
        if (inc.phase === 'running') void this.stopIncarnation(rec, inc, 'normal', false)
      } else {
        inc.state = next
      }
      return inc
    } finally {
      settleIdle(inc)
    }
  }

  private async runInit(inc: Incarnation): Promise<Incarnation> {
    const { rec } = inc
    inc.busy = true
    try {
      const { args } = rec.spec
      const state =
        inc.restore && rec.behaviour.handoff
          ? await rec.behaviour.handoff.restore(inc.restore.saved, args)
          : await rec.behaviour.init(args, this.context(inc))
      // Too late: the incarnation was stopped (killed, or its start timed out) meanwhile.
      if (inc.phase === 'exited' || inc.initTimedOut) return inc
      inc.state = state
      inc.initialized = true
      inc.restore = undefined
      if (inc.phase === 'init') inc.phase = 'running'
      if (!rec.started) {
        rec.started = true
        if (this.records.get(rec.spec.id) === rec) this.startedCount++
        this.emit('child:started', { id: rec.spec.id, incarnation: inc.n })
        rec.firstStart?.resolve()
        rec.firstStart = undefined
      }
      this.notify(rec)
      return inc
    } finally {
      settleIdle(inc)
      settleInit(inc)
    }
  }

  /**
   * `startTimeout` ran out before `init` settled: a crash. A pending `init` cannot be cancelled, so
   * the actor is stopped under it and what the `init` returns later is ignored. A stop already
   * waiting for this `init` carries on from here and ends the incarnation itself.
   */
  private startTimedOut(inc: Incarnation): void {
    inc.startTimer = undefined
    if (inc.initSettled || inc.crash || inc.phase === 'exited') return
    const { id } = inc.rec.spec
    log('%s: incarnation %d did not finish init within %d ms', id, inc.n, this.startTimeout)
    inc.initTimedOut = true
    inc.crash = { error: new StartTimeoutError(id, this.startTimeout), message: INIT }
    inc.detached = true
    settleIdle(inc)
    settleInit(inc)
    if (inc.phase === 'init') {
      inc.phase = 'crashed' // afterStop finishes the exit
      nact.stop(inc.ref)
    }
  }

  /**
   * The incarnation a crashing actor runs, from its nact name. None means it has already exited
   * (`current` moves on only after its exit, and a record is removed only after it), and then
   * there is nothing to record.
   */
  private crashed(nctx: NactSupervisionContext): Incarnation | undefined {
    const decoded = decodeChildName(nctx.name)
    const inc = decoded && this.records.get(decoded.id)?.current
    return inc?.serial === decoded?.serial ? inc : undefined
  }

  /** nact's crash hook. Must never throw: a throwing onCrash is an unhandled rejection in nact. */
  private onCrash(msg: unknown, err: unknown, nctx: NactSupervisionContext) {
    try {
      const inc = this.crashed(nctx)
      if (inc === undefined) return nctx.stop
      const first = inc.phase !== 'exited' && !inc.crash
      inc.detached = true
      // A crash while stopping is finished by the stop procedure; otherwise afterStop finishes it.
      // Until then messages sent via the supervisor are buffered for the next incarnation.
      if (inc.phase === 'init' || inc.phase === 'running') inc.phase = 'crashed'
      if (first) {
        log('%s: incarnation %d crashed: %O', inc.rec.spec.id, inc.n, err)
        inc.crash = { error: err, message: msg }
        if (msg !== INIT) this.dead(inc.rec.spec.id, 'crashed', msg)
      }
    } catch (e) {
      logError('%s: onCrash bookkeeping failed: %O', nctx.name, e)
    }
    return nctx.stop
  }

  /** nact's stop hook; nact calls it again if a handler throws after the stop, hence the guard. */
  private afterStop(inc: Incarnation, nctx: NactContextWithMailbox): void {
    try {
      if (inc.nactStopped) return
      inc.detached = true
      const mailbox = nctx?.mailbox
      if (mailbox && mailbox.length > 0) (inc.leftover ??= []).push(...mailbox)
      inc.nactStopped = true
      inc.nactStopWait?.resolve()
      inc.nactStopWait = undefined
      settleInit(inc)
      if (inc.phase === 'crashed') this.finishExit(inc.rec, inc, 'crash', inc.crash?.error)
      // Stopped behind our back (nact.stop(ref) by someone else): an abnormal exit.
      else if (inc.phase === 'init' || inc.phase === 'running') this.finishExit(inc.rec, inc, 'killed')
    } catch (e) {
      logError('%s: afterStop bookkeeping failed: %O', inc?.rec?.spec.id, e)
    }
  }

  /** A graceful stop of one incarnation, cut off after the spec's shutdown ms. */
  private stopIncarnation(
    rec: ChildRecord,
    inc: Incarnation,
    reason: 'normal' | 'shutdown' | 'handoff',
    save: boolean,
  ): Promise<DrainResult> {
    if (inc.stopping) return inc.stopping
    inc.phase = 'stopping'
    inc.stopping = (async (): Promise<DrainResult> => {
      const result: DrainResult = { pending: [], reason }
      let saveDone = false
      const doSave = () => {
        if (!save || saveDone || !inc.initialized || !rec.behaviour.handoff) return
        saveDone = true
        try {
          result.saved = rec.behaviour.handoff.save(inc.state)
        } catch (err) {
          result.saveError = err
          logError('%s: handoff.save threw: %O', rec.spec.id, err)
        }
      }
      const graceful = async () => {
        // A child stopped before its init ran still gets to init first, then terminate.
        if (!inc.initSettled) await (inc.initWait ??= deferred()).promise
        while (inc.busy) await (inc.idleWait ??= deferred()).promise
        if (!inc.initialized || inc.crash) return
        doSave()
        if (!rec.behaviour.terminate) return
        try {
          await rec.behaviour.terminate(inc.state, reason)
        } catch (err) {
          logError('%s: terminate threw (ignored): %O', rec.spec.id, err)
        }
      }
      const { shutdown } = rec.spec
      const deadline = Date.now() + shutdown
      const inTime = shutdown > 0 && (await withTimeout(graceful(), shutdown))
      if (inTime && !inc.detached) {
        nact.dispatch(inc.ref, STOP)
        // Diverting the queued messages is quick. The cap guards against an actor nact has lost
        // (its system stopped first): then we fall through to nact.stop below.
        await withTimeout(whenNactStopped(inc), Math.min(Math.max(deadline - Date.now(), 100), 1000))
      }
      if (!inTime) {
        log('%s: incarnation %d did not stop within %d ms: killed', rec.spec.id, inc.n, shutdown)
        doSave()
        result.reason = 'killed'
      }
      inc.detached = true
      nact.stop(inc.ref) // a kill; a no-op when the actor has already stopped
      // afterStop runs on the next check phase; ours is queued after it (or it has already run).
      await Promise.race([whenNactStopped(inc), nextImmediate()])
      if (inc.crash && result.reason !== 'killed') result.reason = 'crash'
      this.finishExit(rec, inc, result.reason, inc.crash?.error)
      return result
    })()
    inc.stopping.catch((err: unknown) => logError('%s: stop failed: %O', rec.spec.id, err))
    return inc.stopping
  }

  /**
   * Called exactly once per incarnation, when its actor is gone: decides restart, give-up or
   * removal, and emits the one event for this exit.
   */
  private finishExit(rec: ChildRecord, inc: Incarnation, reason: StopReason, error?: unknown): void {
    if (inc.phase === 'exited') return
    inc.phase = 'exited'
    const { id } = rec.spec
    if (this.records.get(id) !== rec || rec.current !== inc) return
    const pending = [...(inc.leftover ?? NONE), ...(inc.late ?? NONE), ...(rec.buffer ?? NONE)]
    rec.buffer = undefined

    if (!rec.started) {
      this.remove(rec, pending, 'start_failed')
      rec.firstStart?.reject(
        error ??
          (this.stopped
            ? new NodeShuttingDownError(this.node)
            : new HordeError(`child '${id}' was stopped before its init completed`)),
      )
      rec.firstStart = undefined
      return
    }

    const restart = !rec.final && !this.stopped && shouldRestart(rec.spec.restart, reason)
    if (!restart) {
      this.remove(rec, pending, 'stopped')
      this.emit('child:stopped', {
        id,
        incarnation: inc.n,
        reason,
        ...(error !== undefined ? { error } : {}),
      })
      return
    }

    // Restart intensity, per child. OTP (and Horde) shut the whole supervisor down when any one
    // child exceeds it, taking every other child on the node with it. Here only the child that
    // exceeded it is given up (child:failed); its siblings keep running with their state.
    const now = this.clock.now()
    const windowMs = this.maxSeconds * 1000
    const restarts = (rec.restarts ?? []).filter((t) => now - t < windowMs)
    rec.restarts = restarts
    if (restarts.length >= this.maxRestarts) {
      const failure = new RestartIntensityError(id, this.maxRestarts, this.maxSeconds, { cause: error })
      log('%s: restart intensity exceeded, giving up', id)
      this.remove(rec, pending, 'failed')
      this.emit('child:failed', { id, incarnation: inc.n, reason, error: failure })
      return
    }
    restarts.push(now)

    let next: Incarnation
    try {
      next = this.spawnIncarnation(rec)
    } catch (err) {
      logError('%s: respawn failed: %O', id, err)
      this.remove(rec, pending, 'failed')
      this.emit('child:failed', {
        id,
        incarnation: inc.n,
        reason,
        error: new RestartIntensityError(id, this.maxRestarts, this.maxSeconds, { cause: err }),
      })
      return
    }
    for (const env of pending) nact.dispatch(next.ref, env.message, env.sender)
    this.emit('child:restarted', {
      id,
      incarnation: next.n,
      reason,
      ...(error !== undefined ? { error } : {}),
    })
  }

  private remove(rec: ChildRecord, pending: NactEnvelope[], why: DeadLetterReason): void {
    this.forget(rec.spec.id)
    if (rec.pendingOut) rec.pendingOut.push(...pending)
    else for (const env of pending) this.dead(rec.spec.id, why, env.message)
    rec.removedWait?.resolve()
    rec.removedWait = undefined
    this.notify(rec)
  }

  /** Resolves once `rec` is no longer in `records` (it is removed only once). */
  private whenRemoved(rec: ChildRecord): Promise<void> {
    if (this.records.get(rec.spec.id) !== rec) return RESOLVED
    return (rec.removedWait ??= deferred()).promise
  }

  private deliver(rec: ChildRecord, env: NactEnvelope): boolean {
    const inc = rec.current
    if (inc.phase === 'init' || inc.phase === 'running' || inc.phase === 'stopping') {
      // A stopping actor diverts what it receives to `leftover`, in mailbox order.
      if (inc.detached) (inc.late ??= []).push(env)
      else nact.dispatch(inc.ref, env.message, env.sender)
      return true
    }
    if ((rec.buffer?.length ?? 0) >= this.maxBuffer) {
      this.dead(rec.spec.id, 'buffer_full', env.message)
      return false
    }
    ;(rec.buffer ??= []).push(env)
    return true
  }

  /** Resolves with the incarnation that can take messages, within `timeout` ms. */
  private whenAccepting(rec: ChildRecord, timeout: number): Promise<Incarnation> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (this.records.get(rec.spec.id) !== rec) {
          finish()
          reject(new NotFoundError(rec.spec.id))
          return
        }
        const inc = rec.current
        if (inc.phase === 'init' || inc.phase === 'running') {
          finish()
          resolve(inc)
        }
      }
      const timer = setTimeout(
        () => {
          finish()
          reject(new TimeoutError(`child '${rec.spec.id}' did not come back within ${timeout} ms`, timeout))
        },
        Math.min(Math.max(0, timeout), 2 ** 31 - 1),
      )
      const finish = () => {
        clearTimeout(timer)
        const watchers = rec.watchers
        if (watchers?.delete(check) && watchers.size === 0) rec.watchers = undefined
      }
      ;(rec.watchers ??= new Set()).add(check)
      check()
    })
  }

  private notify(rec: ChildRecord): void {
    if (rec.watchers) for (const w of [...rec.watchers]) w()
  }

  private dead(id: string, reason: DeadLetterReason, message: unknown): void {
    log('%s: dead letter (%s)', id, reason)
    this.emit('message:dead', { id, reason, message })
  }

  private emit<K extends keyof LocalSupervisorEventMap>(
    type: K,
    detail: LocalSupervisorEventMap[K] extends CustomEvent<infer D> ? D : never,
  ): void {
    this.dispatchEvent(new CustomEvent(type, { detail }))
  }
}

function shouldRestart(type: RestartType, reason: StopReason): boolean {
  if (type === 'permanent') return true
  if (type === 'transient') return reason !== 'normal'
  return false
}

/** True if `work` settled within `ms`; never rejects. Infinity waits for ever. */
async function withTimeout(work: Promise<unknown>, ms: number): Promise<boolean> {
  const settled = work.then(
    () => true,
    () => true,
  )
  if (!Number.isFinite(ms)) return settled
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), Math.min(ms, 2 ** 31 - 1))
  })
  try {
    return await Promise.race([settled, timeout])
  } finally {
    clearTimeout(timer)
  }
}

/** Marks the handler done and wakes a stop waiting for it. */
function settleIdle(inc: Incarnation): void {
  inc.busy = false
  const wait = inc.idleWait
  inc.idleWait = undefined
  wait?.resolve()
}

function settleInit(inc: Incarnation): void {
  clearTimeout(inc.startTimer)
  inc.startTimer = undefined
  inc.initSettled = true
  inc.initWait?.resolve()
  inc.initWait = undefined
}

function whenNactStopped(inc: Incarnation): Promise<void> {
  if (inc.nactStopped) return RESOLVED
  return (inc.nactStopWait ??= deferred()).promise
}

function nextImmediate(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}

/** Whether `children()` lists the child: started, and not being stopped for good (it takes no new message). */
function listed(rec: ChildRecord): boolean {
  return rec.started && !(rec.final && rec.current.phase === 'stopping')
}
