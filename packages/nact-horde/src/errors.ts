/**
 * Error classes of nact-horde. Each failure has its own class, told apart by `name` (tests and
 * callers check the class or `name`, never the message text), carries the data a caller needs
 * to act on it, and says in its message what to do.
 */

/** Base class of every nact-horde error, so `err instanceof HordeError` catches them all. */
export class HordeError extends Error {
  override name = 'HordeError'
}

/** A child with this id already runs; `node` says where. */
export class AlreadyStartedError extends HordeError {
  override name = 'AlreadyStartedError'
  constructor(
    readonly id: string,
    readonly node: string,
  ) {
    super(`child '${id}' is already started on node ${node}; terminate it first or use another id`)
  }
}

/** The child spec names a behaviour that is not registered on this node. */
export class UnknownBehaviourError extends HordeError {
  override name = 'UnknownBehaviourError'
  constructor(readonly behaviour: string) {
    super(
      `unknown behaviour '${behaviour}'; register it under this name in the 'behaviours' option on every node`,
    )
  }
}

/** No cluster member is alive to run the child. */
export class NoAliveNodesError extends HordeError {
  override name = 'NoAliveNodesError'
  constructor(
    message = 'no alive node can run the child; wait for members to join (waitForQuorum) and retry',
  ) {
    super(message)
  }
}

/** The distribution strategy requires a quorum that this node cannot currently see. */
export class QuorumNotMetError extends HordeError {
  override name = 'QuorumNotMetError'
  constructor(
    message = 'quorum not met: fewer than a majority of the configured members are reachable; retry later',
  ) {
    super(message)
  }
}

/** The node (or its local supervisor) is stopping and accepts no new children. */
export class NodeShuttingDownError extends HordeError {
  override name = 'NodeShuttingDownError'
  constructor(readonly node?: string) {
    super(`node ${node ?? ''} is shutting down and starts no new children; start the child on another node`)
  }
}

/** An operation did not finish within its time limit. */
export class TimeoutError extends HordeError {
  override name = 'TimeoutError'
  constructor(
    message = 'operation timed out; retry, or pass a longer timeout',
    readonly timeout?: number,
  ) {
    super(message)
  }
}

/** No child with this id exists. */
export class NotFoundError extends HordeError {
  override name = 'NotFoundError'
  constructor(readonly id: string) {
    super(`no child with id '${id}' is running; check the id, or start it first`)
  }
}

/** Options passed to a constructor or factory are invalid; the message names the option. */
export class InvalidOptionsError extends HordeError {
  override name = 'InvalidOptionsError'
}

/** A child spec is invalid; the message names the field. */
export class InvalidChildSpecError extends HordeError {
  override name = 'InvalidChildSpecError'
}

/** A value that must cross the network (args, handoff state, message) cannot be encoded. */
export class NotSerializableError extends HordeError {
  override name = 'NotSerializableError'
  constructor(
    message = 'value is not serializable; use JSON-like data (objects, arrays, strings, numbers, booleans, null, Uint8Array)',
    readonly path?: string,
  ) {
    super(message)
  }
}

/**
 * A child restarted more than `maxRestarts` times within `maxSeconds` and was given up. Only that
 * child is removed; the others on the node keep running. `cause` is the last exit's error, if any.
 */
export class RestartIntensityError extends HordeError {
  override name = 'RestartIntensityError'
  constructor(
    readonly id: string,
    readonly maxRestarts: number,
    readonly maxSeconds: number,
    options?: { cause?: unknown },
  ) {
    super(
      `child '${id}' exceeded ${maxRestarts} restarts within ${maxSeconds}s and was given up; fix the cause of its crashes, then start it again`,
      options,
    )
  }
}
