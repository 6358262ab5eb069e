// nact-horde, end to end: a 3-node cluster of separate OS processes on 127.0.0.1 (libp2p over
// TCP), 1,000 distributed counters, a node killed with SIGKILL (failover), another stopped
// gracefully (handoff with state), and a check that every counter runs exactly once with the
// count it should have.
//
//   npm run demo                       # builds, then runs this
//   node examples/demo.mjs --children 200
//
// Each node is `nact-horde node --ipc` (the package's CLI) forked from here; this script drives
// them over their IPC channels and shows their own log lines. Exits 0 when the verification
// passes, 1 when it fails or something went wrong, 130 on Ctrl-C; no node process outlives it.
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { parseArgs, promisify } from 'node:util'
import { CLI, DemoNode, killAll, killAllNow, until } from './demo/cluster.mjs'
import { LiveView } from './demo/view.mjs'

const USAGE = `Usage: node examples/demo.mjs [--children <n>] [--plain]

  --children <n>   how many counters to start (default: $DEMO_CHILDREN or 1000)
  --plain          plain line output even on a terminal (the default when stdout is not one)
`

let flags
try {
  flags = parseArgs({
    options: {
      children: { type: 'string' },
      plain: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  }).values
} catch (err) {
  process.stderr.write(`demo: ${err.message}\n${USAGE}`)
  process.exit(2)
}
if (flags.help) {
  process.stdout.write(USAGE)
  process.exit(0)
}
const N = Number(flags.children ?? process.env.DEMO_CHILDREN ?? 1000)
if (!Number.isInteger(N) || N < 1 || N > 100_000) {
  process.stderr.write(`demo: --children must be a whole number from 1 to 100000\n${USAGE}`)
  process.exit(2)
}

const NAME = 'demo'
const FAILURE_TIMEOUT = 1000
/** Counter i receives i % 7 + 1 increments. */
const increments = (i) => (i % 7) + 1
const ids = Array.from({ length: N }, (_, i) => `counter-${i}`)
const indexOf = new Map(ids.map((id, i) => [id, i]))
const fmt = (n) => n.toLocaleString('en-US')
const secs = (ms) => `${(ms / 1000).toFixed(2)} s`

const view = new LiveView({ expected: N, ...(flags.plain ? { tty: false } : {}) })
const log = (line = '') => view.log(line)
const t0 = performance.now()

// ——— cleanup: no node outlives the demo ———

process.on('exit', killAllNow)
let interrupted = false
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, async () => {
    if (interrupted) return
    interrupted = true
    view.close()
    process.stderr.write(`\ndemo: ${signal}: stopping every node\n`)
    await killAll()
    process.exit(130)
  })
}
const watchdog = setTimeout(() => fail(new Error('the demo took over 120 s')), 120_000)
watchdog.unref()

async function fail(err) {
  // Interrupted: the nodes being killed fail whatever was in flight; the signal's exit (130)
  // is the one that counts.
  if (interrupted) return
  view.close()
  process.stderr.write(`\ndemo failed: ${err?.stack ?? err}\n`)
  await killAll()
  process.exit(1)
}

// ——— the nodes and the live view ———

/** @type {DemoNode[]} */
const nodes = []
const clusterKey = randomBytes(16).toString('hex')

function startNode(label, bootstrap = []) {
  const args = ['--name', NAME, '--failure-timeout', String(FAILURE_TIMEOUT)]
  for (const b of bootstrap) args.push('--bootstrap', b)
  // The key goes in the environment, not the command line, where `ps` would show it.
  process.env.NACT_HORDE_CLUSTER_KEY = clusterKey
  const node = new DemoNode(label, args, (n, line) => {
    // A node's banner is for people starting it by hand; its timestamped event lines are news.
    if (/^\d\d:\d\d:\d\d\.\d{3} {2}/.test(line) || /error/i.test(line)) view.event(n.label, line)
  })
  nodes.push(node)
  return node.ready
}

const statusOf = new Map()
let polling = false
async function poll() {
  if (polling) return
  polling = true
  try {
    await Promise.all(
      nodes.map(async (n) => {
        if (!n.running || n.state === 'starting') return statusOf.delete(n)
        try {
          statusOf.set(n, await n.call('status', {}, 2000))
        } catch {
          statusOf.delete(n)
        }
      }),
    )
    view.update(
      nodes.map((n) => {
        const s = statusOf.get(n)
        const seen = {}
        for (const m of s?.status.members ?? []) seen[m.status] = (seen[m.status] ?? 0) + 1
        return {
          label: n.label,
          pid: n.pid,
          nodeId: n.nodeId,
          state: n.state,
          ...(s ? { seen, local: s.local } : {}),
        }
      }),
    )
  } finally {
    polling = false
  }
}
const poller = setInterval(poll, 200)

/** id → labels of the nodes running it, from each running node's own list. */
async function placement(among) {
  const out = new Map()
  const lists = await Promise.all(among.map((n) => n.call('local')))
  lists.forEach((list, i) => {
    for (const id of list) out.set(id, [...(out.get(id) ?? []), among[i].label])
  })
  return out
}

/** True when every counter runs on exactly one of `among` and nothing else runs. */
async function exactlyOnce(among) {
  const p = await placement(among)
  return p.size === N && ids.every((id) => p.get(id)?.length === 1)
}

/** Counts of `which` counters, queried through horde.ref on `via`: Map id → count (null if no answer). */
async function counts(via, which) {
  return new Map(await via.call('query', { ids: which, timeout: 5000 }, 60_000))
}

function phase(title) {
  view.setPhase(title)
  log()
  log(`▶ ${title}`)
}

// ——— the demo ———

async function main() {
  log(`nact-horde demo: ${fmt(N)} distributed counters on 3 nodes, each its own process`)
  log(`(libp2p over TCP on 127.0.0.1, cluster key shared through the environment)`)

  phase('starting 3 nodes: nact-horde node --ipc')
  const n1 = await startNode('node-1')
  const [n2, n3] = await Promise.all([startNode('node-2', n1.addresses), startNode('node-3', n1.addresses)])
  for (const n of nodes) log(`  ${n.label}  pid ${n.pid}  ${n.nodeId}`)
  await until(
    async () => {
      await poll()
      return nodes.every(
        (n) => statusOf.get(n)?.status.members.filter((m) => m.status === 'alive').length === 3,
      )
    },
    20_000,
    'the 3 nodes to see each other',
  )
  log(`  every node sees 3 alive members (${secs(performance.now() - t0)} since the demo started)`)

  phase(`starting ${fmt(N)} counters from node-1 (horde.startChild, 32 at a time)`)
  const started = await n1.call(
    'start',
    { ids, behaviour: 'counter', args: { start: 0 }, concurrency: 32 },
    90_000,
  )
  const share = nodes.map((n) => `${n.label} ${fmt(started.nodes[n.nodeId] ?? 0)}`).join(', ')
  log(`  started in ${secs(started.ms)}; the strategy placed them: ${share}`)

  const messages = ids.reduce((sum, _, i) => sum + increments(i), 0)
  phase(`sending ${fmt(messages)} increments from node-1 through horde.ref (counter i gets i % 7 + 1)`)
  const tSend = performance.now()
  await n1.call('send', { entries: ids.map((id, i) => [id, { add: 1 }, increments(i)]) })
  let before
  await until(
    async () => {
      before = await counts(n1, ids)
      return ids.every((id, i) => before.get(id) === increments(i))
    },
    20_000,
    'every counter to report its increments',
    100,
  )
  log(
    `  all ${fmt(N)} counters report their count, queried from node-1 through refs: ${secs(performance.now() - tSend)}`,
  )

  // ——— SIGKILL ———
  const p1 = await placement(nodes)
  if (!(await exactlyOnce(nodes))) throw new Error('before the kill, some counter did not run exactly once')
  const onN3 = ids.filter((id) => p1.get(id)?.[0] === 'node-3')
  phase(`SIGKILL node-3 (pid ${n3.pid}), which runs ${fmt(onN3.length)} counters: failover`)
  const tKill = performance.now()
  n3.kill()
  await until(() => exactlyOnce([n1, n2]), FAILURE_TIMEOUT + 15_000, 'the failover', 10)
  const failoverMs = performance.now() - tKill
  await poll()
  const p2 = await placement([n1, n2])
  const took = (label) => onN3.filter((id) => p2.get(id)?.[0] === label).length
  log(
    `  all ${fmt(N)} counters run again, each exactly once, ${secs(failoverMs)} after the SIGKILL ` +
      `(node-1 took ${fmt(took('node-1'))}, node-2 took ${fmt(took('node-2'))})`,
  )
  log(
    `  (the killed process's TCP connections closed at once, so the survivors knew without waiting ` +
      `for the ${FAILURE_TIMEOUT} ms failure timeout, which is for nodes that go silent)`,
  )
  log(`  node-3's counters restarted from init (count 0): a crash loses state, by design`)

  // ——— graceful stop ———
  const onN2 = ids.filter((id) => p2.get(id)?.[0] === 'node-2')
  const handed = await counts(n1, onN2)
  phase(`SIGTERM node-2, which runs ${fmt(onN2.length)} counters: graceful stop, handoff with state`)
  const tStop = performance.now()
  n2.terminate()
  const exit = await Promise.race([
    n2.exited,
    new Promise((_, reject) =>
      setTimeout(() => reject(new Error('node-2 did not exit within 20 s')), 20_000),
    ),
  ])
  await until(() => exactlyOnce([n1]), 10_000, 'node-1 to run every counter', 10)
  await poll()
  log(
    `  node-2 handed off its counters and exited with code ${exit.code ?? exit.signal}; ` +
      `node-1 runs all ${fmt(N)}: ${secs(performance.now() - tStop)} after the SIGTERM`,
  )

  // ——— verification ———
  phase('verifying')
  const after = await counts(n1, ids)
  const lost = new Set(onN3)
  const wrong = (which, expect) => which.filter((id) => after.get(id) !== expect(id))
  const kept = ids.filter((id) => !lost.has(id))
  const checks = [
    [
      `every one of the ${fmt(N)} counters runs exactly once (all on node-1, the last node)`,
      (await exactlyOnce([n1])) ? [] : ['placement'],
    ],
    [
      `${fmt(kept.length)} counters never on the killed node kept their counts (i % 7 + 1)`,
      wrong(kept, (id) => increments(indexOf.get(id))),
    ],
    [
      `${fmt(onN2.length)} counters handed off by node-2 kept the counts they had before the SIGTERM`,
      wrong(onN2, (id) => handed.get(id)),
    ],
    [
      `${fmt(onN3.length)} counters of the SIGKILLed node-3 restarted from init and read 0 (their state died with the node)`,
      wrong(onN3, () => 0),
    ],
    [`node-2 exited with code 0 after its graceful stop`, exit.code === 0 ? [] : ['exit code']],
  ]
  let failed = 0
  for (const [what, bad] of checks) {
    if (bad.length === 0) log(`  ✓ ${what}`)
    else {
      failed++
      const sample = bad
        .slice(0, 5)
        .map((id) => `${id}=${after.get(id)}`)
        .join(', ')
      log(`  ✗ ${what}: ${bad.length} wrong (${sample})`)
    }
  }

  phase('what `nact-horde status` prints for the cluster now')
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [CLI, 'status', '--name', NAME, '--connect', n1.addresses[0]],
    { env: { ...process.env, NACT_HORDE_CLUSTER_KEY: clusterKey }, timeout: 15_000 },
  )
  for (const line of stdout.trimEnd().split('\n')) log(`  ${line}`)

  phase('stopping node-1')
  n1.terminate()
  await n1.exited
  clearInterval(poller)
  await poll()
  view.close()

  const total = performance.now() - t0
  log()
  if (failed > 0) {
    log(`VERIFICATION FAILED: ${failed} of ${checks.length} checks (${secs(total)})`)
    return 1
  }
  log(
    `VERIFICATION PASSED: ${fmt(N)} counters, each running exactly once; failover ${secs(failoverMs)}; ` +
      `counts preserved wherever the design promises it; demo took ${secs(total)}`,
  )
  return 0
}

main().then(
  async (code) => {
    if (interrupted) return
    await killAll()
    process.exit(code)
  },
  (err) => fail(err),
)
