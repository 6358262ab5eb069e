/**
 * @packageDocumentation
 * A distributed dynamic supervisor for nact, in the spirit of Elixir's
 * Horde.DynamicSupervisor: nodes that start a horde of the same name form one supervisor;
 * any node can start a child by id; the cluster picks the node that runs it, restarts it when
 * it crashes, restarts it elsewhere when its node dies, and moves it (with its state, where
 * the behaviour exports it) when nodes leave or join.
 *
 * @example
 * ```ts
 * import nact from 'nact'
 * import { startHorde } from 'nact-horde'
 *
 * const counter = {
 *   init: (args: { start?: number }) => args.start ?? 0,
 *   handle: (n: number, msg: { add: number }) => n + msg.add,
 *   handoff: { save: (n: number) => n, restore: (saved: unknown) => saved as number },
 * }
 * const horde = await startHorde(nact.start(), { name: 'workers', behaviours: { counter } })
 * const { node } = await horde.startChild({ id: 'user-42', behaviour: 'counter', args: { start: 1 } })
 * await horde.stop()
 * ```
 *
 * @module nact-horde
 */
export {
  type Behaviour,
  type ChildContext,
  type ChildSpec,
  type RestartType,
  type StopMarker,
  type StopReason,
  stopSelf,
  validateBehaviours,
} from './behaviour.js'
export {
  type DistributionStrategy,
  hasQuorumOf,
  type MemberInfo,
  uniformDistribution,
  uniformQuorumDistribution,
  uniformRandomDistribution,
} from './distribution/strategy.js'
export * from './errors.js'
export {
  type ChildCounts,
  type ChildInfo,
  Horde,
  type HordeEventMap,
  type HordeMetrics,
  type HordeStatus,
  type MemberStatus,
  startHorde,
} from './horde.js'
export type { NactRef } from './local/nact.js'
export type { HordeOptions } from './options.js'
export type { DeadReason } from './routing.js'
export { spawnDistributed } from './spawn-distributed.js'
export { fetchStatus } from './status-client.js'
