/**
 * Redialling with capped exponential backoff, forever. One {@link Redial} per thing to keep
 * connected (a bootstrap address, a known member); it dials when kicked, and after a failure
 * waits `min(cap, base · 2^attempts)` (less up to a quarter, so peers that lost each other at
 * the same moment do not dial in lockstep) counted from the start of the failed dial. A dial in
 * flight when a partition heals ends within `dialTimeout`, and the next one starts at most
 * `cap` after the previous start: so a link is back within max(cap, dialTimeout) plus one
 * connection set-up of the heal.
 *
 * @module
 * @internal
 */

/** First wait after a failure, ms. */
export const REDIAL_BASE = 200

/** Backoff settings and the effects a {@link Redial} needs. */
export interface RedialContext {
  /** Longest wait, ms. */
  readonly cap: number
  /** Abort a dial after this long, ms. */
  readonly dialTimeout: number
  /** Runs `fn` after `ms` unless the owner stopped meanwhile; returns a cancel function. */
  later(ms: number, fn: () => void): () => void
  /** A number in [0, 1). */
  random(): number
  /** Monotonic ms. */
  now(): number
}

/** The wait before the next dial after `attempts` failed ones, ms. */
export function redialDelay(attempts: number, cap: number, random: number): number {
  const full = Math.min(cap, REDIAL_BASE * 2 ** Math.min(attempts, 30))
  return full * (1 - random / 4)
}

/** Keeps dialling one target until `satisfied()` holds. */
export class Redial {
  /** Failed dials since the last success. */
  attempts = 0
  private cancelTimer: (() => void) | undefined
  private inFlight = false
  private startedAt = 0
  private closed = false

  constructor(
    private readonly ctx: RedialContext,
    /** One dial attempt; rejects when it failed. */
    private readonly dial: (signal: AbortSignal) => Promise<void>,
    /** Whether there is nothing to do (already connected). */
    private readonly satisfied: () => boolean,
  ) {}

  /** Dials now, unless a dial or a wait is already under way. */
  kick(): void {
    if (this.cancelTimer !== undefined || this.inFlight) return
    this.run()
  }

  /** The connection dropped: dial again after the first backoff step (or the current wait). */
  lost(): void {
    if (this.cancelTimer !== undefined || this.inFlight || this.closed) return
    this.wait(redialDelay(this.attempts, this.ctx.cap, this.ctx.random()))
  }

  /** Connected: the next loss starts the backoff from the beginning. */
  connected(): void {
    this.attempts = 0
    this.cancelTimer?.()
    this.cancelTimer = undefined
  }

  /** Stops for good. */
  close(): void {
    this.closed = true
    this.cancelTimer?.()
    this.cancelTimer = undefined
  }

  private run(): void {
    if (this.closed) return
    if (this.satisfied()) {
      this.attempts = 0
      return
    }
    this.inFlight = true
    this.startedAt = this.ctx.now()
    this.dial(AbortSignal.timeout(this.ctx.dialTimeout)).then(
      () => {
        this.inFlight = false
        this.attempts = 0
      },
      () => {
        this.inFlight = false
        if (this.closed) return
        const delay = redialDelay(this.attempts, this.ctx.cap, this.ctx.random())
        this.attempts++
        this.wait(Math.max(0, this.startedAt + delay - this.ctx.now()))
      },
    )
  }

  private wait(ms: number): void {
    this.cancelTimer = this.ctx.later(ms, () => {
      this.cancelTimer = undefined
      this.run()
    })
  }
}
