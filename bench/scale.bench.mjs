// Replication that scales with the cluster (issue 11): what a start costs the whole cluster as
// it grows (and, for comparison, what a request and its reply cost the transport alone as they
// are spread over more processes on this host), how fast 24 processes mesh and how quiet they
// are at idle, a node joining 3 nodes that hold 100,000 children, 10,000 node restarts on the
// memory network, and the failover of a node holding a third of 100,000 children.
//
//   node bench/run.mjs scale                        every section (after `npx turbo run build`)
//   node bench/scale.bench.mjs join failover        only those sections (cpu, mesh, join, restarts, failover)
//   SCALE_QUICK=1 node bench/scale.bench.mjs        a small smoke run of every section (< 2 min), not recorded
//   SCALE_300K=1                                    the join section also with 300,000 children
//   SCALE_CPU_SIZES=3,10                            the cluster sizes of the cpu section (the first is the base of the ratios)
//   SCALE_CPU_ROUNDS=3                              rounds of the cpu section (each size once per round; medians are compared)
//   SCALE_WARM=500                                  sequential starts that warm each cluster of the cpu section up
//   SCALE_CPU_OWNERS=3                              the cpu section's second placement: every start on the first k members (0: none)
//   SCALE_RESTART_BUDGET_S=1800                     the restarts section stops after this long, reporting how far it got
//   SCALE_FAILOVER_TRIALS=3                         failovers of the failover section, each on a fresh cluster (the median is judged)
//   SCALE_PROFILE=/tmp/prof                         CPU profiles (.cpuprofile) of every node during the cpu section's sequential
//                                                   run (node 0 drives it), of the old nodes during a join's window and of the
//                                                   survivors during a failover, written to that directory (they slow the
//                                                   nodes down: figures of such a run are not recorded)
//
// Nodes run in separate processes on 127.0.0.1 (libp2p TCP), driven over IPC
// (packages/nact-horde/test/fixtures/horde-process.mjs); the restarts run in this process on
// the in-memory network. Times come from the nodes' own monotonic clocks (process.hrtime,
// shared by every process on the machine). Every figure is a ratio or a time within one run;
// each section records its own part of bench/RESULTS.md (scale-cpu, scale-mesh, …), so
// sections run on different days do not overwrite each other.
import { loadavg } from 'node:os'
import { createMemoryNetwork } from '@nact-horde/transport'
import nact from 'nact'
import { startHorde } from 'nact-horde'
import {
  duplicatesIn,
  GroundTruth,
  hrNow,
  killAll,
  placement,
  spawnNode,
  waitFor,
} from '../packages/nact-horde/test/fixtures/horde-process.mjs'
import { machine, recordSection, table } from './lib/results.mjs'
import { spawnTransportNode } from './lib/transport-node.mjs'

const QUICK = process.env.SCALE_QUICK === '1'

/** The whole number `name` of the environment, at least `min` (`fallback` when unset). */
function envCount(name, fallback, min = 1) {
  const raw = process.env[name]
  const n = raw === undefined ? fallback : Number(raw)
  if (!Number.isInteger(n) || n < min)
    throw new Error(`${name} must be a whole number of at least ${min} (got ${raw})`)
  return n
}
const ALL_SECTIONS = ['cpu', 'mesh', 'join', 'restarts', 'failover']
const asked = process.argv.slice(2)
for (const s of asked)
  if (!ALL_SECTIONS.includes(s))
    throw new Error(`unknown section '${s}': use some of ${ALL_SECTIONS.join(', ')}`)
const SECTIONS = asked.length > 0 ? asked : ALL_SECTIONS

const FAILURE_TIMEOUT = 1000
const NODE = { failureTimeout: FAILURE_TIMEOUT, syncInterval: 200 }
/**
 * The mesh section runs the horde's defaults, without the fixture's stall sampler (a timer and
 * a process.cpuUsage() every 10 ms in each of 24 processes sharing the cores): it reports no
 * stall, the transport-alone fixture it is compared with has none, and a deployment runs none.
 */
const MESH_NODE = { failureTimeout: 3000, syncInterval: 1000, stallSampler: false }
/** Sizes of the full run and of the smoke run (SCALE_QUICK=1). */
const CFG = QUICK
  ? {
      cpuSizes: [3, 5],
      cpuRounds: 1,
      warm: 100,
      owners: 3,
      seq: 200,
      par: 200,
      idleWindow: [2000, 4000],
      meshNodes: 5,
      idleMs: 2000,
      joinSizes: [2000],
      restarts: 50,
      restartMarks: [10, 50],
      failoverChildren: 2000,
      failoverTrials: 1,
    }
  : {
      cpuSizes: process.env.SCALE_CPU_SIZES?.split(',').map(Number) ?? [3, 10, 24],
      cpuRounds: envCount('SCALE_CPU_ROUNDS', 3),
      warm: envCount('SCALE_WARM', 500, 2),
      owners: envCount('SCALE_CPU_OWNERS', 3, 0),
      seq: 2000,
      par: 2000,
      idleWindow: [5000, 30_000],
      meshNodes: 24,
      idleMs: 10_000,
      joinSizes: process.env.SCALE_300K === '1' ? [100_000, 300_000] : [100_000],
      restarts: 10_000,
      restartMarks: [1000, 10_000],
      failoverChildren: 100_000,
      failoverTrials: envCount('SCALE_FAILOVER_TRIALS', 3),
    }
if (!CFG.cpuSizes.every((n) => Number.isInteger(n) && n >= 2))
  throw new Error(
    `SCALE_CPU_SIZES must list cluster sizes of at least 2, like 3,10,24 (got ${process.env.SCALE_CPU_SIZES})`,
  )
const IN_FLIGHT = 64
/** The mesh section measures idle CPU a second time from this long after the mesh formed. */
const LATE_IDLE_MS = 20_000
/** The CPU window of sequential starts stays open this long after every map places them. */
const RUN_TAIL_MS = 2000
/** The restarts section stops after this long (s), reporting how far it got. */
const RESTART_BUDGET_S = Number(process.env.SCALE_RESTART_BUDGET_S ?? 1800)
/** Ground truth (every node's own list of local children) is sampled this often while a join or failover runs. */
const SAMPLE_MS = 500
/** Where CPU profiles of the measured windows go (SCALE_PROFILE), or undefined. */
const PROFILE_DIR = process.env.SCALE_PROFILE || undefined
/** Starts a CPU profile on each of `nodes` when SCALE_PROFILE is set. */
async function profileStart(nodes) {
  if (PROFILE_DIR !== undefined) await Promise.all(nodes.map((n) => n.call('profile', { action: 'start' })))
}
/** Writes the profiles of `nodes` as `<dir>/<name>-<i>.cpuprofile` when SCALE_PROFILE is set. */
async function profileStop(nodes, name) {
  if (PROFILE_DIR === undefined) return
  const { mkdirSync } = await import('node:fs')
  mkdirSync(PROFILE_DIR, { recursive: true })
  const paths = await Promise.all(
    nodes.map((n, i) =>
      n.call('profile', { action: 'stop', path: `${PROFILE_DIR}/${name}-${i}.cpuprofile` }, 120_000),
    ),
  )
  log(`profiles: ${paths.join(' ')}`)
}
/** How long a join's window stays open after the joiner holds the map (to catch the reconcile that follows). */
const AFTER_JOIN_MS = 3000

const ms = (ns) => Number(ns) / 1e6
const fmtMs = (x) => (Number.isFinite(x) ? `${x.toFixed(0)} ms` : 'not in time')
const fmtS = (x) => (Number.isFinite(x) ? `${(x / 1000).toFixed(2)} s` : 'not in time')
const fmtN = (x) => x.toLocaleString('en')
const fmtB = (x) =>
  x >= 2 ** 20 ? `${(x / 2 ** 20).toFixed(2)} MiB` : x >= 1024 ? `${(x / 1024).toFixed(1)} KiB` : `${x} B`
const log = (...a) => console.log('[scale bench]', ...a)
const sleep = (t) => new Promise((r) => setTimeout(r, t))
const met = (ok) => (ok ? 'yes' : '**no**')
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const sum = (xs) => xs.reduce((a, b) => a + b, 0)
/** The greatest of some bigints (hrtimes); 0n for none. */
function maxBig(xs) {
  let m = 0n
  for (const x of xs) if (x > m) m = x
  return m
}

process.on('exit', () => void killAll())

/** Writes a section of bench/RESULTS.md (not for the smoke run) and prints its table. */
function record(name, title, intro, header, rows, notes = []) {
  const text = [
    `## ${title}`,
    '',
    `Machine: ${machine()}. ${intro} Load average at the end: ${loadavg()[0].toFixed(2)} (a shared 2-core machine: figures vary between runs).`,
    '',
    table(header, rows),
    ...(notes.length > 0 ? ['', ...notes.map((n) => `- ${n}`)] : []),
  ].join('\n')
  console.log(`\n${table(header, rows)}\n${notes.map((n) => `- ${n}`).join('\n')}\n`)
  if (QUICK) log(`SCALE_QUICK: section ${name} not recorded`)
  else if (PROFILE_DIR !== undefined)
    log(`SCALE_PROFILE: section ${name} not recorded (profiled nodes run slower)`)
  else recordSection(name, text)
}

/**
 * `n` node processes: the first, then the others at once bootstrapping from it. Resolves when
 * every node sees all `n` alive, with the hrtime the last became ready and, per node, when it
 * first saw all alive and all `n - 1` peers connected (its own clock; null when not within
 * `meshTimeout` ms, which throws unless `tolerate`).
 */
async function cluster(n, init = NODE, meshTimeout = 120_000, { tolerate = false } = {}) {
  const watch = (node) => ({
    node,
    alive: node
      .call('awaitAlive', { n, timeout: meshTimeout }, meshTimeout + 10_000)
      .then(BigInt, () => null),
    peers: node
      .call('awaitPeers', { n: n - 1, timeout: meshTimeout }, meshTimeout + 10_000)
      .then(BigInt, () => null),
  })
  const first = watch(await spawnNode(init, { timeout: 60_000 }))
  const rest = await Promise.all(
    Array.from({ length: n - 1 }, () =>
      spawnNode({ ...init, bootstrap: first.node.addresses }, { timeout: 120_000 }).then(watch),
    ),
  )
  const all = [first, ...rest]
  const lastReady = maxBig(all.map((w) => w.node.readyAt))
  const alive = await Promise.all(all.map((w) => w.alive))
  const peers = await Promise.all(all.map((w) => w.peers))
  if (!tolerate && alive.some((a) => a === null))
    throw new Error(
      `${alive.filter((a) => a === null).length} of ${n} nodes did not see all alive within ${meshTimeout} ms`,
    )
  return { nodes: all.map((w) => w.node), lastReady, alive, peers }
}

/** Whole-cluster CPU (user + system, µs) used so far by `nodes`' processes. */
async function cpuOf(nodes) {
  const r = await Promise.all(nodes.map((n) => n.call('cpu')))
  return r.map((c) => c.user + c.system)
}

/** Starts every node's event-loop stall figures over. */
const resetLoops = (nodes) => Promise.all(nodes.map((n) => n.call('loop', { reset: true })))
/**
 * The longest event-loop stall (ms) on any of `nodes` since the last reset (a tick of a 10 ms
 * timer that came late, see horde-node.mjs `loop`), and the longest busy part: the CPU the
 * process used during such a stall, at most the stall. The difference is time the OS did not
 * run the process — on this shared 2-core machine, other processes' doing.
 */
const stalls = async (nodes) => worst(await Promise.all(nodes.map((n) => n.call('loop'))))
const worst = (loops) => ({
  stall: Math.max(...loops.map((l) => l.maxStall)),
  busy: Math.max(...loops.map((l) => l.maxBusy)),
})
const fmtStall = (s) => `${fmtMs(s.stall)} (busy ${fmtMs(s.busy)})`
/** What the stall targets are judged on: the busy part (see {@link stalls}). */
const STALL_NOTE =
  "Stall: the longest delay of a 10 ms timer tick on a node; in brackets its busy part, the CPU the process used meanwhile (at most the stall). A stall target is judged on the busy part: the rest is time the OS ran other processes on this shared 2-core machine, not the node's event loop blocked by its own work."

/** Waits until every node's map places `n` children. */
const placedEverywhere = (nodes, n, timeout = 600_000) =>
  Promise.all(nodes.map((x) => x.call('awaitPlaced', { n, timeout, every: 20 }, timeout + 10_000)))

/** Problems with one placement (id → nodes): ids of `all` running nowhere or twice, and strangers. */
function placementProblems(p, all) {
  let missing = 0
  let twice = 0
  for (const id of all) {
    const at = p.get(id)
    if (at === undefined) missing++
    else if (at.length > 1) twice++
  }
  return { missing, twice, extra: p.size - (all.length - missing) }
}

/** 3 nodes (or `n`) running `count` children, started from every node with IN_FLIGHT each in flight. */
async function populated(count, n = 3) {
  const c = await cluster(n)
  const all = Array.from({ length: count }, (_, i) => `k-${i}`)
  const t0 = Date.now()
  const share = Math.ceil(count / n)
  const results = await Promise.all(
    c.nodes.map((node, i) =>
      node.call(
        'startParallel',
        { ids: all.slice(i * share, (i + 1) * share), inFlight: IN_FLIGHT },
        30 * 60_000,
      ),
    ),
  )
  const failed = sum(results.map((r) => r.failed))
  if (failed > 0)
    throw new Error(`${failed} of ${count} starts failed: ${JSON.stringify(results.map((r) => r.errors))}`)
  await placedEverywhere(c.nodes, count)
  const p = placementProblems(await placement(c.nodes), all)
  if (p.missing + p.twice + p.extra > 0) throw new Error(`after populating: ${JSON.stringify(p)}`)
  log(`${n} nodes hold ${fmtN(count)} children (started in ${fmtS(Date.now() - t0)}, exactly once)`)
  return { ...c, all }
}

/** Duplicates over every ground-truth sample: how many samples had one, and distinct ids. */
function duplicatesOver(samples) {
  const ids = new Set()
  let bad = 0
  for (const s of samples) {
    const d = duplicatesIn(s)
    if (d.length > 0) bad++
    for (const id of d) ids.add(id)
  }
  return { samples: samples.length, bad, ids: ids.size }
}

// ——— 1. whole-cluster CPU per start ———

/**
 * The fixture's stall sampler (a timer and a process.cpuUsage() every 10 ms in each node
 * process) is off from the idle window to the end of the sequential run: at 24 nodes it is
 * 2,400 wakeups a second competing for the two cores with the work measured, which a
 * deployment does not run. While it ran through both (runs recorded before 5f4cc83), its own
 * CPU was subtracted with the idle, but not the contention it added to the run.
 */
const CPU_SAMPLER_NOTE =
  "The fixture's stall sampler is off from the idle window to the end of the sequential run (at 24 nodes it is 2,400 wakeups a second competing with the work measured) and on for the starts in flight, whose stalls are shown."

/** Anti-entropy exchanges so far, all `nodes` together (metrics count each at both ends). */
async function syncExchanges(nodes) {
  return sum((await Promise.all(nodes.map((x) => x.call('metrics')))).map((m) => m.syncRounds)) / 2
}

/** How the cpu section names a cluster size, with the starts on `owners` members or (undefined) on all. */
const cpuLabel = (n, owners) => (owners === undefined ? `${n} nodes` : `${n} nodes, starts on ${owners}`)

/**
 * One measurement of the CPU per start of a fresh `n`-node cluster (see sectionCpu). With
 * `owners`, every child is placed on one of the first `owners` members by node id
 * (horde-node.mjs `init.owners`) instead of uniformly over all.
 */
async function measureCpu(n, round, owners) {
  const t0 = Date.now()
  const label = cpuLabel(n, owners)
  log(`cpu: ${label}, round ${round}…`)
  const loadBefore = loadavg()[0]
  try {
    const { nodes } = await cluster(n, owners === undefined ? NODE : { ...NODE, owners })
    const driver = nodes[0]
    // Warm-up: V8 optimises only hot functions; the first starts of fresh processes run
    // partly unoptimised code next to the compiler. The second half's time predicts the run's.
    const half = Math.floor(CFG.warm / 2)
    // Sequential starts are startParallel with one in flight: a failed start is counted, not fatal.
    const w1 = await driver.call('startParallel', { n: half, prefix: `w${n}`, inFlight: 1 }, 600_000)
    const warm = await driver.call(
      'startParallel',
      { n: CFG.warm - half, prefix: `w${n}`, from: half, inFlight: 1 },
      600_000,
    )
    let placed = CFG.warm - w1.failed - warm.failed
    // Anti-entropy after a burst: from the warm-up's last start to the end of the idle window.
    const warmEnd = await syncExchanges(nodes)
    await placedEverywhere(nodes, placed, 120_000)
    await sleep(2000) // anti-entropy rounds after the warm-up end
    // The stall sampler stays off through the idle window and the sequential run (see
    // CPU_SAMPLER_NOTE); on again for the starts in flight, whose stalls are reported.
    await Promise.all(nodes.map((x) => x.call('loop', { enable: false })))
    // Idle CPU of this same cluster, over a window as long as the warm-up predicts the run
    // (within CFG.idleWindow); subtracted from the run as a rate.
    const [minIdle, maxIdle] = CFG.idleWindow
    const idleMs = Math.min(maxIdle, Math.max(minIdle, (warm.ms * CFG.seq) / (CFG.warm - half)))
    const i0 = await cpuOf(nodes)
    const it0 = hrNow()
    await sleep(idleMs)
    const i1 = await cpuOf(nodes)
    const idleWall = ms(hrNow() - it0)
    const idleCpu = sum(i1) - sum(i0)
    // The run: sequential starts from one node, until every map places them all.
    const sync0 = await syncExchanges(nodes)
    await profileStart(nodes)
    const c0 = await cpuOf(nodes)
    const rt0 = hrNow()
    const seq = await driver.call('startParallel', { n: CFG.seq, prefix: `s${n}`, inFlight: 1 }, 1_800_000)
    placed += CFG.seq - seq.failed
    await placedEverywhere(nodes, placed, 120_000)
    await sleep(RUN_TAIL_MS) // the anti-entropy rounds that follow the writes are part of their cost
    const c1 = await cpuOf(nodes)
    const runWall = ms(hrNow() - rt0)
    await profileStop(nodes, `cpu-${n}-r${round}`)
    const exchanges = (await syncExchanges(nodes)) - sync0
    const runCpu = sum(c1) - sum(c0)
    const netCpu = runCpu - idleCpu * (runWall / idleWall)
    // Where the run's CPU went, net of each node's own idle rate: the driver, the busiest other
    // node (the coordinator relays child-record gossip), and the median of the rest.
    const netOf = (i) => (c1[i] - c0[i] - (i1[i] - i0[i]) * (runWall / idleWall)) / 1000
    const others = nodes
      .map((_, i) => netOf(i))
      .slice(1)
      .sort((a, b) => a - b)
    const byRole = {
      driver: netOf(0),
      busiest: others.at(-1),
      median: others[others.length >> 1],
    }
    // Per successful start (a failed one costs too, but made nothing).
    const perStart = netCpu / (CFG.seq - seq.failed) / 1000
    // With IN_FLIGHT in flight from the same node.
    await Promise.all(nodes.map((x) => x.call('loop', { enable: true, reset: true })))
    const par = await driver.call(
      'startParallel',
      { n: CFG.par, prefix: `p${n}`, inFlight: IN_FLIGHT },
      1_800_000,
    )
    placed += CFG.par - par.failed
    await placedEverywhere(nodes, placed, 120_000)
    const parStall = await stalls(nodes)
    // Where the run's children went: how many nodes ran any, and whether the driver did.
    const { children } = await driver.call('metrics')
    const r = {
      n,
      owners,
      label,
      round,
      perStart,
      hosts: Object.values(children.perNode).filter((k) => k > 0).length,
      driverHosts: children.local > 0,
      grossPerStart: runCpu / (CFG.seq - seq.failed) / 1000,
      exchangesPerStart: exchanges / (CFG.seq - seq.failed),
      afterBurst: Math.round(sync0 - warmEnd),
      failed: { warm: w1.failed + warm.failed, seq: seq.failed, par: par.failed },
      errors: { ...w1.errors, ...warm.errors, ...seq.errors, ...par.errors },
      idlePct: (idleCpu / 1000 / idleWall / n) * 100,
      idleWall,
      seqMs: seq.ms,
      runWall,
      p50: par.p50,
      p99: par.p99,
      parMs: par.ms,
      parStall,
      byRole,
      took: Date.now() - t0,
      load: `${loadBefore.toFixed(1)} → ${loadavg()[0].toFixed(1)}`,
    }
    log(
      `cpu: ${label}, round ${round}: ${perStart.toFixed(2)} ms CPU per start (children on ${r.hosts} nodes, the driver ${r.driverHosts ? 'among them' : 'not among them'}; gross ${r.grossPerStart.toFixed(2)}; anti-entropy exchanges per start ${r.exchangesPerStart.toFixed(3)}, after the warm-up ${fmtN(r.afterBurst)}; idle ${r.idlePct.toFixed(1)} % per node over ${fmtS(idleWall)}); ${fmtN(CFG.seq)} sequential in ${fmtS(seq.ms)}; ${IN_FLIGHT} in flight: p50 ${par.p50.toFixed(1)} ms, p99 ${par.p99.toFixed(1)} ms; net CPU of the run: driver ${fmtMs(byRole.driver)}, busiest other node ${fmtMs(byRole.busiest)}, median other ${fmtMs(byRole.median)}; max stall in flight ${fmtStall(parStall)}; failed starts ${JSON.stringify(r.failed)} ${JSON.stringify(r.errors)} (section ${fmtS(r.took)})`,
    )
    return r
  } finally {
    await killAll()
  }
}

/** Sequential requests per spread and round in {@link hostSpread}. */
const SPREAD_REQUESTS = QUICK ? 500 : 3000
/** The idle window before each spread's requests in {@link hostSpread}, ms. */
const SPREAD_IDLE_MS = QUICK ? 2000 : 5000
/** How long {@link hostSpread} waits for any one answer of a transport process, ms. */
const SPREAD_ANSWER_MS = 120_000

/**
 * `n` transport processes (bench/fixtures/transport-node.mjs), the first, then the others at
 * once bootstrapping from it, each expecting `n - 1` peers; pushed onto `nodes` as they are
 * forked (the caller kills them) and passed to `onSpawn`. Resolves with their 'ready'
 * messages, each read with `ready` (by default: its next one).
 */
async function spawnTransports(n, init, nodes, { onSpawn = () => {}, ready = (x) => x.next('ready') } = {}) {
  const spawnOne = (opts) => {
    const node = spawnTransportNode(opts, n - 1)
    nodes.push(node)
    onSpawn(node)
    return node
  }
  const first = await ready(spawnOne(init))
  const rest = Array.from({ length: n - 1 }, () => spawnOne({ ...init, bootstrap: first.addresses }))
  return [first, ...(await Promise.all(rest.map(ready)))]
}

/** `p`, or a rejection naming `what` after `ms`. */
function deadline(p, ms, what) {
  let timer
  return Promise.race([
    p,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)
    }),
  ]).finally(() => clearTimeout(timer))
}

/**
 * The transport alone, for comparison with the cpu section's starts (no horde):
 * `n` transport processes (bench/fixtures/transport-node.mjs: libp2p, no horde) meshed, and one
 * of them sending {@link SPREAD_REQUESTS} sequential 64-byte echo requests, each to the next of
 * `k` peers in turn, for each `k` of `spreads` (the peers a start's owner is spread over at a
 * cluster size: size − 1), every spread in turn in each of `rounds` rounds. The same messages in
 * the same cluster: only how many processes take turns answering differs. Per spread, the
 * median over rounds of the CPU per request and reply (µs): every process's process.cpuUsage()
 * over the requests, minus the cluster's idle CPU measured just before (as a rate), divided by
 * the requests; each round's figure; and the median round's gross CPU and wall time per
 * request. A process that exits or does not answer within SPREAD_ANSWER_MS fails the measure.
 */
async function hostSpread(n, spreads, rounds) {
  const nodes = []
  try {
    const init = { failureTimeout: FAILURE_TIMEOUT }
    // A process that exits (a request that failed rejects in its message handler) fails this.
    let exited
    const exit = new Promise((_, reject) => {
      exited = reject
    })
    exit.catch(() => {})
    const answer = (node, type) =>
      deadline(Promise.race([node.next(type), exit]), SPREAD_ANSWER_MS, `a transport process's ${type}`)
    const ready = await spawnTransports(n, init, nodes, {
      onSpawn: (node) => {
        node.child.once('exit', (code, signal) =>
          exited(new Error(`a transport process exited (${code ?? signal})`)),
        )
        // A command sent to a process that has exited fails here, not as an unhandled 'error'.
        node.child.on('error', (err) => exited(err))
      },
      ready: (node) => answer(node, 'ready'),
    })
    await deadline(
      Promise.race([Promise.all(nodes.map((x) => x.next('meshed'))), exit]),
      120_000,
      `${n} transport processes to mesh`,
    )
    const targets = ready.slice(1).map((r) => r.nodeId)
    const cpu = async () => {
      const r = await Promise.all(
        nodes.map((x) => {
          x.send({ cmd: 'cpu' })
          return answer(x, 'cpu')
        }),
      )
      return sum(r.map((c) => c.user + c.system)) / 1000
    }
    const spread = async (k, count) => {
      nodes[0].send({ cmd: 'spread', n: count, size: 64, targets: targets.slice(0, k) })
      return (await answer(nodes[0], 'spread')).ms
    }
    // Warm-up: every process answers (V8 optimises what the requests run).
    await spread(targets.length, SPREAD_REQUESTS)
    const each = new Map(spreads.map((k) => [k, []]))
    for (let round = 1; round <= rounds; round++) {
      for (const k of spreads) {
        const i0 = await cpu()
        const it0 = hrNow()
        await sleep(SPREAD_IDLE_MS)
        const idleRate = ((await cpu()) - i0) / ms(hrNow() - it0)
        const c0 = await cpu()
        const t0 = hrNow()
        await spread(k, SPREAD_REQUESTS)
        const gross = (await cpu()) - c0
        const wall = ms(hrNow() - t0)
        const net = gross - idleRate * wall
        const per = (x) => (x / SPREAD_REQUESTS) * 1000
        each.get(k).push({ net: per(net), gross: per(gross), wall: per(wall) })
      }
    }
    return spreads.map((k) => {
      const xs = each.get(k)
      const mid = [...xs].sort((a, b) => a.net - b.net)[Math.floor((xs.length - 1) / 2)]
      return { k, median: mid.net, gross: mid.gross, wall: mid.wall, each: xs.map((x) => x.net) }
    })
  } finally {
    for (const x of nodes) x.child.kill('SIGKILL')
  }
}

async function sectionCpu() {
  // Rounds of every size in turn, and the median of each size's rounds: the CPU a start takes
  // on this shared host moves between runs (a single 3-node run measured 1.40 and 2.27 ms the
  // same day), and a ratio of two single runs moves with both.
  const runs = []
  const failures = []
  // Each size also with every start on the first CFG.owners members (the same cluster, the
  // same replication; only the processes the starts are spread over differ), in the same round.
  const variants = CFG.cpuSizes.flatMap((n) => [
    { n, owners: undefined },
    ...(CFG.owners > 0 && n > CFG.owners ? [{ n, owners: CFG.owners }] : []),
  ])
  const labelOf = (v) => cpuLabel(v.n, v.owners)
  for (let round = 1; round <= CFG.cpuRounds; round++) {
    for (const v of variants) {
      try {
        runs.push(await measureCpu(v.n, round, v.owners))
      } catch (err) {
        log(`cpu: ${labelOf(v)}, round ${round} failed:`, err)
        failures.push(`${labelOf(v)}, round ${round}: not measured (${err.message})`)
      }
    }
  }
  if (runs.length === 0) throw new Error(`no cluster size measured: ${failures.join('; ')}`)
  // Per size (and placement), the round with the median CPU per start (the lower middle of an
  // even count). A round whose starts all failed has no CPU per start, and is left out.
  const res = []
  for (const v of variants) {
    const rounds = runs.filter((r) => r.label === labelOf(v) && Number.isFinite(r.perStart))
    if (rounds.length === 0) continue
    const byCpu = [...rounds].sort((a, b) => a.perStart - b.perStart)
    res.push({ ...byCpu[Math.floor((byCpu.length - 1) / 2)], rounds })
  }
  const base = res[0]
  const rows = res.map((r) => [
    r.label,
    `${r.perStart.toFixed(2)} ms`,
    r === base ? '1' : `${(r.perStart / base.perStart).toFixed(2)}×`,
    r.rounds
      .map(
        (x) => `${x.perStart.toFixed(2)} (${x.round}${x.owners !== undefined && !x.driverHosts ? '′' : ''})`,
      )
      .join(' / '),
    `${r.grossPerStart.toFixed(2)} ms (idle ${r.idlePct.toFixed(1)} %/node)`,
    r.exchangesPerStart.toFixed(3),
    fmtN(r.afterBurst),
    fmtS(r.seqMs),
    `${r.p50.toFixed(1)} / ${r.p99.toFixed(1)} ms`,
    fmtStall(r.parStall),
    `${r.failed.warm} / ${r.failed.seq} / ${r.failed.par}${Object.keys(r.errors).length > 0 ? ` (${Object.keys(r.errors).join(', ')})` : ''}`,
    r.load,
  ])
  // Targets (issue 11): 10 nodes ≤ 1.5× and 24 nodes ≤ 2.5× the CPU per start at 3.
  const targets = { 10: 1.5, 24: 2.5 }
  // The same ratio within each round, for how much one run's ratio moves.
  const within = (r) => {
    const out = []
    for (let round = 1; round <= CFG.cpuRounds; round++) {
      const a = runs.find((x) => x.label === r.label && x.round === round)
      const b = runs.find((x) => x.label === base.label && x.round === round)
      if (a !== undefined && b !== undefined) out.push(`${(a.perStart / b.perStart).toFixed(2)}×`)
    }
    return out.join(', ')
  }
  const notes = res
    .filter((r) => r.owners === undefined && targets[r.n] !== undefined && base.owners === undefined)
    .map(
      (r) =>
        `${r.n}/${base.n} nodes, medians: ${(r.perStart / base.perStart).toFixed(2)}× (target ≤ ${targets[r.n]}×): met? ${met(r.perStart / base.perStart <= targets[r.n])}; within each round: ${within(r)}`,
    )
  const fewer = res.filter((r) => r.owners !== undefined)
  if (fewer.length > 0 && base.owners === undefined)
    notes.push(
      `**Starts on ${CFG.owners} members**: the same sizes, each cluster placing every child on one of its first ${CFG.owners} members by node id (bench: horde-node.mjs \`init.owners\`; ′ in "each round": the driver was not one of them, so every start went to another node) — the same cluster and membership, every node still receiving and joining every record; what differs is how many processes run the starts, and with it how many nodes write (fewer gossip frames to the relay; the anti-entropy exchanges are in the table). Medians against ${base.n} nodes: ${fewer.map((r) => `${r.n}/${base.n} ${(r.perStart / base.perStart).toFixed(2)}× (within each round: ${within(r)})`).join('; ')}; against the same size with the starts spread over every member: ${fewer
        .map((r) => {
          const all = res.find((x) => x.n === r.n && x.owners === undefined)
          return all === undefined
            ? `${r.n} nodes: not measured`
            : `${r.n} nodes ${(r.perStart / all.perStart).toFixed(2)}×`
        })
        .join(', ')}.`,
    )
  notes.push(...failures)
  // The transport alone (see hostSpread): one request and reply at a time, spread over as many
  // peers as a start's owner is at each size, in one cluster of the largest size.
  const largest = Math.max(...CFG.cpuSizes)
  try {
    const host = await hostSpread(largest, [...new Set(CFG.cpuSizes.map((n) => n - 1))], CFG.cpuRounds)
    const h0 = host[0]
    const spreadText = host
      .map(
        (h) =>
          `${h.k} peer${h.k === 1 ? '' : 's'}: ${h.median.toFixed(0)} µs (${h.each.map((x) => x.toFixed(0)).join(' / ')}; gross ${h.gross.toFixed(0)} µs, ${h.wall.toFixed(0)} µs wall per request)`,
      )
      .join('; ')
    const ratios = host
      .slice(1)
      .map((h) => `${h.k}/${h0.k} peers ${(h.median / h0.median).toFixed(2)}×`)
      .join(', ')
    log(`cpu: the transport alone, ${largest} processes: ${spreadText}`)
    notes.push(
      `**The transport alone**, in the same run: ${largest} transport processes (bench/fixtures/transport-node.mjs, libp2p, no horde) meshed, one sending ${fmtN(SPREAD_REQUESTS)} sequential 64-byte echo requests, each to the next of k peers in turn, every k in each of ${CFG.cpuRounds} round${CFG.cpuRounds === 1 ? '' : 's'} after an idle window of ${fmtS(SPREAD_IDLE_MS)}; CPU of all processes per request and reply, net of that idle CPU, median (each round; the median round's gross CPU and wall time): ${spreadText}. Ratios to ${h0.k} peers: ${ratios}. The same cluster and messages; only how many processes take turns answering differs.`,
    )
  } catch (err) {
    log('cpu: the transport alone failed:', err)
    notes.push(`The transport alone: not measured (${err.message}).`)
  }
  record(
    'scale-cpu',
    'scale: whole-cluster CPU per start',
    `Nodes in separate processes on 127.0.0.1 (libp2p TCP), failureTimeout ${FAILURE_TIMEOUT} ms, syncInterval 200 ms, uniform distribution, passive redistribution${CFG.owners > 0 ? `; each size above ${CFG.owners} also with every start on ${CFG.owners} members (rows "starts on ${CFG.owners}", see the notes)` : ''}. ${CFG.cpuRounds} round${CFG.cpuRounds === 1 ? '' : 's'}, each measuring every size (and placement) in turn on a fresh cluster (${CFG.cpuSizes.join(', ')} nodes); per size, the round with the median CPU per start (the lower of the middle two for an even count) is shown, its other figures too; the ratio is of the medians; "each round" lists every round's CPU per start (round number in brackets). Per cluster size and round: ${fmtN(CFG.warm)} sequential starts from one node as warm-up, then an idle window (as long as the warm-up's second half predicts the run, ${fmtS(CFG.idleWindow[0])} to ${fmtS(CFG.idleWindow[1])}), then ${fmtN(CFG.seq)} sequential starts from that node until every node's map places them and ${fmtS(RUN_TAIL_MS)} more (the anti-entropy that follows); **CPU per start** = the sum of process.cpuUsage() deltas of all node processes over the run, minus the same cluster's idle CPU in the idle window just before (as a rate, times the run's length), divided by the successful starts (a failed start is counted, not retried). **Anti-entropy exchanges per start**: the nodes' syncRounds metric over the same run (a request and its reply count once), divided by the successful starts. **Anti-entropy exchanges after the warm-up**: the same metric from the warm-up's last start to the end of the idle window (the audits that follow a burst of writes, most of them after the run's own window). Then ${fmtN(CFG.par)} starts with ${IN_FLIGHT} in flight from the same node (latency per call). ${CPU_SAMPLER_NOTE} ${STALL_NOTE}`,
    [
      'cluster',
      'CPU per start (net of idle)',
      `ratio to ${base.n}`,
      'each round',
      'gross (idle CPU)',
      'anti-entropy exchanges per start',
      'anti-entropy exchanges after the warm-up',
      `${fmtN(CFG.seq)} sequential`,
      `start p50 / p99, ${IN_FLIGHT} in flight`,
      `max stall, ${IN_FLIGHT} in flight`,
      'failed starts: warm-up / sequential / in flight',
      'load average (1 min), start → end',
    ],
    rows,
    notes,
  )
  return res
}

// ——— 2. 24 processes: mesh and idle ———

/**
 * The same mesh with the transport alone (bench/fixtures/transport-node.mjs: libp2p, no
 * horde): `n` processes, the first, then the others at once bootstrapping from it. Ms from
 * the last one ready to the last one with all `n - 1` peers up (NaN: not within 120 s) — what
 * forming the mesh costs on this host before the horde adds anything.
 */
async function transportMesh(n, init) {
  const nodes = []
  try {
    const ready = await spawnTransports(n, init, nodes)
    const lastReady = maxBig(ready.map((r) => BigInt(r.readyAt)))
    let timer
    const meshedAt = await Promise.race([
      Promise.all(nodes.map((x) => x.next('meshed').then((m) => BigInt(m.at)))),
      new Promise((resolve) => {
        timer = setTimeout(() => resolve(null), 120_000)
      }),
    ])
    clearTimeout(timer)
    return meshedAt === null ? Number.NaN : ms(maxBig(meshedAt) - lastReady)
  } finally {
    for (const x of nodes) x.child.kill('SIGKILL')
  }
}

async function sectionMesh() {
  const n = CFG.meshNodes
  const t0 = Date.now()
  // The transport alone first, on the same host in the same run: the floor under the horde's figure.
  const transportAfter = await transportMesh(n, { failureTimeout: MESH_NODE.failureTimeout })
  log(
    `mesh: the transport alone, ${n} processes: all have all peers ${fmtS(transportAfter)} after the last was ready`,
  )
  await sleep(3000)
  const spawnedAt = hrNow()
  let c
  try {
    // The defaults (failureTimeout 3000 ms, syncInterval 1000 ms): what a deployment runs, and
    // what the idle CPU target is about.
    c = await cluster(n, MESH_NODE, 120_000, { tolerate: true })
  } catch (err) {
    await killAll()
    throw err
  }
  try {
    const { nodes, lastReady, alive, peers } = c
    const aliveAfter = alive.some((a) => a === null)
      ? Number.NaN
      : Math.max(...alive.map((a) => ms(a - lastReady)))
    const peersAfter = peers.some((p) => p === null)
      ? Number.NaN
      : Math.max(...peers.map((p) => ms(p - lastReady)))
    const lastReadyAfter = ms(lastReady - spawnedAt)
    // Where the mesh got to, when it did not form in time.
    const counts = await Promise.all(nodes.map((x) => x.call('peers')))
    const got = (key, of) => {
      const xs = counts.map((c) => c[key])
      return `${Math.min(...xs)} / ${median(xs)} / ${Math.max(...xs)} of ${of}`
    }
    const reached = `peers connected (min / median / max) ${got('peers', n - 1)}; members seen alive ${got('alive', n)}`
    if (alive.some((a) => a === null) || peers.some((p) => p === null)) log(`mesh: after 120 s: ${reached}`)
    log(
      `mesh: ${n} nodes ready ${fmtS(lastReadyAfter)} after the first spawn; all see all alive ${fmtS(aliveAfter)} after the last was ready (all peers connected: ${fmtS(peersAfter)})`,
    )
    // What forming cost: anti-entropy, and members seen down (suspected, or dead by agreement)
    // by any node though none failed.
    const m = await Promise.all(nodes.map((x) => x.call('metrics')))
    const syncBytes = sum(m.map((x) => x.syncBytesSent))
    const exchanges = await syncExchanges(nodes)
    const downs = { suspected: 0, dead: 0 }
    for (const tl of await Promise.all(nodes.map((x) => x.call('timeline', { since: '0' }))))
      for (const e of tl.members) if (e.type === 'down') downs[e.status] = (downs[e.status] ?? 0) + 1
    /** Each node's CPU, % of a core, over CFG.idleMs. */
    const idleWindow = async () => {
      const c0 = await cpuOf(nodes)
      const w0 = hrNow()
      await sleep(CFG.idleMs)
      const c1 = await cpuOf(nodes)
      const wall = ms(hrNow() - w0)
      return c1.map((x, i) => ((x - c0[i]) / 1000 / wall) * 100)
    }
    // Twice: from 5 s after the mesh formed (the target's window), and from LATE_IDLE_MS, once
    // what follows forming (the last anti-entropy audits) has settled.
    await sleep(5000)
    const pct = await idleWindow()
    await sleep(Math.max(0, LATE_IDLE_MS - 5000 - CFG.idleMs))
    const late = await idleWindow()
    log(
      `mesh: idle CPU per node over ${fmtS(CFG.idleMs)}: median ${median(pct).toFixed(2)} %, max ${Math.max(...pct).toFixed(2)} %; from ${fmtS(LATE_IDLE_MS)} after: median ${median(late).toFixed(2)} %, max ${Math.max(...late).toFixed(2)} %; forming: ${fmtN(exchanges)} anti-entropy exchanges, member:down events ${JSON.stringify(downs)} (section ${fmtS(Date.now() - t0)})`,
    )
    record(
      'scale-mesh',
      `scale: ${n} processes mesh and idle`,
      `${n} node processes on 127.0.0.1 (libp2p TCP), the first started, then the other ${n - 1} at once bootstrapping from it; the defaults: failureTimeout ${MESH_NODE.failureTimeout} ms, syncInterval ${MESH_NODE.syncInterval} ms. Mesh times are from the moment the last process had started its horde to the moment the last node saw all ${n} members alive (horde.members()) and all ${n - 1} peers connected (transport.peers()), each on its own clock ("not in time": not within the 120 s the bench waits). The transport alone: the same formation with bench/fixtures/transport-node.mjs (createTransport with the same failureTimeout, no horde), run just before, timed from its last process ready to its last process with all ${n - 1} peers up. Idle CPU: process.cpuUsage() of each node over ${fmtS(CFG.idleMs)}, from 5 s after the mesh formed (the target's window), and again from ${fmtS(LATE_IDLE_MS)} after. The fixture's stall sampler is off from each process's start (it reports nothing here). Anti-entropy and member:down events: every node's metrics and events from its start to the moment the mesh had formed.`,
      ['figure', 'value', 'target', 'met?'],
      [
        ['last process ready, after the first was spawned', fmtS(lastReadyAfter), '', ''],
        [
          `every node sees all ${n} alive, after the last was ready`,
          fmtS(aliveAfter),
          '≤ 10 s',
          met(aliveAfter <= 10_000),
        ],
        [`every node has all ${n - 1} peers connected, after the last was ready`, fmtS(peersAfter), '', ''],
        [
          `the transport alone (libp2p, no horde; same host, same run): every process has all ${n - 1} peers, after the last was ready`,
          fmtS(transportAfter),
          '',
          '',
        ],
        [
          "… the horde's mesh time / the transport's",
          Number.isFinite(aliveAfter / transportAfter)
            ? `${(aliveAfter / transportAfter).toFixed(2)}×`
            : 'n/a',
          '',
          '',
        ],
        ['where the mesh stood when it was measured (after it formed, or after 120 s)', reached, '', ''],
        [
          'idle CPU per node, median (max)',
          `${median(pct).toFixed(2)} % (${Math.max(...pct).toFixed(2)} %)`,
          '≤ 3 %',
          met(Math.max(...pct) <= 3),
        ],
        [
          `… from ${fmtS(LATE_IDLE_MS)} after the mesh formed, median (max)`,
          `${median(late).toFixed(2)} % (${Math.max(...late).toFixed(2)} %)`,
          '',
          '',
        ],
        [
          'while forming, all nodes: anti-entropy bytes sent / exchanges',
          `${fmtB(syncBytes)} / ${fmtN(exchanges)}`,
          '',
          '',
        ],
        [
          'while forming, all nodes: member:down events (suspected / dead), no node having failed',
          `${downs.suspected} / ${downs.dead}`,
          '',
          '',
        ],
      ],
    )
    return { aliveAfter, peersAfter, pct }
  } finally {
    await killAll()
  }
}

// ——— 3. a 4th node joins 3 holding many children ———

async function joinOnce(count) {
  const t0 = Date.now()
  const c = await populated(count)
  const old = c.nodes
  try {
    // Let anti-entropy finish, then the state's encoded size (on an old node, before the window:
    // encoding a large map takes a while).
    await sleep(3000)
    const rep = await old[0].call('replica', { encode: true }, 120_000)
    log(
      `join: the state is ${fmtB(rep.encoded)} encoded (${fmtN(rep.keys)} keys, ${rep.replicas} replica ids; encoded in ${fmtMs(rep.encodeMs)})`,
    )
    const heapOld = await old[0].call('memory')
    // Ground truth from here on; what its samples cost a node (after the first, which sends
    // every id: later ones send what changed) is measured over a few before the join.
    const gt = new GroundTruth([...old], SAMPLE_MS, { diff: true }).start()
    await waitFor(() => gt.samples.length >= 1, 60_000, 'the first ground-truth sample')
    await resetLoops(old)
    await waitFor(() => gt.samples.length >= 4, 60_000, 'three more ground-truth samples')
    const sampleCost = await stalls(old)
    await Promise.all(old.map((n) => n.call('memberWatch', { action: 'start' })))
    await resetLoops(old)
    await profileStart(old)
    const forkedAt = hrNow()
    const joiner = await spawnNode({ ...NODE, bootstrap: old[0].addresses }, { timeout: 120_000 })
    const watching = joiner.call('memberWatch', { action: 'start' })
    // Stalls while the joiner started its horde (module loading excluded), then from ready on.
    const joinerStart = await joiner.call('loop', { reset: true })
    const full = joiner
      .call('awaitPlaced', { n: count, timeout: 300_000, every: 5 }, 310_000)
      .then(BigInt, () => null)
    gt.nodes.push(joiner)
    await watching
    const fullAt = await full
    const fullAfter = fullAt === null ? Number.NaN : ms(fullAt - joiner.readyAt)
    const mAtFull = await joiner.call('metrics')
    const all4 = [...old, joiner]
    await Promise.all(all4.map((n) => n.call('awaitAlive', { n: 4, timeout: 60_000 }, 70_000)))
    await sleep(AFTER_JOIN_MS)
    const loops = await Promise.all(all4.map((n) => n.call('loop')))
    await profileStop(old, `join-${count}-old`)
    const watches = await Promise.all(all4.map((n) => n.call('memberWatch', { action: 'stop' })))
    const mEnd = await joiner.call('metrics')
    // Ground truth after the window too: a few more samples, then the final placement.
    await sleep(2 * SAMPLE_MS)
    const samples = await gt.stop()
    const dups = duplicatesOver(samples)
    const finalP = placementProblems(await placement(all4), c.all)
    const heapJoiner = await joiner.call('memory')
    const bytesAtFull = mAtFull.syncBytesReceived + mAtFull.deltaBytesReceived
    const bytesEnd = mEnd.syncBytesReceived + mEnd.deltaBytesReceived
    const badStatuses = []
    for (const [i, w] of watches.entries()) {
      for (const [nodeId, st] of Object.entries(w.statuses)) {
        for (const [status, times] of Object.entries(st))
          if (status === 'suspected' || status === 'dead')
            badStatuses.push(
              `${all4[i] === joiner ? 'joiner' : `node ${i}`} saw ${nodeId.slice(-6)} ${status} ×${times}`,
            )
      }
      for (const e of w.events)
        badStatuses.push(
          `${all4[i] === joiner ? 'joiner' : `node ${i}`}: member:down ${e.nodeId.slice(-6)} ${e.status}`,
        )
    }
    const r = {
      count,
      fullAfter,
      fromFork: fullAt === null ? Number.NaN : ms(fullAt - forkedAt),
      encoded: rep.encoded,
      bytesAtFull,
      bytesEnd,
      sync: mEnd.syncBytesReceived,
      gossip: mEnd.deltaBytesReceived,
      sampleCost,
      stallOld: worst(loops.slice(0, 3)),
      stallJoiner: worst([loops[3]]),
      stallJoinerStart: worst([joinerStart]),
      badStatuses,
      polls: sum(watches.map((w) => w.polls)),
      dups,
      finalP,
      heapOld: heapOld.heapUsed,
      heapJoiner: heapJoiner.heapUsed,
      took: Date.now() - t0,
    }
    log(
      `join at ${fmtN(count)}: full map ${fmtS(fullAfter)} after the joiner was ready (${fmtS(r.fromFork)} after fork); received ${fmtB(bytesAtFull)} by then, ${fmtB(bytesEnd)} by the end (${(bytesEnd / rep.encoded).toFixed(2)}× the state); stalls old ${fmtStall(r.stallOld)}, joiner ${fmtStall(r.stallJoiner)} (starting its horde: ${fmtStall(r.stallJoinerStart)}); non-alive sightings: ${badStatuses.length === 0 ? 'none' : badStatuses.join('; ')} (${fmtN(r.polls)} polls); duplicates: ${dups.ids} ids in ${dups.bad} of ${dups.samples} samples; final ${JSON.stringify(finalP)} (section ${fmtS(r.took)})`,
    )
    return r
  } finally {
    await killAll()
  }
}

async function sectionJoin() {
  const res = []
  for (const count of CFG.joinSizes) res.push(await joinOnce(count))
  const rows = []
  const notes = []
  for (const r of res) {
    const k = fmtN(r.count)
    const ratio = r.bytesEnd / r.encoded
    rows.push(
      [
        `${k}: joiner holds the full map, after it was ready`,
        fmtS(r.fullAfter),
        r.count <= 100_000 ? '≤ 5 s' : '',
        r.count <= 100_000 ? met(r.fullAfter <= 5000) : '',
      ],
      [`${k}: … after its process was forked`, fmtS(r.fromFork), '', ''],
      [
        `${k}: members seen suspected or dead, any node (polled every 10 ms, and member:down events)`,
        r.badStatuses.length === 0 ? 'none' : `${r.badStatuses.length}`,
        'none',
        met(r.badStatuses.length === 0),
      ],
      [
        `${k}: duplicates (ground truth, every node's local children every ${SAMPLE_MS} ms)`,
        `${r.dups.ids} ids in ${r.dups.bad} of ${r.dups.samples} samples; after: ${r.finalP.twice} twice, ${r.finalP.missing} missing`,
        '0',
        met(r.dups.ids === 0 && r.finalP.twice + r.finalP.missing + r.finalP.extra === 0),
      ],
      [
        `${k}: longest event-loop stall, old nodes / joiner after it was ready`,
        `${fmtStall(r.stallOld)} / ${fmtStall(r.stallJoiner)}`,
        '< 100 ms (busy)',
        met(Math.max(r.stallOld.busy, r.stallJoiner.busy) < 100),
      ],
      [`${k}: … the joiner while it started its horde (before ready)`, fmtStall(r.stallJoinerStart), '', ''],
      [
        `${k}: bytes the joiner received (sync + gossip) / encoded state`,
        `${fmtB(r.bytesEnd)} (${fmtB(r.sync)} + ${fmtB(r.gossip)}) / ${fmtB(r.encoded)} = ${ratio.toFixed(2)}× (${fmtB(r.bytesAtFull)} when it held the map)`,
        '≤ 1.5×',
        met(ratio <= 1.5),
      ],
      [`${k}: heap after gc, old node / joiner`, `${fmtB(r.heapOld)} / ${fmtB(r.heapJoiner)}`, '', ''],
    )
    notes.push(
      `${k}: ground-truth sampling (each node's local children, sent as the change since its previous sample) stalls an old node up to ${fmtStall(r.sampleCost)} (3 samples before the join): part of the old nodes' figure.`,
    )
    if (r.badStatuses.length > 0) notes.push(`${k}: ${r.badStatuses.slice(0, 12).join('; ')}`)
  }
  record(
    'scale-join',
    'scale: a 4th node joins 3 holding many children',
    `3 node processes on 127.0.0.1 (libp2p TCP), failureTimeout ${FAILURE_TIMEOUT} ms, syncInterval 200 ms, passive redistribution; the children (behaviour \`plain\`) started from all three, ${IN_FLIGHT} in flight each, and checked to run exactly once. After 3 s of quiet a 4th process starts, bootstrapping from the first; the window runs from its fork to ${fmtS(AFTER_JOIN_MS)} after it placed every child in its map (a counter the map keeps) and all four saw four alive. "Encoded state": \`encodeDelta(map.state())\` on an old node before the join. Bytes: the joiner's syncBytesReceived + deltaBytesReceived (horde.metrics()) at the end of the window. ${STALL_NOTE}`,
    ['figure', 'value', 'target', 'met?'],
    rows,
    notes,
  )
  return res
}

// ——— 4. 10,000 node restarts on the memory network ———

const restartBehaviours = { plain: { init: () => 0, handle: (s) => s + 1 } }

async function memoryNode(network, name) {
  const system = nact.start()
  const transport = await network.createTransport({ failureTimeout: 300, requestTimeout: 2000 })
  const horde = await startHorde(system, {
    name,
    behaviours: restartBehaviours,
    transport,
    syncInterval: 50,
    requestTimeout: 2000,
  })
  return { horde, system, transport }
}

async function stopMemoryNode(n) {
  await n.horde.stop()
  await n.transport.stop()
  nact.stop(n.system)
}

const aliveIds = (h) =>
  h
    .members()
    .filter((m) => m.status === 'alive')
    .map((m) => m.nodeId)

/**
 * What a long-lived node carries, read generically (whatever the garbage collection being
 * built does): the first message its sync link sends a brand-new peer (a probe link, dropped
 * after), the replica ids in its causal context, its map's keys, members() and the process heap.
 */
async function restartFigures(stable) {
  for (let i = 0; i < 3; i++) {
    globalThis.gc?.()
    await sleep(20)
  }
  const map = stable.horde.replicator.map
  const probe = `probe-${Date.now()}`
  const first = map.link(probe).generate()?.length ?? 0
  map.unlink(probe)
  let replicas = 0
  for (const _ of map.context.replicas) replicas++
  return {
    heap: process.memoryUsage().heapUsed,
    first,
    replicas,
    keys: map.size,
    members: stable.horde.members().length,
  }
}

async function sectionRestarts() {
  if (typeof globalThis.gc !== 'function') throw new Error('run with --expose-gc (bench/run.mjs does)')
  const t0 = Date.now()
  const network = createMemoryNetwork({ seed: 1 })
  const stable = [await memoryNode(network, 'restarts'), await memoryNode(network, 'restarts')]
  const stableIds = stable.map((s) => s.horde.nodeId)
  await waitFor(
    () => stable.every((s) => stableIds.every((x) => aliveIds(s.horde).includes(x))),
    10_000,
    'the two stable nodes to meet',
  )
  // A few children, so that the map is not just members.
  for (let i = 0; i < 100; i++) await stable[0].horde.startChild({ id: `r-${i}`, behaviour: 'plain' })
  const marks = new Map()
  const zero = await restartFigures(stable[0])
  let last = Date.now()
  /** When each of the last 10 restarts ended: the time a restart takes now, for the figures. */
  const recent = []
  try {
    for (let i = 1; i <= CFG.restarts; i++) {
      // A restart: a node with a new id (a new pod) joins, is seen alive by and sees both
      // stable nodes, and stops gracefully.
      const n = await memoryNode(network, 'restarts')
      const id = n.horde.nodeId
      // One members() per node per poll, every 5 ms: members() walks every member record, so
      // polling harder would make this loop measure itself.
      await waitFor(
        () =>
          stable.every((s) => aliveIds(s.horde).includes(id)) &&
          stableIds.every((x) => aliveIds(n.horde).includes(x)),
        10_000,
        `restart ${i} to be seen alive`,
        5,
      )
      await stopMemoryNode(n)
      recent.push(Date.now())
      if (recent.length > 10) recent.shift()
      if (i % 100 === 0) log(`restarts: ${fmtN(i)} after ${fmtS(Date.now() - t0)}`)
      const outOfTime = Date.now() - t0 > RESTART_BUDGET_S * 1000 && i > CFG.restartMarks[0]
      if (CFG.restartMarks.includes(i) || i % 1000 === 0 || outOfTime) {
        // Let the stable nodes see it leave first.
        await waitFor(
          () => stable.every((s) => !aliveIds(s.horde).includes(n.horde.nodeId)),
          10_000,
          'the leave',
          5,
        )
        const f = await restartFigures(stable[0])
        f.perRestart = (recent[recent.length - 1] - recent[0]) / (recent.length - 1)
        marks.set(i, f)
        log(
          `restarts: ${fmtN(i)} (${fmtS(Date.now() - last)} for the last batch): heap ${fmtB(f.heap)}, first sync message ${fmtB(f.first)}, ${f.replicas} replica ids, ${f.keys} keys, ${f.members} members listed`,
        )
        last = Date.now()
        if (outOfTime) {
          log(
            `restarts: stopped after ${fmtN(i)}, past the budget of ${RESTART_BUDGET_S} s (SCALE_RESTART_BUDGET_S)`,
          )
          break
        }
      }
    }
  } finally {
    for (const s of stable) await stopMemoryNode(s)
  }
  const a = CFG.restartMarks[0]
  const b = Math.max(...marks.keys())
  const fa = marks.get(a)
  const fb = marks.get(b)
  const growth = (x, y) => (y - x) / x
  const took = Date.now() - t0
  log(`restarts: ${fmtN(b)} in ${fmtS(took)}`)
  const row = (what, key, fmt, target) => {
    const g = growth(fa[key], fb[key])
    return [
      what,
      fmt(zero[key]),
      fmt(fa[key]),
      fmt(fb[key]),
      `${g >= 0 ? '+' : ''}${(g * 100).toFixed(1)} %`,
      target ? '≤ +10 %' : '',
      !target ? '' : b < CFG.restarts ? `not judged: stopped at ${fmtN(b)}` : met(g <= 0.1),
    ]
  }
  record(
    'scale-restarts',
    `scale: ${fmtN(b)} node restarts (memory network)`,
    `One process, the in-memory network: two stable nodes holding 100 children; each restart is a node with a new id joining (seen alive by both stable nodes, and seeing them) and stopping gracefully; ${fmtN(b)} in ${fmtS(took)}${b < CFG.restarts ? ` (stopped there: past the time budget of ${RESTART_BUDGET_S} s, SCALE_RESTART_BUDGET_S)` : ''}. Read on a stable node after gc: the process heap, the first sync message its SyncLink generates for a brand-new peer (a probe link, dropped after), the replica ids in its causal context, its map's keys and the members it lists.`,
    [
      'figure',
      'before',
      `after ${fmtN(a)}`,
      `after ${fmtN(b)}`,
      `growth ${fmtN(a)} → ${fmtN(b)}`,
      'target',
      'met?',
    ],
    [
      row('heap used (whole process)', 'heap', fmtB, true),
      row('first sync message to a new peer', 'first', fmtB, true),
      row('replica ids in the causal context', 'replicas', String, false),
      row('keys in the map', 'keys', String, false),
      row('members listed', 'members', String, false),
      row(
        'time one restart takes (mean of the last 9)',
        'perRestart',
        (x) => (x === undefined ? '' : `${x.toFixed(1)} ms`),
        false,
      ),
    ],
  )
  return { zero, marks, took }
}

// ——— 5. failover of a node holding a third ———

/** Failover `trial`, on a fresh cluster of 3 nodes holding `count` children; its figures. */
async function failoverTrial(count, trial) {
  const c = await populated(count)
  try {
    const { nodes, all } = c
    await sleep(3000)
    const sizes = await Promise.all(nodes.map((n) => n.call('localCount')))
    const victim = nodes[sizes.indexOf(Math.max(...sizes))]
    const lost = await victim.call('local', {}, 60_000)
    const survivors = nodes.filter((n) => n !== victim)
    const gt = new GroundTruth(survivors, SAMPLE_MS, { diff: true }).start()
    await waitFor(() => gt.samples.length >= 1, 60_000, 'the first ground-truth sample')
    await Promise.all(survivors.map((n) => n.call('memberWatch', { action: 'start' })))
    await resetLoops(survivors)
    await profileStart(survivors)
    const before = await Promise.all(survivors.map((n) => n.call('metrics')))
    const cpu0 = await cpuOf(survivors)
    const benchCpu0 = process.cpuUsage()
    const since = String(hrNow())
    const killedAt = victim.kill()
    await waitFor(
      async () => sum(await Promise.all(survivors.map((n) => n.call('localCount')))) >= count,
      60_000,
      'every child to run again',
      10,
    )
    const runningAt = hrNow()
    const benchCpu = process.cpuUsage(benchCpu0)
    const cpu1 = await cpuOf(survivors)
    const after = await Promise.all(survivors.map((n) => n.call('metrics')))
    const examined = after.map((m, i) => m.childrenExamined - before[i].childrenExamined)
    const cpuMs = cpu1.map((c, i) => (c - cpu0[i]) / 1000)
    const loops = await Promise.all(survivors.map((n) => n.call('loop')))
    await profileStop(survivors, `failover-t${trial}`)
    const watches = await Promise.all(survivors.map((n) => n.call('memberWatch', { action: 'stop' })))
    await sleep(2 * SAMPLE_MS)
    const samples = await gt.stop()
    const dups = duplicatesOver(samples)
    const finalP = placementProblems(await placement(survivors), all)
    const restarted = await Promise.all(
      survivors.map((n) => n.call('startedSince', { since, ids: lost }, 60_000)),
    )
    const restarts = sum(restarted.map((r) => r.count))
    const last = maxBig(restarted.filter((r) => r.last !== null).map((r) => BigInt(r.last)))
    const took = ms(last - killedAt)
    const polledAfter = ms(runningAt - killedAt)
    // When each survivor ran its first and its last lost child again (ms after the kill).
    const spans = restarted.map(
      (r, i) =>
        `${r.first === null ? 'none' : `${fmtMs(ms(BigInt(r.first) - killedAt))}–${fmtMs(ms(BigInt(r.last) - killedAt))}`}${after[i].failovers > before[i].failovers ? ' (coordinator)' : ''}`,
    )
    let downed = Number.NaN
    let suspected = Number.NaN
    for (const w of watches) {
      for (const e of w.events) {
        if (e.nodeId !== victim.nodeId) continue
        const t = ms(BigInt(e.at) - killedAt)
        if (e.status === 'dead' && !(t >= downed)) downed = t
        if (e.status === 'suspected' && !(t >= suspected)) suspected = t
      }
    }
    const stall = worst(loops)
    const once =
      restarts === lost.length && finalP.missing + finalP.twice + finalP.extra === 0 && dups.ids === 0
    return {
      took,
      polledAfter,
      suspected,
      downed,
      restarts,
      lost: lost.length,
      spans,
      dups,
      finalP,
      stall,
      once,
      examined,
      cpuMs,
      benchCpuMs: (benchCpu.user + benchCpu.system) / 1000,
    }
  } finally {
    await killAll()
  }
}

/**
 * The failover, `CFG.failoverTrials` times, each on a fresh cluster: on a shared 2-core machine
 * one failover's time varies by ±15 % from run to run, as much as the distance to its target.
 * The trial with the median time is shown and judged; every trial's time is listed, and
 * exactly once must hold in every trial.
 */
async function sectionFailover() {
  const t0 = Date.now()
  const count = CFG.failoverChildren
  const trials = []
  for (let t = 1; t <= CFG.failoverTrials; t++) {
    const r = await failoverTrial(count, t)
    trials.push(r)
    log(
      `failover, trial ${t}: ${fmtN(r.lost)} of ${fmtN(count)} children running again ${fmtMs(r.took)} after SIGKILL (polled: ${fmtMs(r.polledAfter)}); suspected ${fmtMs(r.suspected)}, downed ${fmtMs(r.downed)}; ${r.restarts} restarts of ${r.lost} lost (first–last per survivor: ${r.spans.join(' / ')}); duplicates ${r.dups.ids} ids in ${r.dups.bad} of ${r.dups.samples} samples; final ${JSON.stringify(r.finalP)}; max stall ${fmtStall(r.stall)}; examined ${r.examined.join(' / ')}; CPU ${r.cpuMs.map(fmtMs).join(' / ')}, this bench process ${fmtMs(r.benchCpuMs)} (${fmtS(Date.now() - t0)} so far)`,
    )
  }
  // The median trial (the lower middle one for an even count), by time.
  const byTime = [...trials].sort((x, y) => x.took - y.took)
  const m = byTime[(byTime.length - 1) >> 1]
  const { took, suspected, downed, stall, examined, cpuMs } = m
  const everyOnce = trials.every((r) => r.once)
  const target = FAILURE_TIMEOUT + 1000
  const within = trials.filter((r) => r.took <= target).length
  record(
    'scale-failover',
    `scale: failover of a node holding a third of ${fmtN(count)} children`,
    `3 node processes on 127.0.0.1 (libp2p TCP), failureTimeout ${FAILURE_TIMEOUT} ms, syncInterval 200 ms, ${fmtN(count)} children (behaviour \`plain\`) started from all three, ${IN_FLIGHT} in flight each; after 3 s of quiet the node holding the most is SIGKILLed. ${trials.length} trial${trials.length === 1 ? '' : 's'}, each on a fresh cluster; the table shows the trial with the median time (the lower middle one for an even count), and the target is judged on it; "each trial" lists all. "Running again": the last lost child's init finished on a survivor (its clock), checked by polling the survivors' local counts. Exactly once, in every trial: every lost child started once on the survivors (their child:started runs since the kill), every child on exactly one survivor after, and no id on two survivors in any ground-truth sample (every ${SAMPLE_MS} ms). ${STALL_NOTE}`,
    ['figure', 'value', 'target', 'met?'],
    [
      [
        `${fmtN(m.lost)} lost children all running again, after SIGKILL (median trial)`,
        fmtMs(took),
        `≤ ${fmtMs(target)} (failureTimeout + 1 s)`,
        met(took <= target),
      ],
      [
        '… each trial, in order',
        `${trials.map((r) => fmtMs(r.took)).join(', ')} (${within} of ${trials.length} within the target)`,
        '',
        '',
      ],
      [
        '… the victim first seen suspected / downed by a survivor',
        `${fmtMs(suspected)} / ${fmtMs(downed)}`,
        '',
        '',
      ],
      [
        'exactly once (every trial)',
        `${trials.map((r) => `${fmtN(r.restarts)} restarts of ${fmtN(r.lost)} lost, ${r.dups.ids} ids twice in ${r.dups.bad} of ${r.dups.samples} samples, after ${r.finalP.twice} twice and ${r.finalP.missing} missing`).join('; ')}`,
        'each once',
        met(everyOnce),
      ],
      ['longest event-loop stall on a survivor', fmtStall(stall), '', ''],
      [
        'children each survivor examined, from the kill until all ran again',
        examined.map(fmtN).join(' / '),
        '',
        '',
      ],
      [
        'CPU each survivor used meanwhile (user + system; the ground-truth and stall samplers included)',
        cpuMs.map(fmtMs).join(' / '),
        '',
        '',
      ],
    ],
  )
}

const SECTION_FNS = {
  cpu: sectionCpu,
  mesh: sectionMesh,
  join: sectionJoin,
  restarts: sectionRestarts,
  failover: sectionFailover,
}
let failed = 0
for (const s of SECTIONS) {
  const t = Date.now()
  log(`— section ${s}${QUICK ? ' (SCALE_QUICK)' : ''}, load ${loadavg()[0].toFixed(2)} —`)
  try {
    await SECTION_FNS[s]()
    log(`section ${s} took ${fmtS(Date.now() - t)}`)
  } catch (err) {
    failed++
    console.error(`[scale bench] section ${s} failed after ${fmtS(Date.now() - t)}:`, err)
    await killAll()
  }
}
process.exit(failed > 0 ? 1 : 0)
