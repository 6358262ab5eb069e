/**
 * @packageDocumentation
 * A delta-state add-wins last-writer-wins map (δ-CRDT) with an anti-entropy protocol whose
 * cost follows the difference between two replicas, not their size. No network code: mutators
 * return deltas, `join` applies them, and `link(peer)` produces and consumes the sync
 * messages that repair whatever the network lost.
 *
 * @example
 * ```ts
 * import { AWLWWMap, encodeDelta, decodeDelta } from '@nact-horde/crdt'
 *
 * const a = new AWLWWMap<number>({ replicaId: 'a' })
 * const b = new AWLWWMap<number>({ replicaId: 'b' })
 * const bytes = encodeDelta(a.set('x', 1))   // broadcast this
 * b.join(decodeDelta(bytes))                 // [{ type: 'add', key: 'x', value: 1 }]
 *
 * // anti-entropy: alternate until both say null
 * let msg = a.link('b').generate()
 * while (msg) { b.link('a').receive(msg); msg = b.link('a').generate() ?? a.link('b').generate() }
 * ```
 *
 * @module @nact-horde/crdt
 */
export {
  AWLWWMap,
  type AWLWWMapOptions,
  type AWLWWMapStats,
  DEFAULT_MAX_SYNC_BYTES,
  MIN_SYNC_BYTES,
} from './aw-lww-map.js'
export { decodeDelta, encodeDelta, MAX_KEY_LENGTH, WIRE_VERSION } from './codec.js'
export { DecodeError, InvalidArgumentError } from './errors.js'
export { compareWrites, DEFAULT_MAX_CLOCK_DRIFT, HybridClock } from './hybrid-clock.js'
export { mergeDeltas } from './merge-deltas.js'
export { type GenerateOptions, SyncLink, type SyncLinkStats } from './sync-link.js'
export type { Clock, Delta, Diff, Dot, Entry, KeyDelta, Timestamp, Value } from './types.js'
export { assertValue } from './value.js'
