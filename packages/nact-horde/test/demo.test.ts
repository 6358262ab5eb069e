// examples/demo.mjs end to end, smaller: 3 node processes, failover after SIGKILL, handoff on
// SIGTERM, verification; and no node process outlives the demo, whether it ends or is interrupted.
import { type ChildProcess, spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'

const DEMO = fileURLToPath(new URL('../../../examples/demo.mjs', import.meta.url))

interface Demo {
  child: ChildProcess
  lines: string[]
  /** Resolves once a printed line matches `re`. */
  line(re: RegExp, timeout?: number): Promise<void>
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

const running: Demo[] = []

function startDemo(args: string[]): Demo {
  const child = spawn(process.execPath, [DEMO, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  const lines: string[] = []
  const waiters = new Set<() => void>()
  for (const s of [child.stdout!, child.stderr!]) {
    createInterface({ input: s }).on('line', (l) => {
      lines.push(l)
      for (const w of waiters) w()
    })
  }
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  )
  const line = (re: RegExp, timeout = 30_000) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (!lines.some((l) => re.test(l))) return
        waiters.delete(check)
        clearTimeout(timer)
        resolve()
      }
      const timer = setTimeout(() => {
        waiters.delete(check)
        reject(new Error(`no line matching ${re} within ${timeout} ms; got:\n${lines.join('\n')}`))
      }, timeout)
      waiters.add(check)
      check()
    })
  const d = { child, lines, line, exited }
  running.push(d)
  return d
}

/** Pids of the node processes, from the demo's "  node-1  pid 1234  <id>" lines. */
const nodePids = (lines: string[]) =>
  lines.flatMap((l) => {
    const m = /^ {2}node-\d {2}pid (\d+) {2}/.exec(l)
    return m ? [Number(m[1])] : []
  })

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

afterEach(async () => {
  for (const d of running.splice(0)) {
    if (d.child.exitCode === null && d.child.signalCode === null) d.child.kill('SIGKILL')
    await d.exited
    for (const pid of nodePids(d.lines)) if (isAlive(pid)) process.kill(pid, 'SIGKILL')
  }
})

describe('examples/demo.mjs', () => {
  it('200 counters on 3 processes: failover after SIGKILL, handoff with state on SIGTERM, verification passes, exit 0', async () => {
    const demo = startDemo(['--children', '200'])
    const { code, signal } = await demo.exited
    const out = demo.lines.join('\n')
    expect({ code, signal }, out).toEqual({ code: 0, signal: null })
    expect(out).toMatch(/^VERIFICATION PASSED: 200 counters, each running exactly once/m)
    expect(out).toMatch(/all 200 counters run again, each exactly once, [\d.]+ s after the SIGKILL/)
    expect(out).toMatch(/✓ \d+ counters handed off by node-2 kept the counts they had before the SIGTERM/)
    expect(out).not.toMatch(/✗/)
    // Not a terminal: plain lines, no ANSI cursor movement.
    expect(out).not.toContain('\x1b[')
    // The CLI's own status table, as the demo shows it.
    expect(out).toMatch(/^ {2}NODE\s+STATUS\s+CHILDREN$/m)
    const pids = nodePids(demo.lines)
    expect(pids).toHaveLength(3)
    for (const pid of pids) expect(isAlive(pid), `node pid ${pid}`).toBe(false)
  })

  it('interrupted (SIGINT) mid-run: exits 130 and leaves no node process behind', async () => {
    const demo = startDemo(['--children', '200'])
    await demo.line(/^▶ starting 200 counters/)
    const pids = nodePids(demo.lines)
    expect(pids).toHaveLength(3)
    demo.child.kill('SIGINT')
    const { code } = await demo.exited
    // Its output says why when it is not 130 (a failure it reported before the signal came).
    expect(code, demo.lines.join('\n')).toBe(130)
    for (const pid of pids) expect(isAlive(pid), `node pid ${pid}`).toBe(false)
  })

  it('a wrong --children: exit 2 with the usage', async () => {
    const demo = startDemo(['--children', 'many'])
    expect((await demo.exited).code).toBe(2)
    expect(demo.lines.join('\n')).toMatch(/--children must be a whole number/)
  })
})
