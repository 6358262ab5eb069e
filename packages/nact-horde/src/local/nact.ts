/**
 * A typed view of the parts of nact 7.6.2 this package uses. nact is CommonJS with a bundled
 * `index.d.ts` that does not match its runtime (no sender on `dispatch`, `start` takes `{ name }`,
 * no mailbox on contexts), so we declare what we use ourselves and import the default export
 * (named imports fail under ESM).
 */
import nactModule from 'nact'

/** A nact reference (actor, system or temporary). Opaque to us except for its name. */
export interface NactRef {
  /** nact's kind of ref: `'actor'`, `'temp'` or `'system'`. */
  readonly type?: string
  /** The actor's name, for actor refs. */
  readonly name?: string
  /** The nact system the ref belongs to. */
  readonly system: {
    /** The system's name. */
    readonly name: string | undefined
  }
}

/** One entry of an actor's mailbox, as nact exposes it to `onCrash` and `afterStop`. */
export interface NactEnvelope {
  message: unknown
  sender: NactRef | undefined
}

export interface NactContext {
  self: NactRef
  name: string
  parent: NactRef | undefined
  sender: NactRef | undefined
}

export interface NactContextWithMailbox extends NactContext {
  mailbox: NactEnvelope[]
}

/** What `onCrash` receives; it must return one of the decision symbols, here only `stop` is used. */
export interface NactSupervisionContext extends NactContextWithMailbox {
  stop: symbol
  resume: symbol
  reset: symbol
}

export interface NactActorProperties {
  initialState?: unknown
  onCrash?: (msg: unknown, err: unknown, ctx: NactSupervisionContext) => symbol
  afterStop?: (state: unknown, ctx: NactContextWithMailbox) => void
}

export type NactHandler = (state: unknown, msg: unknown, ctx: NactContext) => unknown

interface NactApi {
  start(options?: { name?: string }): NactRef
  spawn(parent: NactRef, f: NactHandler, name: string, properties?: NactActorProperties): NactRef
  dispatch(ref: NactRef, msg: unknown, sender?: NactRef): void
  query(ref: NactRef, msg: unknown, timeout: number): Promise<unknown>
  stop(ref: NactRef): void
}

export const nact = nactModule as unknown as NactApi

/** nact's own rule for actor names (lib/paths.js). */
export const NACT_NAME_PATTERN = /^[a-z0-9-$_.+!*'(),]+$/i
