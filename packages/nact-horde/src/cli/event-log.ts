import type { Horde } from '../horde.js'
import { clock, messageOf, plural, shortId, someIds } from './format.js'

/** How long a burst of child events may stay quiet before its line is printed, ms. */
const QUIET = 250
/** The longest a burst is held before its line is printed anyway, ms. */
const HOLD = 2000

interface Burst {
  ids: string[]
  first: number
  timer: NodeJS.Timeout
  line: (ids: string[]) => string
}

/**
 * Writes a horde's events as readable, timestamped lines. A failover or a handoff starts or
 * stops hundreds of children within milliseconds, so child events of one kind are gathered
 * into one line per burst ("started 334 children after … went down (failover)").
 */
export class EventLog {
  private readonly bursts = new Map<string, Burst>()
  /** Members that stopped being alive lately: node id → [status, when], to explain starts. */
  private readonly downs = new Map<string, [string, number]>()
  private readonly unlisten: (() => void)[] = []

  constructor(
    horde: Horde,
    private readonly write: (line: string) => void,
    /** How long after a member went down a start is attributed to it, ms. */
    private readonly window: number,
  ) {
    const on = <T>(type: string, f: (detail: T) => void) => {
      const listener = (e: Event) => f((e as CustomEvent<T>).detail)
      horde.addEventListener(type, listener)
      this.unlisten.push(() => horde.removeEventListener(type, listener))
    }
    on<{ nodeId: string }>('member:up', ({ nodeId }) => {
      if (nodeId === horde.nodeId) return
      this.downs.delete(nodeId)
      this.line(`member up      ${nodeId}`)
    })
    on<{ nodeId: string; status: string }>('member:down', ({ nodeId, status }) => {
      if (nodeId === horde.nodeId) return
      this.downs.set(nodeId, [status, Date.now()])
      this.line(`member down    ${nodeId} (${status})`)
    })
    on<{ id: string }>('child:started', ({ id }) => this.gather('started', id, (ids) => this.started(ids)))
    on<{ id: string; reason: string }>('child:restarted', ({ id, reason }) =>
      this.gather(
        `restarted:${reason}`,
        id,
        (ids) => `restarted ${children(ids)} after ${reason}: ${someIds(ids)}`,
      ),
    )
    on<{ id: string; reason: string }>('child:stopped', ({ id, reason }) =>
      this.gather(`stopped:${reason}`, id, (ids) =>
        reason === 'handoff'
          ? `handed off ${children(ids)} to other members: ${someIds(ids)}`
          : `stopped ${children(ids)} (${reason}): ${someIds(ids)}`,
      ),
    )
    on<{ id: string; reason: string; error: unknown }>('child:failed', ({ id, reason, error }) =>
      this.gather(
        `failed:${reason}`,
        id,
        (ids) => `gave up ${children(ids)} (${reason}: ${messageOf(error)}): ${someIds(ids)}`,
      ),
    )
    on<{ id: string; survivor: string }>('child:conflict', ({ id }) =>
      this.gather(
        'conflict',
        id,
        (ids) =>
          `resolved ${plural(ids.length, 'duplicate', 'duplicates')} after a partition healed: ${someIds(ids)}`,
      ),
    )
    on<{ id: string; reason: string }>('message:dead', ({ id, reason }) =>
      this.gather(
        `dead:${reason}`,
        id,
        (ids) =>
          `${plural(ids.length, 'message', 'messages')} could not be delivered (${reason}): to ${someIds([...new Set(ids)])}`,
      ),
    )
  }

  /** A line now, with the time in front. */
  line(text: string): void {
    this.write(`${clock()}  ${text}`)
  }

  /** Prints what is gathered and stops listening. */
  close(): void {
    this.flush()
    for (const u of this.unlisten.splice(0)) u()
  }

  /** Prints every gathered burst now (before a line that should come after them). */
  flush(): void {
    for (const key of [...this.bursts.keys()]) this.print(key)
  }

  private started(ids: string[]): string {
    const now = Date.now()
    const recent = [...this.downs].filter(([, [, at]]) => now - at <= this.window)
    if (recent.length === 0) return `started ${children(ids)}: ${someIds(ids)}`
    const dead = recent.filter(([, [status]]) => status === 'dead').map(([n]) => shortId(n))
    const left = recent.filter(([, [status]]) => status !== 'dead').map(([n]) => shortId(n))
    const why = [
      dead.length > 0 ? `${dead.join(', ')} died (failover)` : '',
      left.length > 0 ? `${left.join(', ')} left (handoff)` : '',
    ]
      .filter(Boolean)
      .join('; ')
    return `started ${children(ids)} after ${why}: ${someIds(ids)}`
  }

  private gather(key: string, id: string, line: (ids: string[]) => string): void {
    const b = this.bursts.get(key)
    if (b === undefined) {
      const timer = setTimeout(() => this.print(key), QUIET)
      timer.unref()
      this.bursts.set(key, { ids: [id], first: Date.now(), timer, line })
      return
    }
    b.ids.push(id)
    clearTimeout(b.timer)
    b.timer = setTimeout(() => this.print(key), Math.max(0, Math.min(QUIET, b.first + HOLD - Date.now())))
    b.timer.unref()
  }

  private print(key: string): void {
    const b = this.bursts.get(key)
    if (b === undefined) return
    clearTimeout(b.timer)
    this.bursts.delete(key)
    this.line(b.line(b.ids))
  }
}

const children = (ids: string[]) => plural(ids.length, 'child', 'children')
