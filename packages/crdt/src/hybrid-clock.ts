import { InvalidArgumentError } from './errors.js'
import type { Clock, Timestamp } from './types.js'

/**
 * How far ahead of the local wall clock, in ms, a remote timestamp may be for the clock to
 * move to it: the default of {@link HybridClock}'s `maxDrift` and of the map's `maxClockDrift`.
 */
export const DEFAULT_MAX_CLOCK_DRIFT = 60_000

/**
 * Hybrid logical clock (Kulkarni et al., 2014): timestamps follow wall-clock time where the
 * clocks agree and never go backwards or repeat, and a write made after seeing another gets a
 * greater timestamp, whatever the wall clocks say — as long as the one seen was at most
 * `maxDrift` ms ahead of this clock's wall time.
 *
 * A remote timestamp further ahead than that is not adopted ({@link observe} returns false):
 * one replica whose wall clock runs hours fast (or one hostile message) would otherwise move
 * every replica's timestamps hours forward for good, since each passes the time on with its
 * own writes. Causal order in the map does not depend on it: a write supersedes what its
 * replica has seen by dots, not by timestamp.
 */
export class HybridClock {
  private wall = 0
  private logical = 0
  private notAdopted = 0
  private readonly maxDrift: number

  /**
   * @param clock - wall-clock source, ms.
   * @param maxDrift - how far ahead of `clock.now()`, in ms, a remote timestamp may be for
   *   {@link observe} to move this clock to it; `Infinity` adopts every timestamp. A
   *   non-negative number. @default {@link DEFAULT_MAX_CLOCK_DRIFT} (60 000)
   * @throws InvalidArgumentError when `maxDrift` is negative or not a number.
   */
  constructor(
    private readonly clock: Clock,
    maxDrift: number = DEFAULT_MAX_CLOCK_DRIFT,
  ) {
    assertMaxDrift(maxDrift, 'maxDrift')
    this.maxDrift = maxDrift
  }

  /** A fresh timestamp greater than every one issued or adopted so far. */
  tick(): Timestamp {
    this.advance()
    return { wall: this.wall, logical: this.logical }
  }

  /**
   * @internal {@link tick} without allocating the timestamp: read it from {@link lastWall}
   * and {@link lastLogical}. For the map's write path, which runs once per local write.
   */
  advance(): void {
    const now = Math.floor(this.clock.now())
    if (now > this.wall) {
      this.wall = now
      this.logical = 0
    } else {
      this.logical++
    }
  }

  /** @internal Wall part of the last timestamp issued or adopted. */
  get lastWall(): number {
    return this.wall
  }

  /** @internal Logical part of the last timestamp issued or adopted. */
  get lastLogical(): number {
    return this.logical
  }

  /** How many remote timestamps {@link observe} did not adopt because they were too far ahead. */
  get timestampsNotAdopted(): number {
    return this.notAdopted
  }

  /**
   * Records a timestamp seen in a remote write so later local ticks exceed it. Returns false,
   * and leaves the clock as it was, when its wall part is more than `maxDrift` ms ahead of
   * both `clock.now()` and this clock's own wall time.
   */
  observe(wall: number, logical: number): boolean {
    if (wall > this.wall) {
      // Read the wall clock only when the remote time would move this one: most remote
      // writes are older than the last timestamp, and a full-state join observes each.
      if (wall - Math.floor(this.clock.now()) > this.maxDrift) {
        this.notAdopted++
        return false
      }
      this.wall = wall
      this.logical = logical
    } else if (wall === this.wall && logical > this.logical) {
      this.logical = logical
    }
    return true
  }
}

/** @internal Validates a drift bound option. */
export function assertMaxDrift(v: unknown, name: string): asserts v is number {
  if (typeof v !== 'number' || Number.isNaN(v) || v < 0) {
    throw new InvalidArgumentError(
      `${name} must be a non-negative number of milliseconds (or Infinity to adopt every remote timestamp), got ${String(v)}`,
    )
  }
}

/** Total order of writes: timestamp, then replica id. Returns > 0 when a wins. */
export function compareWrites(
  aWall: number,
  aLogical: number,
  aReplica: string,
  bWall: number,
  bLogical: number,
  bReplica: string,
): number {
  if (aWall !== bWall) return aWall - bWall
  if (aLogical !== bLogical) return aLogical - bLogical
  return aReplica < bReplica ? -1 : aReplica > bReplica ? 1 : 0
}
