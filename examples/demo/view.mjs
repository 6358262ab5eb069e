// The demo's live view: members and children per node. On a terminal, a table redrawn in place
// under the demo's log (ANSI cursor movement); otherwise (CI, a pipe) plain lines, one each time
// the picture changes.
const ESC = '\x1b['
const BAR = 24

/**
 * @typedef {{ label: string, pid: number, nodeId?: string, state: string,
 *   seen?: Record<string, number>, local?: number }} NodeRow
 */

export class LiveView {
  /** @param {{ out?: NodeJS.WriteStream, tty?: boolean, expected: number }} o */
  constructor({ out = process.stdout, tty = Boolean(out.isTTY) && !process.env.CI, expected }) {
    this.out = out
    this.tty = tty
    this.expected = expected
    this.t0 = Date.now()
    this.phase = ''
    /** @type {NodeRow[]} */
    this.rows = []
    this.events = []
    this.drawn = 0 // lines of the block now on screen
    this.lastPlain = ''
    this.lastPlainAt = 0
  }

  /** A permanent line, above the live block. */
  log(line = '') {
    if (!this.tty) return this.out.write(`${line}\n`)
    this.clear()
    this.out.write(`${line}\n`)
    this.draw()
  }

  /** A node's own log line: in the block's event pane on a terminal, else printed with its label. */
  event(label, line) {
    if (this.closed) return
    const text = `[${label}] ${line}`
    if (!this.tty) return this.out.write(`  ${text}\n`)
    this.events.push(text)
    if (this.events.length > 6) this.events.shift()
    this.redraw()
  }

  setPhase(text) {
    this.phase = text
    this.redraw()
  }

  /** @param {NodeRow[]} rows */
  update(rows) {
    if (this.closed) return
    this.rows = rows
    if (this.tty) return this.redraw()
    // Plain output: one line when the picture changed, at most every 500 ms.
    const line = this.summary()
    if (line === this.lastPlain || Date.now() - this.lastPlainAt < 500) return
    this.lastPlain = line
    this.lastPlainAt = Date.now()
    this.out.write(`  ${this.elapsed()}  ${line}\n`)
  }

  /** Removes the block (before the demo's last lines). */
  close() {
    this.closed = true
    clearTimeout(this.pending)
    if (this.tty) this.clear()
    this.tty = false
  }

  elapsed() {
    return `${((Date.now() - this.t0) / 1000).toFixed(1).padStart(5)} s`
  }

  summary() {
    const parts = this.rows.map((r) =>
      r.local === undefined ? `${r.label} ${r.state}` : `${r.label} ${r.local}`,
    )
    const total = this.rows.reduce((n, r) => n + (r.local ?? 0), 0)
    return `children per node: ${parts.join(', ')}; running ${total}/${this.expected}`
  }

  block() {
    const width = Math.max(40, (this.out.columns ?? 100) - 1)
    const total = this.rows.reduce((n, r) => n + (r.local ?? 0), 0)
    const head = ['NODE', 'PID', 'NODE ID', 'PROCESS', 'MEMBERS IT SEES', 'CHILDREN', '']
    const cells = this.rows.map((r) => [
      r.label,
      String(r.pid ?? ''),
      r.nodeId ? `…${r.nodeId.slice(-8)}` : '',
      r.state,
      r.seen
        ? Object.entries(r.seen)
            .map(([s, n]) => `${n} ${s}`)
            .join(', ')
        : '—',
      r.local === undefined ? '—' : String(r.local),
      r.local ? '█'.repeat(Math.max(1, Math.round((BAR * r.local) / Math.max(1, this.expected)))) : '',
    ])
    const w = head.map((h, c) => Math.max(h.length, ...cells.map((row) => row[c].length)))
    const fmt = (row, bold = false) =>
      row
        .map((cell, c) => (c === 5 ? cell.padStart(w[c]) : cell.padEnd(w[c])))
        .join('  ')
        .trimEnd()
        .replace(/^/, bold ? `${ESC}1m` : '')
        .concat(bold ? `${ESC}0m` : '')
    const stateColour = (line, state) =>
      state === 'killed' ? `${ESC}31m${line}${ESC}0m` : state === 'stopped' ? `${ESC}2m${line}${ESC}0m` : line
    const lines = [
      '',
      `${ESC}1m● live${ESC}0m  ${this.elapsed()}  ${this.phase}`,
      fmt(head, true),
      ...cells.map((row, i) => stateColour(fmt(row), this.rows[i].state)),
      `running ${total} of ${this.expected} children`,
    ]
    if (this.events.length > 0) lines.push('', ...this.events.map((e) => `${ESC}2m${e}${ESC}0m`))
    // A line wider than the terminal would wrap and break the cursor arithmetic: cut it.
    return lines.map((l) => cut(l, width))
  }

  redraw() {
    if (!this.tty) return
    const now = Date.now()
    // Redrawing 1,000 times a second helps no one: at most every 50 ms.
    if (now - (this.drawnAt ?? 0) < 50) {
      if (this.pending === undefined) {
        this.pending = setTimeout(() => {
          this.pending = undefined
          this.redraw()
        }, 50)
        this.pending.unref()
      }
      return
    }
    this.clear()
    this.draw()
  }

  draw() {
    if (!this.tty) return
    const lines = this.block()
    this.out.write(`${lines.join('\n')}\n`)
    this.drawn = lines.length
    this.drawnAt = Date.now()
  }

  clear() {
    if (this.drawn > 0) this.out.write(`${ESC}${this.drawn}F${ESC}0J`)
    this.drawn = 0
  }
}

/** Cuts `line` to `width` visible characters, leaving ANSI sequences whole. */
function cut(line, width) {
  let visible = 0
  let out = ''
  for (let i = 0; i < line.length; ) {
    const m = line.startsWith(ESC, i) ? /^[0-9;]*[A-Za-z]/.exec(line.slice(i + ESC.length)) : null
    if (m) {
      out += ESC + m[0]
      i += ESC.length + m[0].length
      continue
    }
    if (visible < width) out += line[i]
    visible++
    i++
  }
  return out + (visible > width ? `${ESC}0m` : '')
}
