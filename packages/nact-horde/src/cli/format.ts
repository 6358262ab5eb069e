/** Text formatting shared by the CLI commands (and the demo's live view). */

/** Column alignment: numbers read best right-aligned. */
export type Align = 'left' | 'right'

/**
 * Rows as an aligned table: columns separated by two spaces, the header underlined by nothing
 * but its capitals (the way `ps`, `kubectl get` and `docker ps` print). No trailing spaces.
 */
export function table(header: string[], rows: string[][], align: Align[] = []): string[] {
  const all = [header, ...rows]
  const widths = header.map((_, c) => Math.max(...all.map((r) => (r[c] ?? '').length)))
  return all.map((r) =>
    r
      .map((cell, c) => {
        const w = widths[c] ?? 0
        return align[c] === 'right' ? cell.padStart(w) : c === r.length - 1 ? cell : cell.padEnd(w)
      })
      .join('  ')
      .trimEnd(),
  )
}

/** A libp2p node id is long and its first 8 characters are the same for every node: keep the end. */
export function shortId(nodeId: string): string {
  return nodeId.length > 14 ? `…${nodeId.slice(-8)}` : nodeId
}

/** HH:MM:SS.mmm local time, for log lines. */
export function clock(date = new Date()): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0')
  return `${p(date.getHours())}:${p(date.getMinutes())}:${p(date.getSeconds())}.${p(date.getMilliseconds(), 3)}`
}

/** '1 child' / '3 children'. */
export function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`
}

/** A few ids for a log line: all when there are at most `max`, else the first ones and how many more. */
export function someIds(ids: string[], max = 3): string {
  if (ids.length <= max) return ids.join(', ')
  return `${ids.slice(0, max).join(', ')} and ${ids.length - max} more`
}

/** The message of an unknown thrown value. */
export function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message
  return String(err)
}
