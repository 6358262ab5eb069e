// Real-network figures that the network suite (`npm run test:network`) does not measure, because
// they take too long for CI: reconnect and exactly-once times after partitions of 10 s and 60 s
// with the transport's default redial settings, and startChild p50/p99 with 5 % packet loss and
// with 50 ms of emulated delay against a baseline measured in the same run.
//
// Each node is a separate process in its own network namespace on one bridge (bench/lib/netns.mjs);
// partitions and loss are iptables rules inside those namespaces (DROP on arrival; loss with the
// statistic match), delay a user-space proxy (bench/lib/delay-proxy.mjs; this kernel has no
// netem). Nothing outside the namespaces is touched, and they are deleted at the end, on a
// failure and on a signal. Needs root, `ip` and `iptables`.
//
// `node bench/run.mjs network` (after `npx turbo run build`); about 3 to 4 minutes.
import { loadavg } from 'node:os'
import { DEFAULT_DIAL_TIMEOUT, DEFAULT_REDIAL_MAX_DELAY } from '@nact-horde/transport'
import { exactlyOnce, killAll, spawnNode } from '../packages/nact-horde/test/fixtures/horde-process.mjs'
import { createNetwork, netnsUnavailable } from './lib/netns.mjs'
import { machine, recordSection, table } from './lib/results.mjs'

const FAILURE_TIMEOUT = 1000
const NODE = { failureTimeout: FAILURE_TIMEOUT, syncInterval: 200 }
/** Children running before the partitions (the exactly-once check is over these). */
const CHILDREN = 30
/** Partition lengths, ms, one after another on the same cluster (each length more than once: one sample says little). */
const PARTITIONS = [10_000, 10_000, 10_000, 60_000, 60_000]
/** Goal of issue 12: one cluster again within the redial cap + 5 s of the heal. */
const RECONNECT_GOAL = DEFAULT_REDIAL_MAX_DELAY + 5000
const LOSS = 0.05
const DELAY_MS = 50
/** Sequential startChild calls timed per condition (after a warm-up that is not counted). */
const STARTS = 300
const STARTS_DELAYED = 200
const WARMUP = 100
/** Fixed listen port: the delay proxy's rules need it known in advance. */
const PORT = 4001

const fmtMs = (x) => (x === undefined ? 'never' : `${x < 10 ? x.toFixed(2) : x.toFixed(0)} ms`)
const fmtS = (x) => (x === undefined ? 'never' : `${(x / 1000).toFixed(2)} s`)
const log = (...a) => console.log('[network bench]', ...a)
const sleep = (t) => new Promise((r) => setTimeout(r, t))

const why = netnsUnavailable()
if (why !== undefined) {
  console.error(
    `[network bench] needs Linux network namespaces and iptables as root, and cannot run here: ${why}. ` +
      'Run it as root (`sudo node bench/run.mjs network`); nothing was measured.',
  )
  process.exit(1)
}

/** Polls `pred` every `every` ms; resolves with Date.now() when it first held, or undefined after `timeout` ms. */
async function until(pred, timeout, every = 20) {
  const deadline = Date.now() + timeout
  for (;;) {
    if (await pred()) return Date.now()
    if (Date.now() > deadline) return undefined
    await sleep(every)
  }
}

/** Nearest-rank percentile of `xs` (p in (0, 1]). */
function pct(xs, p) {
  const sorted = [...xs].sort((a, b) => a - b)
  return sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)]
}

/**
 * `n` nodes in a new network of `n + extra` namespaces, every node seeing every node alive;
 * nodes sorted by id, each with `netIndex` (its namespace) for the fault helpers. `listen(i, net)`
 * overrides the listen address; `prepare(net)` runs before any node starts.
 */
async function cluster(n, { extra = 0, listen, prepare } = {}) {
  const net = createNetwork(n + extra)
  try {
    const prepared = await prepare?.(net)
    const at = (i) => ({ ...NODE, listen: listen?.(i, net) ?? net.listen(i) })
    const seed = await spawnNode(at(0), { netns: net.ns(0) })
    const rest = await Promise.all(
      Array.from({ length: n - 1 }, (_, k) =>
        spawnNode({ ...at(k + 1), bootstrap: seed.addresses }, { netns: net.ns(k + 1) }),
      ),
    )
    const spawned = [seed, ...rest]
    for (const [i, node] of spawned.entries()) node.netIndex = i
    await Promise.all(spawned.map((x) => x.call('awaitAlive', { n, timeout: 30_000 })))
    const nodes = [...spawned].sort((x, y) => (x.nodeId < y.nodeId ? -1 : 1))
    return { net, nodes, seed, prepared }
  } catch (err) {
    await killAll()
    net.destroy()
    throw err
  }
}

async function teardown(c) {
  await killAll()
  c?.net.destroy()
}

/** Whether every node of `nodes` lists all of them alive. */
async function oneCluster(nodes) {
  const views = await Promise.all(nodes.map((x) => x.call('members', {}, 5000).catch(() => [])))
  return views.every((v) => nodes.every((x) => v.some((m) => m.nodeId === x.nodeId && m.status === 'alive')))
}

/** Every child id started in the current cluster, for the exactly-once checks. */
let started = []

/** `n` sequential startChild calls from `from`, ids `prefix-<i>`; the ms each took. */
async function timedStarts(from, prefix, n) {
  const r = await from.call('start', { n, prefix, behaviour: 'plain', each: true }, 600_000)
  started.push(...Array.from({ length: n }, (_, i) => `${prefix}-${i}`))
  return r.each
}

/** member:down events on `nodes` since `since` (an hrtime bigint of this process; clocks are shared). */
async function downsSince(nodes, since) {
  const tls = await Promise.all(nodes.map((x) => x.call('timeline', { since: String(since) })))
  return tls.reduce((k, tl) => k + tl.members.filter((e) => e.type === 'down').length, 0)
}

/** startChild latency figures of one condition. */
const startFigures = new Map()
function recordStarts(name, each, extra = '') {
  const f = { n: each.length, p50: pct(each, 0.5), p99: pct(each, 0.99), max: Math.max(...each), extra }
  startFigures.set(name, f)
  log(`startChild ${name}: p50 ${fmtMs(f.p50)}, p99 ${fmtMs(f.p99)}, max ${fmtMs(f.max)} over ${f.n}${extra}`)
}

/** Partition figures: [length, downed, healed→one cluster, healed→exactly once]. */
const partitionRows = []
const notes = []
const loadStart = loadavg()[0]
const began = Date.now()

let c
try {
  // 1. One cluster of 3 with the transport's default redial settings: startChild without faults,
  // then with 5 % loss, then partitions of 10 s and 60 s.
  c = await cluster(3)
  const { nodes, net, seed } = c
  started = Array.from({ length: CHILDREN }, (_, i) => `p-${i}`)
  await seed.call('start', { ids: started, behaviour: 'plain' }, 60_000)
  if ((await until(() => exactlyOnce(nodes, started), 10_000)) === undefined)
    throw new Error('the children did not come to run exactly once')
  // The JIT compiles what is hot: the first calls are not what a running node sees.
  await timedStarts(seed, 'warm', WARMUP)

  recordStarts('baseline', await timedStarts(seed, 'base', STARTS))

  const lossFrom = process.hrtime.bigint()
  net.lose(LOSS)
  const lossy = await timedStarts(seed, 'loss', STARTS)
  const { arrived, dropped } = net.lossCounts()
  net.heal()
  const lossDowns = await downsSince(nodes, lossFrom)
  const rate = arrived === 0 ? 0 : dropped / arrived
  recordStarts(
    `${LOSS * 100} % loss`,
    lossy,
    `; ${dropped} of ${arrived} packets dropped (${(rate * 100).toFixed(1)} %); ${lossDowns} member:down events`,
  )
  if (arrived === 0 || dropped === 0)
    throw new Error(
      `the loss rules dropped ${dropped} of ${arrived} packets: the statistic match did nothing`,
    )
  if ((await until(() => oneCluster(nodes), 30_000)) === undefined)
    throw new Error('the cluster did not come back together after the loss phase')
  if ((await until(() => exactlyOnce(nodes, started), 20_000)) === undefined)
    throw new Error('the children did not run exactly once after the loss phase')
  // Whether the load of the machine moved between the conditions.
  recordStarts('baseline, again after the loss', await timedStarts(seed, 'base2', STARTS))

  // Partitions: the highest id (not the coordinator in most views) cut off from the other two.
  const victim = nodes[2]
  const majority = nodes.slice(0, 2)
  for (const length of PARTITIONS) {
    const isolatedAt = Date.now()
    net.isolate(victim.netIndex)
    const downedAt = await until(
      async () =>
        (await Promise.all(majority.map((x) => x.call('members')))).every((v) =>
          v.some((m) => m.nodeId === victim.nodeId && m.status === 'dead'),
        ),
      Math.min(length, FAILURE_TIMEOUT + 8000),
      50,
    )
    // The rest of the partition: the fault lasts this long, there is nothing to wait for but time.
    await sleep(Math.max(0, isolatedAt + length - Date.now()))
    const healedAt = Date.now()
    net.heal()
    const joinedAt = await until(() => oneCluster(nodes), RECONNECT_GOAL + 30_000)
    const onceAt = joinedAt === undefined ? undefined : await until(() => exactlyOnce(nodes, started), 20_000)
    const row = {
      lasted: healedAt - isolatedAt,
      downed: downedAt === undefined ? undefined : downedAt - isolatedAt,
      joined: joinedAt === undefined ? undefined : joinedAt - healedAt,
      once: onceAt === undefined ? undefined : onceAt - healedAt,
    }
    partitionRows.push(row)
    log(
      `partition of ${fmtS(row.lasted)}: downed by the majority after ${fmtMs(row.downed)}; ` +
        `one cluster ${fmtMs(row.joined)} after the heal, exactly once after ${fmtMs(row.once)}`,
    )
    if (joinedAt === undefined || onceAt === undefined) break
  }
  await teardown(c)
  c = undefined

  // 2. The same through the delay proxy (a fourth namespace), at 0 ms (what the proxy's own hop
  // costs) and at 50 ms each way.
  for (const delayMs of [0, DELAY_MS]) {
    c = await cluster(3, {
      extra: 1,
      listen: (i, n) => [`/ip4/${n.address(i)}/tcp/${PORT}`],
      prepare: (n) => n.delayThrough(3, { delayMs, port: PORT }),
    })
    // Every node-to-node connection is dialled through the proxy (nat rules in each node's
    // namespace); one per pair at least must have passed it, or the delay would be a fiction. A
    // node that only dialled (nobody dialled it) has no connection of its own in the count.
    const through = [...c.prepared.connections.values()].reduce((a, b) => a + b, 0)
    if (through < 3) throw new Error(`only ${through} connections passed through the proxy, 3 pairs of nodes`)
    await timedStarts(c.seed, 'warm', delayMs === 0 ? WARMUP : 20)
    const n = delayMs === 0 ? STARTS : STARTS_DELAYED
    recordStarts(`proxy, ${delayMs} ms each way`, await timedStarts(c.seed, 'd', n))
    await teardown(c)
    c = undefined
  }
} finally {
  await teardown(c)
}

const base = startFigures.get('baseline')
const ratio = (f) => `× ${(f.p50 / base.p50).toFixed(1)} / × ${(f.p99 / base.p99).toFixed(1)}`
const startHeader = [
  'startChild, sequential from one node of 3',
  'calls',
  'p50',
  'p99',
  'max',
  'p50 / p99 vs baseline',
]
const startRows = [...startFigures].map(([name, f]) => [
  name,
  String(f.n),
  fmtMs(f.p50),
  fmtMs(f.p99),
  fmtMs(f.max),
  name === 'baseline' ? '—' : ratio(f),
])
const partHeader = [
  'partition (1 of 3 cut off)',
  'downed by the majority',
  'heal → one cluster',
  'heal → exactly once',
  `goal ≤ ${fmtS(RECONNECT_GOAL)}`,
]
const partRows = partitionRows.map((r) => [
  fmtS(r.lasted),
  fmtMs(r.downed),
  fmtMs(r.joined),
  fmtMs(r.once),
  r.joined !== undefined && r.joined <= RECONNECT_GOAL ? 'yes' : '**no**',
])
const loss = startFigures.get(`${LOSS * 100} % loss`)
if (loss !== undefined) notes.push(`Loss phase: ${loss.extra.slice(2)}.`)
const loadEnd = loadavg()[0]
console.log(`\n${table(partHeader, partRows)}\n\n${table(startHeader, startRows)}\n`)
for (const n of notes) console.log(`- ${n}`)
recordSection(
  'network-bench',
  [
    '## network-bench',
    '',
    `Machine: ${machine()}. Written by \`node bench/run.mjs network\` (bench/network.bench.mjs; not part of CI) in ${fmtS(Date.now() - began)}. ` +
      `Each node a separate process in its own network namespace on one bridge, libp2p TCP; the transport's default redial settings ` +
      `(redialMaxDelay ${DEFAULT_REDIAL_MAX_DELAY} ms, dialTimeout ${DEFAULT_DIAL_TIMEOUT} ms); failureTimeout ${FAILURE_TIMEOUT} ms, syncInterval 200 ms. ` +
      `Partitions: every packet to and from the highest-id node dropped on arrival (iptables DROP), then the rules removed; ` +
      `"one cluster" is every node listing every node alive, "exactly once" every child started (${CHILDREN}, then the ${WARMUP + 3 * STARTS} of the startChild figures) running on exactly one node (each node's own list). ` +
      `startChild: the time of each sequential call from the seed (two thirds go to another node), after ${WARMUP} calls not counted; ` +
      `loss is iptables' statistic match (random, p = ${LOSS}) on every packet arriving at a node from the bridge; ` +
      `delay is a user-space proxy in a fourth namespace delaying each chunk each way, so every node-to-node connection passes it (the 0 ms row is the proxy's own cost). ` +
      `Load average: ${loadStart.toFixed(2)} at the start, ${loadEnd.toFixed(2)} at the end (a shared 2-core machine: figures vary between runs).`,
    '',
    table(partHeader, partRows),
    '',
    table(startHeader, startRows),
    ...(notes.length > 0 ? ['', ...notes.map((n) => `- ${n}`)] : []),
  ].join('\n'),
)
if (partitionRows.length < PARTITIONS.length || partitionRows.some((r) => r.once === undefined))
  process.exit(1)
