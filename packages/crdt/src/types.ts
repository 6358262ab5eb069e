/** A JSON-like value a map can hold: what survives the wire format unchanged. */
export type Value = null | boolean | number | string | Uint8Array | Value[] | { [key: string]: Value }

/** HLC timestamp: wall-clock milliseconds and a logical counter for events in the same ms. */
export interface Timestamp {
  /** Wall-clock milliseconds (never behind any timestamp seen before). */
  readonly wall: number
  /** Counter that orders events with the same `wall`. */
  readonly logical: number
}

/**
 * One stored write. `r`/`c` form its dot (the replica that wrote it and that replica's event
 * counter): a dot names exactly one write, cluster-wide, forever.
 */
export interface Entry<V> {
  /** The replica that made the write. */
  readonly r: string
  /** That replica's event counter at the write. */
  readonly c: number
  /** The write's HLC timestamp: wall-clock part, ms. */
  readonly wall: number
  /** The write's HLC timestamp: logical part. */
  readonly logical: number
  /** The value written. */
  readonly value: V
}

/** A dot without its payload: used to say "this write is superseded". */
export interface Dot {
  /** The replica that made the write. */
  readonly r: string
  /** That replica's event counter at the write. */
  readonly c: number
}

/** What a delta says about one key: writes that are live, and writes known superseded. */
export interface KeyDelta<V> {
  /** Writes of the key that are live. */
  readonly entries: readonly Entry<V>[]
  /** Writes of the key known to be superseded. */
  readonly dead: readonly Dot[]
}

/**
 * A delta-state fragment of a map. Treat it as opaque: ship it with {@link encodeDelta} and
 * apply it with `join`.
 *
 * - `keys`: per key, live entries and superseded dots. Context given here is scoped to the
 *   key it is listed under, so it can never remove another key's entries.
 * - `ranges`: per replica id, flat `[lo, hi, lo, hi, …]` counter intervals the sender has seen;
 *   every dot inside them that is not among `keys` entries is superseded. A delta that carries
 *   ranges carries every entry it has alive inside them (never a wider context than its
 *   entries — the DeltaCrdt key-loss bug).
 */
export interface Delta<V> {
  /** Per key: live entries and superseded dots. */
  readonly keys: ReadonlyMap<string, KeyDelta<V>>
  /** Per replica id: `[lo, hi, lo, hi, …]` counter intervals the sender has seen. */
  readonly ranges: ReadonlyMap<string, readonly number[]>
}

/** A visible change caused by a `join` (with `siblingDiffs`, any change of a key's live writes). */
export type Diff<V> =
  | {
      /** The key now has a (new) value. */
      type: 'add'
      /** The key that changed. */
      key: string
      /** Its value now. */
      value: V
    }
  | {
      /** The key no longer has a value. */
      type: 'remove'
      /** The key that was removed. */
      key: string
    }

/** Source of wall-clock time in milliseconds; injected so tests can control time. */
export interface Clock {
  /** The current wall-clock time, ms since the epoch. */
  now(): number
}
