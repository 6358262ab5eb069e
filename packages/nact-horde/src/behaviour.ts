import { MAX_KEY_LENGTH } from '@nact-horde/crdt'
import { InvalidChildSpecError, InvalidOptionsError } from './errors.js'

/** What a behaviour's callbacks know about the child they run. A new object per incarnation. */
export interface ChildContext {
  /** The nact reference of this incarnation's actor (dispatch to it to message yourself). */
  self: unknown
  /** The nact actor name of this incarnation (see `encodeChildName`). */
  name: string
  /** The child id, unique cluster-wide. */
  id: string
  /** The node this incarnation runs on. */
  node: string
  /** 1 for the first run of this id on this node, +1 on every restart. */
  incarnation: number
  /** In `handle` only: the sender nact passed with the message (a temporary ref for `query`). */
  sender?: unknown
}

/**
 * How to run one kind of child. Behaviours are registered by name, identically on every node;
 * child specs refer to them by that name (functions cannot travel, names can).
 */
export interface Behaviour<S = any, A = any, M = any> {
  /** The initial state of a fresh incarnation (also after every restart). Throwing fails the start. */
  init: (args: A, ctx: ChildContext) => S | Promise<S>
  /**
   * Handles one message, returns the next state. Throwing (or rejecting) is a crash. Return
   * `stopSelf(state)` to stop normally (reason 'normal').
   */
  handle: (state: S, msg: M, ctx: ChildContext) => S | StopMarker<S> | Promise<S | StopMarker<S>>
  /**
   * Called once on a graceful stop ('normal', 'shutdown', 'handoff') with the last committed state,
   * after the in-flight message. Not called on 'crash' (the state may be half-updated) nor when
   * the stop is cut off ('killed'). Bounded by the spec's `shutdown` ms; errors are caught and logged.
   */
  terminate?: (state: S, reason: StopReason) => void | Promise<void>
  /** State carried on planned moves: `save` on the old node, `restore` instead of `init` on the new. */
  handoff?: {
    /** Runs on the old node after the last message: returns the JSON-like state to carry. */
    save: (state: S) => unknown
    /** Runs on the new node instead of `init`, with what `save` returned and the spec's args. */
    restore: (saved: unknown, args: A) => S | Promise<S>
  }
}

/** OTP restart types. */
export type RestartType = 'permanent' | 'transient' | 'temporary'

/**
 * Why an incarnation stopped.
 * - `normal`: the behaviour returned `stopSelf(state)`.
 * - `shutdown`: the supervisor terminated it (`terminate(id)`, `stopAll()`).
 * - `handoff`: the supervisor drained it for a planned move (`drain(id)`).
 * - `crash`: `init`, `restore` or `handle` threw or rejected.
 * - `killed`: a `shutdown`/`handoff`/`normal` stop did not finish (in-flight message plus
 *   `terminate`) within the spec's `shutdown` ms, or `shutdown` is 0; the actor was stopped anyway.
 *
 * A stop the supervisor was asked for (terminate, drain, stopAll) is final whatever its reason.
 * Otherwise `permanent` restarts after every reason, `transient` after every reason but
 * `normal`, `temporary` never. (An actor stopped behind the supervisor's back, e.g. by
 * `nact.stop(ref)`, exits with 'killed'.)
 */
export type StopReason = 'normal' | 'shutdown' | 'handoff' | 'crash' | 'killed'

/** The reasons a caller may give when it asks the supervisor to stop a child. */
export type TerminateReason = 'shutdown' | 'handoff'

export const RESTART_TYPES: readonly RestartType[] = ['permanent', 'transient', 'temporary']

/** How to start one child. */
export interface ChildSpec {
  /** Unique cluster-wide; any non-empty string. */
  id: string
  /** Name of a registered behaviour. */
  behaviour: string
  /** Passed to `init` / `restore`; must be JSON-like to cross the network. */
  args?: unknown
  /** @default 'permanent' */
  restart?: RestartType
  /** Ms a graceful stop may take before the child is killed; 0 kills at once, Infinity waits. @default 5000 */
  shutdown?: number
}

const STOP = Symbol.for('nact-horde.stop')

/** Returned from `handle` to stop the child normally after this message. */
export interface StopMarker<S = unknown> {
  /** Marks the value as a stop request. */
  readonly [STOP]: true
  /** The child's last state (given to `terminate`). */
  readonly state: S
}

/** `return stopSelf(state)` from `handle` stops the child with reason 'normal' and this last state. */
export function stopSelf<S>(state: S): StopMarker<S> {
  return { [STOP]: true, state }
}

export function isStopMarker(value: unknown): value is StopMarker {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[STOP] === true
}

/** Throws InvalidOptionsError naming the first malformed behaviour. */
export function validateBehaviours(behaviours: Record<string, Behaviour>): void {
  if (typeof behaviours !== 'object' || behaviours === null || Array.isArray(behaviours)) {
    throw new InvalidOptionsError(
      "'behaviours' must be an object mapping behaviour names to { init, handle }",
    )
  }
  for (const [name, b] of Object.entries(behaviours)) {
    const where = `behaviour '${name}'`
    if (name.length === 0) throw new InvalidOptionsError('behaviour names must be non-empty strings')
    if (typeof b !== 'object' || b === null) {
      throw new InvalidOptionsError(`${where} must be an object with init and handle functions`)
    }
    if (typeof b.init !== 'function') throw new InvalidOptionsError(`${where}: 'init' must be a function`)
    if (typeof b.handle !== 'function') throw new InvalidOptionsError(`${where}: 'handle' must be a function`)
    if (b.terminate !== undefined && typeof b.terminate !== 'function') {
      throw new InvalidOptionsError(`${where}: 'terminate' must be a function when given`)
    }
    if (b.handoff !== undefined) {
      const h = b.handoff
      if (
        typeof h !== 'object' ||
        h === null ||
        typeof h.save !== 'function' ||
        typeof h.restore !== 'function'
      ) {
        throw new InvalidOptionsError(
          `${where}: 'handoff' must be { save(state), restore(saved, args) } when given`,
        )
      }
    }
  }
}

/** The longest child id: its record's map key (`c/<id>`) must fit the crdt's key limit. */
export const MAX_CHILD_ID_LENGTH = MAX_KEY_LENGTH - 2

export const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

/** Throws InvalidChildSpecError naming the first malformed field. */
export function validateChildSpec(spec: ChildSpec): void {
  if (typeof spec !== 'object' || spec === null) {
    throw new InvalidChildSpecError(
      'a child spec must be an object { id, behaviour, args?, restart?, shutdown? }',
    )
  }
  if (typeof spec.id !== 'string' || spec.id.length === 0) {
    throw new InvalidChildSpecError("child spec 'id' must be a non-empty string")
  }
  if (spec.id.length > MAX_CHILD_ID_LENGTH) {
    // Its record's key must fit what every replica decodes.
    throw new InvalidChildSpecError(
      `child spec 'id' must be at most ${MAX_CHILD_ID_LENGTH} characters, got ${spec.id.length}`,
    )
  }
  if (LONE_SURROGATE.test(spec.id)) {
    // Two ill-formed ids would encode to the same UTF-8 bytes, hence the same actor name.
    throw new InvalidChildSpecError("child spec 'id' must be well-formed Unicode (no lone surrogates)")
  }
  if (typeof spec.behaviour !== 'string' || spec.behaviour.length === 0) {
    throw new InvalidChildSpecError(
      `child '${spec.id}': 'behaviour' must be the name of a registered behaviour`,
    )
  }
  if (spec.restart !== undefined && !RESTART_TYPES.includes(spec.restart)) {
    throw new InvalidChildSpecError(
      `child '${spec.id}': 'restart' must be one of ${RESTART_TYPES.join(', ')}, got ${String(spec.restart)}`,
    )
  }
  if (
    spec.shutdown !== undefined &&
    (typeof spec.shutdown !== 'number' || Number.isNaN(spec.shutdown) || spec.shutdown < 0)
  ) {
    throw new InvalidChildSpecError(
      `child '${spec.id}': 'shutdown' must be a number of ms >= 0 (or Infinity)`,
    )
  }
}
