import type { Clock, Timestamp } from './types.js'

/**
 * Hybrid logical clock (Kulkarni et al., 2014): timestamps follow wall-clock time where the
 * clocks agree and never go backwards or repeat, and a write made after seeing another
 * always gets a greater timestamp, whatever the wall clocks say.
 */
export class HybridClock {
  private wall = 0
  private logical = 0

  constructor(private readonly clock: Clock) {}

  /** A fresh timestamp greater than every one issued or observed so far. */
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

  /** @internal Wall part of the last timestamp issued or observed. */
  get lastWall(): number {
    return this.wall
  }

  /** @internal Logical part of the last timestamp issued or observed. */
  get lastLogical(): number {
    return this.logical
  }

  /** Records a timestamp seen in a remote write so later local ticks exceed it. */
  observe(wall: number, logical: number): void {
    if (wall > this.wall || (wall === this.wall && logical > this.logical)) {
      this.wall = wall
      this.logical = logical
    }
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
