// The demo's nodes: each one `nact-horde node --ipc`, a separate OS process forked from the
// demo, driven over its IPC channel (see packages/nact-horde/src/cli/ipc-control.ts) while its
// log lines are read from its stdout.
import { fork } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

export const CLI = fileURLToPath(new URL('../../packages/nact-horde/dist/cli.js', import.meta.url))

/** Every node process not known to have exited, so that `killAll()` can leave none behind. */
const live = new Set()

export class DemoNode {
  /**
   * @param {string} label e.g. 'node-1'
   * @param {string[]} args flags of `nact-horde node`
   * @param {(node: DemoNode, line: string) => void} onLine each line the node logs
   */
  constructor(label, args, onLine) {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: build first (npm run build)`)
    this.label = label
    this.nodeId = undefined
    this.addresses = []
    this.state = 'starting' // → running → stopping → stopped | killed | exited
    this.exitInfo = undefined
    this.pending = new Map()
    this.rid = 0
    this.child = fork(CLI, ['node', '--ipc', ...args], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] })
    this.pid = this.child.pid
    live.add(this)
    for (const stream of [this.child.stdout, this.child.stderr]) {
      createInterface({ input: stream }).on('line', (line) => onLine(this, line))
    }
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        live.delete(this)
        this.exitInfo = { code, signal }
        if (this.state !== 'killed') this.state = code === 0 ? 'stopped' : 'exited'
        for (const p of this.pending.values()) p.reject(new Error(`${label} exited (${code ?? signal})`))
        this.pending.clear()
        resolve(this.exitInfo)
      })
    })
    this.ready = new Promise((resolve, reject) => {
      this.child.on('message', (msg) => {
        if (msg?.type === 'ready') {
          this.nodeId = msg.nodeId
          this.addresses = msg.addresses
          this.state = 'running'
          resolve(this)
        } else if (msg?.type === 'reply') {
          const p = this.pending.get(msg.rid)
          if (p === undefined) return
          this.pending.delete(msg.rid)
          if (msg.ok) p.resolve(msg.value)
          else
            p.reject(Object.assign(new Error(`${label}: ${msg.error?.message}`), { name: msg.error?.name }))
        }
      })
      this.exited.then(({ code, signal }) =>
        reject(new Error(`${label} exited during start (${code ?? signal})`)),
      )
    })
    this.ready.catch(() => {})
  }

  /** A command over IPC (see ipc-control.ts); rejects on failure, exit, or after `timeout` ms. */
  call(cmd, args = {}, timeout = 30_000) {
    if (this.exitInfo !== undefined || !this.child.connected) {
      return Promise.reject(new Error(`${this.label} is not running`))
    }
    const rid = ++this.rid
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(rid)
        reject(new Error(`${this.label}: '${cmd}' got no answer within ${timeout} ms`))
      }, timeout)
      const settle = (f) => (v) => {
        clearTimeout(timer)
        f(v)
      }
      this.pending.set(rid, { resolve: settle(resolve), reject: settle(reject) })
      this.child.send({ rid, cmd, ...args })
    })
  }

  get running() {
    return this.exitInfo === undefined && this.state !== 'killed'
  }

  /** SIGKILL: the node gets no chance to say goodbye. */
  kill() {
    this.state = 'killed'
    this.child.kill('SIGKILL')
  }

  /** SIGTERM: the node stops gracefully (hands its children off) and exits by itself. */
  terminate() {
    this.state = 'stopping'
    this.child.kill('SIGTERM')
  }
}

/** SIGKILLs every node still running and resolves once they are gone. */
export async function killAll() {
  await Promise.all(
    [...live].map((n) => {
      if (n.exitInfo === undefined) n.child.kill('SIGKILL')
      return n.exited
    }),
  )
}

/** Synchronous last resort for process 'exit': signals every node still running. */
export function killAllNow() {
  for (const n of live) {
    try {
      n.child.kill('SIGKILL')
    } catch {}
  }
}

/** Polls `pred` (may be async) every `every` ms until it holds; throws after `timeout` ms naming `what`. */
export async function until(pred, timeout, what, every = 20) {
  const deadline = Date.now() + timeout
  for (;;) {
    if (await pred()) return
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, every))
  }
}
