/** A JSON-like value a map can hold: what survives the wire format unchanged. */
export type Value = null | boolean | number | string | Uint8Array | Value[] | { [key: string]: Value }

/** HLC timestamp: wall-clock milliseconds and a logical counter for events in the same ms. */
export interface Timestamp {
  readonly wall: number
  readonly logical: number
}

/**
 * One stored write. `r`/`c` form its dot (the replica that wrote it and that replica's event
 * counter): a dot names exactly one write, cluster-wide, forever.
 */
export interface Entry<V> {
  readonly r: string
  readonly c: number
  readonly wall: number
  readonly logical: number
  readonly value: V
}

/** A dot without its payload: used to say "this write is superseded". */
export interface Dot {
  readonly r: string
  readonly c: number
}

/** What a delta says about one key: writes that are live, and writes known superseded. */
export interface KeyDelta<V> {
  readonly entries: readonly Entry<V>[]
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
  readonly keys: ReadonlyMap<string, KeyDelta<V>>
  readonly ranges: ReadonlyMap<string, readonly number[]>
}

/** A visible change caused by a `join`. */
export type Diff<V> = { type: 'add'; key: string; value: V } | { type: 'remove'; key: string }

/** Source of wall-clock time in milliseconds; injected so tests can control time. */
export interface Clock {
  now(): number
}
