import type { ChildSpec } from '../behaviour.js'
import { AlreadyStartedError } from '../errors.js'
import type { Horde } from '../horde.js'
import { nact } from '../local/nact.js'

/**
 * `nact-horde node --ipc`: a script that forked the node (child_process.fork) drives it over the
 * IPC channel — the demo does. On start the node sends `{ type: 'ready', nodeId, addresses, pid }`;
 * every request `{ rid, cmd, ...args }` gets one reply `{ type: 'reply', rid, ok, value | error }`.
 * Log lines go on stdout as usual. If the parent goes away (even killed), the node exits at
 * once, so a crashed script never leaves nodes behind.
 *
 * Commands:
 * - `status`: `{ status: horde.status(), local: number }`
 * - `local`: the ids of the children running on this node
 * - `start { ids, behaviour, args?, concurrency? }`: startChild of each id (an id that already
 *   runs is fine); `{ ms, nodes: { [nodeId]: count } }`
 * - `send { entries: [id, message, times?][] }`: nact.dispatch through horde.ref(id); `{ sent }`
 * - `query { ids, message?, timeout?, concurrency? }`: nact.query through horde.ref(id) (message
 *   default `{ get: true }`); `[id, value]` pairs, value null when the query failed
 * - `stop`: the graceful stop a SIGTERM does; replies once the node has handed off its children
 */
export interface IpcHost {
  horde: Horde
  /** Stops the node as SIGTERM would; resolves when its children are handed off. */
  stop(reason: string): Promise<void>
  /** The node must exit now (the parent is gone). */
  abandon(): void
}

type Request = { rid: number; cmd: string } & Record<string, unknown>

export function serveIpc(host: IpcHost): void {
  const send = process.send?.bind(process)
  if (send === undefined) throw new Error('--ipc needs an IPC channel: fork the node with child_process.fork')
  const { horde } = host
  const commands: Record<string, (req: Request) => unknown> = {
    status: () => ({ status: horde.status(), local: horde.localChildren().length }),
    local: () => horde.localChildren().map((c) => c.id),
    start: async (req) => {
      const ids = req.ids as string[]
      const nodes: Record<string, number> = {}
      const t0 = performance.now()
      await pool(ids, (req.concurrency as number | undefined) ?? 16, async (id) => {
        const spec: ChildSpec = { id, behaviour: req.behaviour as string, args: req.args ?? null }
        try {
          const r = await horde.startChild(spec)
          nodes[r.node] = (nodes[r.node] ?? 0) + 1
        } catch (err) {
          if (!(err instanceof AlreadyStartedError)) throw err
          nodes[err.node] = (nodes[err.node] ?? 0) + 1
        }
      })
      return { ms: performance.now() - t0, nodes }
    },
    send: (req) => {
      let sent = 0
      for (const [id, message, times = 1] of req.entries as [string, unknown, number?][]) {
        const ref = horde.ref(id)
        for (let i = 0; i < times; i++, sent++) nact.dispatch(ref, message)
      }
      return { sent }
    },
    query: async (req) => {
      const ids = req.ids as string[]
      const message = req.message ?? { get: true }
      const timeout = (req.timeout as number | undefined) ?? 5000
      const out: [string, unknown][] = []
      await pool(ids, (req.concurrency as number | undefined) ?? 64, async (id) => {
        try {
          out.push([id, await nact.query(horde.ref(id), message, timeout)])
        } catch {
          out.push([id, null])
        }
      })
      return out
    },
    stop: () => host.stop('IPC'),
  }
  process.on('message', (raw) => {
    const req = raw as Request
    if (typeof req !== 'object' || req === null || typeof req.rid !== 'number') return
    const reply = (fields: object) => {
      if (process.connected) send({ type: 'reply', rid: req.rid, ...fields })
    }
    const fn = commands[req.cmd]
    if (fn === undefined)
      return reply({ ok: false, error: { name: 'Error', message: `unknown command '${req.cmd}'` } })
    Promise.resolve()
      .then(() => fn(req))
      .then(
        (value) => reply({ ok: true, value }),
        (err: unknown) =>
          reply({ ok: false, error: { name: (err as Error)?.name, message: (err as Error)?.message } }),
      )
  })
  process.on('disconnect', () => host.abandon())
  send({ type: 'ready', nodeId: horde.nodeId, addresses: horde.addresses, pid: process.pid })
}

/** Runs `f` over `items`, at most `n` at a time; rejects with the first failure. */
async function pool<T>(items: T[], n: number, f: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  const worker = async () => {
    while (next < items.length) await f(items[next++] as T)
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(n, items.length)) }, worker))
}
