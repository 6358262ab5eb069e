/**
 * Thrown by {@link decodeDelta} and `SyncLink.receive` when bytes are not a valid message of
 * this format (truncated, random, hostile, or from an incompatible version). The replica is
 * never changed by a message that fails to decode.
 */
export class DecodeError extends Error {
  /** Always `'DecodeError'`. */
  override readonly name = 'DecodeError'
  constructor(message: string, options?: { cause?: unknown }) {
    super(
      `${message}. The bytes were dropped and the replica was not changed; check that the sender runs a compatible @nact-horde/crdt version`,
      options,
    )
  }
}

/** Thrown when a replica is given an invalid argument (a non-string key, an unsupported value). */
export class InvalidArgumentError extends TypeError {
  /** Always `'InvalidArgumentError'`. */
  override readonly name = 'InvalidArgumentError'
}
