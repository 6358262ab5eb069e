/**
 * Behaviours that `nact-horde node` registers, so a cluster of CLI nodes (and the demo) has
 * something to run. They double as small examples of writing a behaviour.
 *
 * Every node of a horde must register the same behaviours under the same names; a node started
 * with `nact-horde node` registers exactly these.
 */
import type { Behaviour } from './behaviour.js'
import { type NactRef, nact } from './local/nact.js'

/** Arguments of a counter: where it starts (after a crash or a node failure it starts here again). */
export interface CounterArgs {
  start?: number
}

/**
 * What a counter understands:
 * - `{ add: n }` adds n (a number; anything else is ignored).
 * - `{ get: true }` replies with the count: to `replyTo` when the message carries a ref, else
 *   to the sender (`nact.query(ref, { get: true }, timeout)` resolves with it).
 */
export type CounterMessage = { add: number } | { get: true; replyTo?: NactRef }

function reply(to: unknown, value: unknown): void {
  if (typeof to === 'object' && to !== null && 'system' in to) nact.dispatch(to as NactRef, value)
}

/**
 * A counter whose count survives planned moves (graceful stop of its node, removal from the
 * members, rebalancing) through `handoff`. A node crash loses it: the counter restarts from
 * `args.start` elsewhere.
 */
export const counter: Behaviour<number, CounterArgs | null, CounterMessage> = {
  init: (args) => (typeof args?.start === 'number' ? args.start : 0),
  handle: (n, msg, ctx) => {
    if (typeof msg !== 'object' || msg === null) return n
    if ('get' in msg && msg.get === true) {
      reply(msg.replyTo ?? ctx.sender, n)
      return n
    }
    if ('add' in msg && typeof msg.add === 'number' && Number.isFinite(msg.add)) return n + msg.add
    return n
  },
  handoff: {
    save: (n) => n,
    restore: (saved, args) =>
      typeof saved === 'number' ? saved : typeof args?.start === 'number' ? args.start : 0,
  },
}

/**
 * Answers every message with `{ echo: message, id, node }`, which shows where the child runs:
 * to `replyTo` when the message is an object carrying one (the echo then leaves it out), else
 * to the sender. Stateless.
 */
export const echo: Behaviour<null, unknown, unknown> = {
  init: () => null,
  handle: (state, msg, ctx) => {
    if (typeof msg === 'object' && msg !== null && 'replyTo' in msg) {
      const { replyTo, ...rest } = msg as { replyTo: unknown }
      reply(replyTo, { echo: rest, id: ctx.id, node: ctx.node })
    } else {
      reply(ctx.sender, { echo: msg, id: ctx.id, node: ctx.node })
    }
    return state
  },
}

/** The behaviours `nact-horde node` runs, by name. */
export const exampleBehaviours: Record<string, Behaviour> = { counter, echo }
