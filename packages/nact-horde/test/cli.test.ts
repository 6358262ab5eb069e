// The built `nact-horde` CLI (dist/cli.js) run as a real program: `node` processes on 127.0.0.1,
// `status` reading them over libp2p, help, and the exit codes of wrong command lines.
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { mkdtemp, rm, stat } from 'node:fs/promises'
import { networkInterfaces, tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'

const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url))

/** Runs the CLI to completion: exit code, stdout, stderr. */
function run(args: string[], env: Record<string, string> = {}) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { env: { ...process.env, ...env }, timeout: 20_000 },
      (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr }),
    )
  })
}

/** A `nact-horde node` process and the lines it has printed so far. */
interface NodeProc {
  child: ChildProcess
  lines: string[]
  /** Resolves with the first match of `re` among the printed lines (past or future). */
  line(re: RegExp, timeout?: number): Promise<RegExpMatchArray>
  exited: Promise<number | null>
}

const started: NodeProc[] = []

function startNode(args: string[], env: Record<string, string> = {}): NodeProc {
  const child = spawn(process.execPath, [CLI, 'node', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  })
  const lines: string[] = []
  const waiters = new Set<() => void>()
  for (const s of [child.stdout!, child.stderr!]) {
    createInterface({ input: s }).on('line', (l) => {
      lines.push(l)
      for (const w of waiters) w()
    })
  }
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  const line = (re: RegExp, timeout = 15_000) =>
    new Promise<RegExpMatchArray>((resolve, reject) => {
      const check = () => {
        for (const l of lines) {
          const m = l.match(re)
          if (m) {
            waiters.delete(check)
            clearTimeout(timer)
            resolve(m)
            return
          }
        }
      }
      const timer = setTimeout(() => {
        waiters.delete(check)
        reject(new Error(`no line matching ${re} within ${timeout} ms; got:\n${lines.join('\n')}`))
      }, timeout)
      waiters.add(check)
      check()
    })
  const p = { child, lines, line, exited }
  started.push(p)
  return p
}

afterEach(async () => {
  await Promise.all(
    started.splice(0).map((p) => {
      if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL')
      return p.exited
    }),
  )
})

describe('nact-horde CLI', () => {
  it('node prints its address; status --connect shows it and a joined node alive; SIGINT stops a node gracefully', async () => {
    const a = startNode(['--name', 'cli-test', '--failure-timeout', '1000'])
    const [, nodeA] = await a.line(/^\s+node id\s+(\S+)$/)
    const [, address] = await a.line(/^\s+address\s+(\/\S+\/p2p\/\S+)$/)
    expect(address!.endsWith(`/p2p/${nodeA}`)).toBe(true)

    const b = startNode(['--name', 'cli-test', '--failure-timeout', '1000', '--bootstrap', address!])
    const [, nodeB] = await b.line(/^\s+node id\s+(\S+)$/)
    await a.line(new RegExp(`member up\\s+${nodeB}$`))

    const status = await run(['status', '--name', 'cli-test', '--connect', address!])
    expect(status.stderr).toBe('')
    expect(status.code).toBe(0)
    expect(status.stdout).toContain(`horde 'cli-test' as seen by ${nodeA}`)
    expect(status.stdout).toMatch(/^NODE\s+STATUS\s+CHILDREN$/m)
    expect(status.stdout).toMatch(new RegExp(`^${nodeA}\\s+alive\\s+0\\s+\\(connected\\)$`, 'm'))
    expect(status.stdout).toMatch(new RegExp(`^${nodeB}\\s+alive\\s+0$`, 'm'))

    const json = await run(['status', '--name', 'cli-test', '--connect', address!, '--json'])
    expect(json.code).toBe(0)
    const parsed = JSON.parse(json.stdout) as { node: string; members: { nodeId: string; status: string }[] }
    expect(parsed.node).toBe(nodeA)
    expect(parsed.members.map((m) => m.status)).toEqual(['alive', 'alive'])

    b.child.kill('SIGINT')
    await b.line(/stopping \(SIGINT\)/)
    await b.line(/stopped in \d+ ms/)
    expect(await b.exited).toBe(0)
    await a.line(new RegExp(`member down\\s+${nodeB}`))
  })

  it('status of an unreachable node or of a horde name it does not run, a node on a taken port: readable error, exit 1', async () => {
    const a = startNode(['--name', 'cli-up'])
    const [, address] = await a.line(/^\s+address\s+(\/\S+\/p2p\/\S+)$/)

    const wrongName = await run(['status', '--name', 'other', '--connect', address!])
    expect(wrongName.code).toBe(1)
    expect(wrongName.stderr).toMatch(/^error: the node at \S+ runs no horde named 'other' \(pass --name/)

    // Its port is taken: another node cannot listen there.
    const clash = startNode(['--listen', address!.split('/p2p/')[0]!])
    expect(await clash.exited).toBe(1)
    await clash.line(/^error: could not start the node: \S+ is already in use/)

    a.child.kill('SIGTERM')
    expect(await a.exited).toBe(0)
    const gone = await run(['status', '--name', 'cli-up', '--connect', address!, '--timeout', '1500'])
    expect(gone.code).toBe(1)
    expect(gone.stdout).toBe('')
    expect(gone.stderr).toMatch(/^error: could not reach \S+/)
    expect(gone.stderr).toMatch(/is the node running/)
  })

  it('--identity keeps the node id across restarts; a restarted node at the same address is found again; a stale /p2p/ id is named', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'horde-cli-'))
    try {
      const key = join(dir, 'a.key')
      const a = startNode(['--name', 'cli-id', '--identity', key])
      const [, idA] = await a.line(/^\s+node id\s+(\S+)$/)
      const [, address] = await a.line(/^\s+address\s+(\/\S+\/p2p\/\S+)$/)
      expect((await stat(key)).mode & 0o777).toBe(0o600)
      // Listening on 127.0.0.1 (the default): told on stderr that other machines cannot join.
      await a.line(/^warning: listening on loopback only/)
      // b joins by host and port only, no /p2p/.
      const hostPort = address!.split('/p2p/')[0]!
      const b = startNode(['--name', 'cli-id', '--failure-timeout', '1000', '--bootstrap', hostPort])
      const [, idB] = await b.line(/^\s+node id\s+(\S+)$/)
      await a.line(new RegExp(`member up\\s+${idB}$`))

      // a restarts at the same address, with its key given through the environment: same id.
      a.child.kill('SIGTERM')
      expect(await a.exited).toBe(0)
      const a2 = startNode(['--name', 'cli-id', '--listen', hostPort], { NACT_HORDE_IDENTITY: key })
      const [, idA2] = await a2.line(/^\s+node id\s+(\S+)$/)
      expect(idA2).toBe(idA)
      await a2.line(new RegExp(`member up\\s+${idB}$`), 20_000)

      // Restarted without its key, it has a new id: status with the old address names the mismatch.
      a2.child.kill('SIGTERM')
      expect(await a2.exited).toBe(0)
      const a3 = startNode(['--name', 'cli-id', '--listen', hostPort])
      const [, idA3] = await a3.line(/^\s+node id\s+(\S+)$/)
      expect(idA3).not.toBe(idA)
      const stale = await run(['status', '--name', 'cli-id', '--connect', address!, '--timeout', '1500'])
      expect(stale.code).toBe(1)
      expect(stale.stderr).toContain(`is ${idA3}, not ${idA}: the address is stale`)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('listening on 0.0.0.0, the join hint shows an address other machines can use, and no loopback warning', async () => {
    const a = startNode(['--name', 'cli-any', '--listen', '/ip4/0.0.0.0/tcp/0'])
    const [, hint] = await a.line(/^\s+nact-horde node --name cli-any --bootstrap (\S+)$/)
    const external = Object.values(networkInterfaces())
      .flat()
      .filter((i) => i !== undefined && !i.internal && i.family === 'IPv4')
      .map((i) => i!.address)
    if (external.length > 0) {
      expect(external.some((ip) => hint!.startsWith(`/ip4/${ip}/tcp/`))).toBe(true)
      expect(a.lines.some((l) => l.startsWith('warning: listening on loopback only'))).toBe(false)
    } else {
      // A host with loopback only (an empty network namespace): the warning says so.
      await a.line(/^warning: listening on loopback only/)
    }
  })

  it('--help for the CLI and each command', async () => {
    for (const args of [['--help'], ['help'], ['node', '--help'], ['status', '-h'], ['help', 'status']]) {
      const r = await run(args)
      expect(r.code, args.join(' ')).toBe(0)
      expect(r.stdout).toMatch(/^Usage: nact-horde/)
      expect(r.stderr).toBe('')
    }
    expect((await run(['node', '--help'])).stdout).toContain('--bootstrap <multiaddr>')
    expect((await run(['node', '--help'])).stdout).toContain('--identity <file>')
    expect((await run(['status', '--help'])).stdout).toContain('--connect <multiaddr>')
  })

  it('wrong command lines: a readable message on stderr and exit code 2', async () => {
    const cases: [string[], RegExp][] = [
      [['node', '--bogus'], /unknown option '--bogus'\nSee 'nact-horde node --help'/],
      [['frob'], /unknown command 'frob'\nSee 'nact-horde --help'/],
      [['--verbose'], /a command comes first/],
      [[], /Usage: nact-horde/],
      [['status'], /status needs --connect/],
      [['status', '--connect', '/ip4/127.0.0.1/tcp/1'], /ending in \/p2p\/<node id>/],
      [['status', '--connect', 'localhost:1'], /takes a multiaddr/],
      [['node', '--failure-timeout', 'soon'], /--failure-timeout must be a whole number/],
      [['node', '--redistribution', 'eager'], /--redistribution must be 'passive' or 'active'/],
      [['node', 'extra'], /unexpected argument 'extra'/],
      [['node', '--name'], /argument missing/],
      [['node', '--ipc'], /--ipc needs an IPC channel/],
      [['node', '--identity', ''], /--identity needs the path of a key file/],
      [['node', '--bootstrap', 'horde-0:4001'], /takes a multiaddr/],
    ]
    for (const [args, re] of cases) {
      const r = await run(args)
      expect(r.code, args.join(' ')).toBe(2)
      expect(r.stderr + r.stdout, args.join(' ')).toMatch(re)
    }
  })
})
