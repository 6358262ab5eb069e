// Real network faults between horde nodes on one machine, with Linux network namespaces
// (needs root, `ip` from iproute2 and `iptables`). Used by bench/authority.bench.mjs; usable by
// a network test suite.
//
// Layout of one network (runId r, n nodes):
//
//   namespace nh-<r>-br: a bridge br0, and one end (p<i>) of each node's veth pair
//   namespace nh-<r>-<i>: veth0 with 10.231.<k>.<i + 1>/24, and lo
//
// Everything — the bridge, both ends of every veth pair, the addresses, the iptables rules —
// is created inside these namespaces, never in the root namespace: the machine's own
// interfaces, routes and firewall are not touched, and 10.231.<k>.0/24 exists only in here.
//
// Faults are iptables DROP rules in a chain NH-FAULT hooked into each node namespace's INPUT
// chain: packets are lost on arrival, silently (no reset, no error for the sender: what a cut
// cable or a dead host looks like). Only INPUT is used — a DROP in OUTPUT makes the sender's own
// send fail at once with EPERM, which a cut cable does not.
//
// Teardown: `destroy()` (call it in finally), plus a process 'exit' handler and SIGINT/SIGTERM
// handlers for every network still up, plus a sweep at creation of networks whose creating
// process is gone (names carry its pid).
import { execFileSync, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

const PREFIX = 'nh-'
const CHAIN = 'NH-FAULT'
/** `ip netns exec <ns>` bind-mounts each file of this folder over /etc (hosts, resolv.conf). */
const ETC_NETNS = '/etc/netns'
const DELAY_PROXY = fileURLToPath(new URL('./delay-proxy.mjs', import.meta.url))
/** Networks created by this process and not destroyed yet. */
const live = new Set()

function run(cmd, args, { quiet = false } = {}) {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
  } catch (err) {
    if (quiet) return ''
    const stderr = err.stderr?.toString().trim()
    throw new Error(`${cmd} ${args.join(' ')} failed: ${stderr || err.message}`)
  }
}

/** Runs `cmd args` inside namespace `ns`. */
function inNs(ns, cmd, args, opts) {
  return run('ip', ['netns', 'exec', ns, cmd, ...args], opts)
}

/** Why namespaces cannot be used here (not root, no `ip` or `iptables`, no permission), or undefined when they can. */
export function netnsUnavailable() {
  if (process.platform !== 'linux') return `not Linux (${process.platform})`
  if (process.getuid?.() !== 0) return 'not root'
  for (const tool of ['ip', 'iptables']) {
    try {
      execFileSync(tool, ['-V'], { stdio: 'ignore' })
    } catch {
      return `no ${tool} (apt-get install -y ${tool === 'ip' ? 'iproute2' : 'iptables'})`
    }
  }
  const probe = `${PREFIX}p${process.pid}probe`
  try {
    run('ip', ['netns', 'add', probe])
    inNs(probe, 'iptables', ['-S'])
    return undefined
  } catch (err) {
    return err.message
  } finally {
    run('ip', ['netns', 'del', probe], { quiet: true })
  }
}

/** Names of every namespace starting with `nh-`. */
function ourNamespaces() {
  return run('ip', ['netns', 'list'], { quiet: true })
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0])
    .filter((name) => name?.startsWith(PREFIX))
}

function alive(pid) {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return err.code === 'EPERM'
  }
}

/** Kills the processes inside `ns`, then deletes it (its interfaces go with it). */
function deleteNamespace(ns) {
  for (const pid of run('ip', ['netns', 'pids', ns], { quiet: true }).split(/\s+/).filter(Boolean)) {
    try {
      process.kill(Number(pid), 'SIGKILL')
    } catch {
      // already gone
    }
  }
  run('ip', ['netns', 'del', ns], { quiet: true })
  // Only ever a folder named after one of our namespaces (see `hosts()`).
  if (ns.startsWith(PREFIX)) rmSync(`${ETC_NETNS}/${ns}`, { recursive: true, force: true })
}

/**
 * Deletes the `nh-p<pid>r…` namespaces left behind by processes that no longer run (a run
 * killed before its cleanup). Namespaces of a process still running are left alone: it may be
 * another run in progress. Returns the names deleted.
 */
export function sweepStale() {
  const swept = []
  for (const ns of ourNamespaces()) {
    const m = /^nh-p(\d+)r[0-9a-f]+-/.exec(ns)
    if (m === null || alive(Number(m[1]))) continue
    deleteNamespace(ns)
    swept.push(ns)
  }
  return swept
}

function destroyAll() {
  for (const net of [...live]) net.destroy()
}
let hooked = false
function hookExit() {
  if (hooked) return
  hooked = true
  process.once('exit', destroyAll)
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.once(signal, () => {
      destroyAll()
      process.kill(process.pid, signal)
    })
  }
}

/** A network of `n` node namespaces on one bridge; see the top of this file. */
export class NetnsNetwork {
  constructor(n) {
    if (!Number.isInteger(n) || n < 1 || n > 200) throw new RangeError(`n must be 1..200, got ${n}`)
    this.runId = `p${process.pid}r${randomBytes(2).toString('hex')}`
    this.subnet = 1 + (process.pid % 250)
    this.bridgeNs = `${PREFIX}${this.runId}-br`
    /** @type {{ ns: string, address: string }[]} */
    this.nodes = Array.from({ length: n }, (_, i) => ({
      ns: `${PREFIX}${this.runId}-${i}`,
      address: `10.231.${this.subnet}.${i + 1}`,
    }))
    this.destroyed = false
  }

  /** Creates the namespaces, the bridge and the links. Throws (after cleaning up) on failure. */
  create() {
    hookExit()
    sweepStale()
    live.add(this)
    try {
      const br = this.bridgeNs
      run('ip', ['netns', 'add', br])
      run('ip', ['-n', br, 'link', 'add', 'br0', 'type', 'bridge'])
      run('ip', ['-n', br, 'link', 'set', 'br0', 'up'])
      for (const [i, { ns, address }] of this.nodes.entries()) {
        run('ip', ['netns', 'add', ns])
        // Created inside the bridge namespace, its peer moved straight into the node's.
        run('ip', ['-n', br, 'link', 'add', `p${i}`, 'type', 'veth', 'peer', 'name', 'veth0', 'netns', ns])
        run('ip', ['-n', br, 'link', 'set', `p${i}`, 'master', 'br0', 'up'])
        run('ip', ['-n', ns, 'addr', 'add', `${address}/24`, 'dev', 'veth0'])
        run('ip', ['-n', ns, 'link', 'set', 'veth0', 'up'])
        run('ip', ['-n', ns, 'link', 'set', 'lo', 'up'])
        inNs(ns, 'iptables', ['-N', CHAIN])
        inNs(ns, 'iptables', ['-I', 'INPUT', '-j', CHAIN])
      }
    } catch (err) {
      this.destroy()
      throw err
    }
    return this
  }

  /** Namespace name of node `i`. */
  ns(i) {
    return this.node(i).ns
  }

  /** Address of node `i` (exists only inside this network). */
  address(i) {
    return this.node(i).address
  }

  /** Listen multiaddrs for a horde node run as node `i`. */
  listen(i) {
    return [`/ip4/${this.address(i)}/tcp/0`]
  }

  node(i) {
    const node = this.nodes[i]
    if (node === undefined) throw new RangeError(`no node ${i} in a network of ${this.nodes.length}`)
    return node
  }

  drop(i, args) {
    inNs(this.ns(i), 'iptables', ['-A', CHAIN, ...args, '-j', 'DROP'])
  }

  /** Node `i` falls silent: nothing reaches it, nothing from it reaches anyone (a dead host, no reset). */
  isolate(i) {
    this.drop(i, ['-i', 'veth0'])
    for (const j of this.nodes.keys()) if (j !== i) this.drop(j, ['-s', this.address(i)])
  }

  /** The link between nodes `i` and `j` is cut both ways; each still reaches every other node. */
  cut(i, j) {
    this.drop(i, ['-s', this.address(j)])
    this.drop(j, ['-s', this.address(i)])
  }

  /** One way: node `i` drops every packet from node `j` (`j` still receives `i`'s). */
  dropFrom(i, j) {
    this.drop(i, ['-s', this.address(j)])
  }

  /**
   * Random packet loss: every node drops each packet arriving from the bridge with
   * `probability` (iptables' statistic match, `--mode random`), so each packet between two
   * nodes is lost with that probability, TCP retransmitting it. A counting rule (no target) before
   * the drop counts every packet arriving, for {@link lossCounts}. Removed by {@link heal}.
   */
  lose(probability) {
    if (!(probability > 0 && probability < 1))
      throw new RangeError(`probability must be in (0, 1), got ${probability}`)
    for (const i of this.nodes.keys()) {
      inNs(this.ns(i), 'iptables', ['-A', CHAIN, '-i', 'veth0'])
      this.drop(i, [
        '-i',
        'veth0',
        '-m',
        'statistic',
        '--mode',
        'random',
        '--probability',
        String(probability),
      ])
    }
  }

  /**
   * Packets that arrived from the bridge and packets the loss rules dropped, summed over the
   * nodes, since {@link lose} (iptables' rule counters): the loss rate actually applied.
   */
  lossCounts() {
    let arrived = 0
    let dropped = 0
    for (const { ns } of this.nodes) {
      for (const line of inNs(ns, 'iptables', ['-S', CHAIN, '-v']).split('\n')) {
        const m = / -c (\d+) \d+/.exec(line)
        if (m === null || !line.includes('-i veth0')) continue
        if (line.includes('-m statistic')) dropped += Number(m[1])
        else if (!line.includes(' -j ')) arrived += Number(m[1])
      }
    }
    return { arrived, dropped }
  }

  /**
   * A hosts file for node `i`'s namespace: `entries` maps names to addresses. `ip netns exec`
   * bind-mounts /etc/netns/<ns>/hosts over /etc/hosts for what it runs, so a node started after
   * this resolves those names (Node's dns.lookup reads /etc/hosts through getaddrinfo). The
   * folder goes with the namespace.
   */
  hosts(i, entries) {
    const dir = `${ETC_NETNS}/${this.ns(i)}`
    mkdirSync(dir, { recursive: true })
    const lines = Object.entries(entries).map(([name, address]) => `${address}\t${name}`)
    writeFileSync(`${dir}/hosts`, `127.0.0.1\tlocalhost\n${lines.join('\n')}\n`)
  }

  /** What `name` resolves to inside node `i`'s namespace (getent, i.e. through /etc/hosts there). */
  resolve(i, name) {
    return inNs(this.ns(i), 'getent', ['ahostsv4', name], { quiet: true })
      .split('\n')
      .map((l) => l.trim().split(/\s+/)[0])
      .filter((a, k, all) => a !== undefined && a !== '' && all.indexOf(a) === k)
  }

  /**
   * Emulated latency (netem is not in every kernel): every TCP connection from one node to
   * another's port `port` goes through a delay proxy (bench/lib/delay-proxy.mjs) run in node
   * `proxy`'s namespace, which delays each chunk by `delayMs` each way. In each other node's
   * namespace a nat OUTPUT rule sends `<address of j>:<port>` to `<proxy address>:<portBase + j>`,
   * and the proxy forwards that to j's real address: so a node is dialled through the proxy
   * whatever address of it the dialler learnt (bootstrap, identify), and the dialled node sees
   * the proxy as the peer. Nodes must listen on the fixed `port`. Resolves once the proxy
   * listens, with `{ connections }` (target → connections forwarded so far).
   */
  async delayThrough(proxy, { delayMs, port, portBase = 5000 }) {
    const targets = [...this.nodes.keys()].filter((j) => j !== proxy)
    const via = this.address(proxy)
    for (const i of targets) {
      for (const j of targets) {
        if (i === j) continue
        inNs(this.ns(i), 'iptables', [
          ...['-t', 'nat', '-A', 'OUTPUT', '-p', 'tcp', '-d', this.address(j), '--dport', String(port)],
          ...['-j', 'DNAT', '--to-destination', `${via}:${portBase + j}`],
        ])
      }
    }
    const routes = targets.map((j) => ({ port: portBase + j, host: this.address(j), targetPort: port }))
    const child = spawn(
      'ip',
      ['netns', 'exec', this.ns(proxy), process.execPath, DELAY_PROXY, JSON.stringify({ delayMs, routes })],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    )
    /** @type {Map<string, number>} */
    const connections = new Map()
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the delay proxy did not start within 10 s')), 10_000)
      child.once('exit', (code) => reject(new Error(`the delay proxy exited (${code})`)))
      createInterface({ input: child.stdout }).on('line', (line) => {
        const msg = JSON.parse(line)
        if (msg.ready) {
          clearTimeout(timer)
          resolve()
        }
        if (msg.conn) connections.set(msg.conn, (connections.get(msg.conn) ?? 0) + 1)
      })
    })
    return { connections }
  }

  /** Removes every fault. */
  heal() {
    for (const { ns } of this.nodes) inNs(ns, 'iptables', ['-F', CHAIN])
  }

  /** The fault rules in place, per node namespace (for logs). */
  rules() {
    return this.nodes.map(({ ns }) => inNs(ns, 'iptables', ['-S', CHAIN]).trim())
  }

  /** Kills what runs inside and deletes every namespace of this network. Safe to call twice. */
  destroy() {
    if (this.destroyed) return
    this.destroyed = true
    live.delete(this)
    for (const { ns } of this.nodes) deleteNamespace(ns)
    deleteNamespace(this.bridgeNs)
  }
}

/** Creates a network of `n` node namespaces (see {@link NetnsNetwork}). */
export function createNetwork(n) {
  return new NetnsNetwork(n).create()
}
