/**
 * Error classes of nact-horde. Each failure has its own class, told apart by `name` (tests and
 * callers check the class or `name`, never the message text), carries the data a caller needs
 * to act on it, and says in its message what to do.
 */

/** Base class of every nact-horde error, so `err instanceof HordeError` catches them all. */
export class HordeError extends Error {
  /** Always `'HordeError'`: tell errors apart by `name` or class. */
  override name = 'HordeError'
}

/** A child with this id already runs; `node` says where. */
export class AlreadyStartedError extends HordeError {
  /** Always `'AlreadyStartedError'`: tell errors apart by `name` or class. */
  override name = 'AlreadyStartedError'
  constructor(
    /** The child's id. */
    readonly id: string,
    /** The node where it runs. */
    readonly node: string,
  ) {
    super(`child '${id}' is already started on node ${node}; terminate it first or use another id`)
  }
}

/** The child spec names a behaviour that is not registered on this node. */
export class UnknownBehaviourError extends HordeError {
  /** Always `'UnknownBehaviourError'`: tell errors apart by `name` or class. */
  override name = 'UnknownBehaviourError'
  constructor(
    /** The behaviour name the spec gave. */
    readonly behaviour: string,
  ) {
    super(
      `unknown behaviour '${behaviour}'; register it under this name in the 'behaviours' option on every node`,
    )
  }
}

/** No cluster member is alive to run the child. */
export class NoAliveNodesError extends HordeError {
  /** Always `'NoAliveNodesError'`: tell errors apart by `name` or class. */
  override name = 'NoAliveNodesError'
  constructor(
    message = 'no alive node can run the child; wait for members to join (waitForQuorum) and retry',
  ) {
    super(message)
  }
}

/** The distribution strategy requires a quorum that this node cannot currently see. */
export class QuorumNotMetError extends HordeError {
  /** Always `'QuorumNotMetError'`: tell errors apart by `name` or class. */
  override name = 'QuorumNotMetError'
  constructor(
    message = 'quorum not met: fewer than a majority of the configured members are reachable; retry later',
  ) {
    super(message)
  }
}

/** The node (or its local supervisor) is stopping and accepts no new children. */
export class NodeShuttingDownError extends HordeError {
  /** Always `'NodeShuttingDownError'`: tell errors apart by `name` or class. */
  override name = 'NodeShuttingDownError'
  constructor(
    /** The node that is shutting down. */
    readonly node?: string,
  ) {
    super(`node ${node ?? ''} is shutting down and starts no new children; start the child on another node`)
  }
}

/** An operation did not finish within its time limit. */
export class TimeoutError extends HordeError {
  /** Always `'TimeoutError'`: tell errors apart by `name` or class. */
  override name = 'TimeoutError'
  constructor(
    message = 'operation timed out; retry, or pass a longer timeout',
    /** The time limit that ran out, ms. */
    readonly timeout?: number,
  ) {
    super(message)
  }
}

/**
 * A child's `init` (or `handoff.restore`) did not settle within the `startTimeout` option. Its
 * incarnation is stopped and the timeout counts as a crash: a restarted child is restarted again
 * (within the restart intensity), a first start rejects with this error. A `TimeoutError`, so
 * `instanceof TimeoutError` catches it too.
 */
export class StartTimeoutError extends TimeoutError {
  /** Always `'StartTimeoutError'`: tell errors apart by `name` or class. */
  override name = 'StartTimeoutError'
  constructor(
    /** The child whose start timed out. */
    readonly id: string,
    /** The `startTimeout` option in force, ms. */
    timeout: number,
  ) {
    super(
      `child '${id}' did not finish init (or handoff.restore) within ${timeout} ms and was stopped; make init return sooner (send slow setup work to the child as a message) or raise the startTimeout option`,
      timeout,
    )
  }
}

/** No child with this id exists. */
export class NotFoundError extends HordeError {
  /** Always `'NotFoundError'`: tell errors apart by `name` or class. */
  override name = 'NotFoundError'
  constructor(
    /** The id that was not found. */
    readonly id: string,
  ) {
    super(`no child with id '${id}' is running; check the id, or start it first`)
  }
}

/** Options passed to a constructor or factory are invalid; the message names the option. */
export class InvalidOptionsError extends HordeError {
  /** Always `'InvalidOptionsError'`: tell errors apart by `name` or class. */
  override name = 'InvalidOptionsError'
}

/** A child spec is invalid; the message names the field. */
export class InvalidChildSpecError extends HordeError {
  /** Always `'InvalidChildSpecError'`: tell errors apart by `name` or class. */
  override name = 'InvalidChildSpecError'
}

/** A node outside the configured member list asked for something only members may do. */
export class NotMemberError extends HordeError {
  override name = 'NotMemberError'
  constructor(
    /** The node that is not a member. */
    readonly node: string,
  ) {
    super(
      `node ${node} is not in this horde's member list; add it with setMembers() (or use members: 'auto') before it takes part`,
    )
  }
}

/** A value that must cross the network (args, handoff state, message) cannot be encoded. */
export class NotSerializableError extends HordeError {
  /** Always `'NotSerializableError'`: tell errors apart by `name` or class. */
  override name = 'NotSerializableError'
  constructor(
    message = 'value is not serializable; use JSON-like data (objects, arrays, strings, numbers, booleans, null, Uint8Array)',
    /** Where in the value the problem is, when known. */
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
  /** Always `'RestartIntensityError'`: tell errors apart by `name` or class. */
  override name = 'RestartIntensityError'
  constructor(
    /** The child that was given up. */
    readonly id: string,
    /** The `maxRestarts` option in force. */
    readonly maxRestarts: number,
    /** The `maxSeconds` option in force, seconds. */
    readonly maxSeconds: number,
    options?: { cause?: unknown },
  ) {
    super(
      `child '${id}' exceeded ${maxRestarts} restarts within ${maxSeconds}s and was given up; fix the cause of its crashes, then start it again`,
      options,
    )
  }
}

/**
 * The node a request had to go to could not be reached (it is down, cut off, or went down
 * before answering). Its children are failed over once the cluster agrees it is gone.
 */
export class NodeUnreachableError extends HordeError {
  /** Always `'NodeUnreachableError'`: tell errors apart by `name` or class. */
  override name = 'NodeUnreachableError'
  constructor(
    /** The node that could not be reached. */
    readonly node: string,
    /** What the transport said. */
    detail = '',
  ) {
    super(
      `node ${node} could not be reached${detail ? ` (${detail})` : ''}; retry once it is back or once the cluster has failed it over`,
    )
  }
}

/** A request or value exceeds the transport's `maxMessageBytes`. */
export class MessageTooLargeError extends HordeError {
  /** Always `'MessageTooLargeError'`: tell errors apart by `name` or class. */
  override name = 'MessageTooLargeError'
  constructor(detail = '') {
    super(
      `the message is larger than the transport allows${detail ? ` (${detail})` : ''}; send less (smaller args or state), or raise the transport's maxMessageBytes`,
    )
  }
}
