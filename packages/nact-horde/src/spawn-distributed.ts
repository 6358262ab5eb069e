import type { ChildSpec } from './behaviour.js'
import { AlreadyStartedError } from './errors.js'
import type { Horde } from './horde.js'
import type { NactRef } from './local/nact.js'

/**
 * Starts child `spec.id` if it runs nowhere, or finds it if it does, and resolves a plain nact
 * ref to it on this node (see {@link Horde.ref}). Idempotent, and safe to call concurrently from
 * several nodes for the same id: the starts meet at the node the strategy picks, so one child
 * results.
 *
 * @example
 * ```ts
 * const ref = await spawnDistributed(horde, { id: 'user-42', behaviour: 'counter' })
 * nact.dispatch(ref, { add: 1 })
 * ```
 */
export async function spawnDistributed(
  horde: Horde,
  spec: Partial<ChildSpec> & { id: string; behaviour: string },
): Promise<NactRef> {
  try {
    await horde.startChild(spec)
  } catch (err) {
    if (!(err instanceof AlreadyStartedError)) throw err
  }
  return horde.ref(spec.id)
}
