// Location transparency's cost: a child on node B driven from node A through `horde.ref(id)`,
// each node a separate OS process over libp2p TCP on 127.0.0.1, against a plain local nact
// actor running the same behaviour on A. Everything is timed inside A (fixtures/routing-node.mjs);
// this script only orchestrates over IPC.
// `node bench/run.mjs routing` (after `npx turbo run build`). PROFILE=<dir> writes a V8 CPU
// profile of each node there (--cpu-prof).
import { fork } from 'node:child_process'
import { loadavg } from 'node:os'
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { machine, recordSection, table } from './lib/results.mjs'

const NODE = fileURLToPath(new URL('./fixtures/routing-node.mjs', import.meta.url))
const QUERIES = Number(process.env.QUERIES ?? 2000)
const WARMUP = 500
const MESSAGES = Number(process.env.MESSAGES ?? 200_000)
const CHUNK = 1000
const PROFILE = process.env.PROFILE
const TARGET_MEDIAN_MS = 1
const TARGET_RATE = 20_000

const log = (...a) => console.log('[routing bench]', ...a)
const quantile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]
const fmtMs = (x) => `${x < 1 ? x.toFixed(3) : x.toFixed(2)} ms`
const fmtRate = (x) => `${Math.round(x).toLocaleString('en')} msg/s`

/** Every child forked and not yet exited: killed on any exit of this script. */
const children = new Set()
const killChildren = () => {
  for (const c of children) c.kill('SIGKILL')
}
process.on('exit', killChildren)
for (const sig of ['SIGINT', 'SIGTERM'])
  process.on(sig, () => {
    killChildren()
    process.exit(130)
  })

/** Forks a node and resolves with `{ nodeId, addresses, call(cmd, args, timeout) }` once it runs. */
function spawnNode(init) {
  const execArgv = ['--expose-gc']
  if (PROFILE)
    execArgv.push(
      '--cpu-prof',
      `--cpu-prof-dir=${resolve(PROFILE)}`,
      `--cpu-prof-name=routing-${init.label}.cpuprofile`,
    )
  const child = fork(NODE, [JSON.stringify(init)], {
    execArgv,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  children.add(child)
  const pending = new Map()
  let rid = 0
  const exited = new Promise((r) => child.once('exit', r))
  child.once('exit', (code, signal) => {
    children.delete(child)
    for (const p of pending.values()) p.reject(new Error(`node ${init.label} exited (${code ?? signal})`))
    pending.clear()
  })
  return new Promise((resolveReady, rejectReady) => {
    const timer = setTimeout(
      () => rejectReady(new Error(`node ${init.label} did not start within 20 s`)),
      20_000,
    )
    child.once('exit', (code, signal) =>
      rejectReady(new Error(`node ${init.label} exited during start (${code ?? signal})`)),
    )
    child.on('message', (msg) => {
      if (msg?.type === 'ready') {
        clearTimeout(timer)
        const call = (cmd, args = {}, timeout = 60_000) =>
          new Promise((res, rej) => {
            const id = ++rid
            const t = setTimeout(() => {
              pending.delete(id)
              rej(new Error(`node ${init.label}: '${cmd}' got no reply within ${timeout} ms`))
            }, timeout)
            pending.set(id, {
              resolve: (v) => {
                clearTimeout(t)
                res(v)
              },
              reject: (e) => {
                clearTimeout(t)
                rej(e)
              },
            })
            child.send({ rid: id, cmd, ...args })
          })
        resolveReady({ child, exited, nodeId: msg.nodeId, addresses: msg.addresses, call })
      } else if (msg?.type === 'reply') {
        const p = pending.get(msg.rid)
        if (p === undefined) return
        pending.delete(msg.rid)
        if (msg.ok) p.resolve(msg.value)
        else p.reject(Object.assign(new Error(msg.error?.message), { name: msg.error?.name ?? 'Error' }))
      }
    })
  })
}

function latencyStats(xs) {
  const s = [...xs].sort((a, b) => a - b)
  return { median: quantile(s, 0.5), p99: quantile(s, 0.99), max: s[s.length - 1] }
}

const rows = []
const notes = []
let exitCode = 0
try {
  const a = await spawnNode({ label: 'a' })
  const b = await spawnNode({ label: 'b', bootstrap: a.addresses })
  await Promise.all([a.call('awaitAlive', { n: 2 }), b.call('awaitAlive', { n: 2 })])
  const id = await a.call('place', { prefix: 'counter', node: b.nodeId })
  log(`child ${id} runs on node B; driving it from node A`)

  // 1 and 3a: sequential query round trips.
  const remoteLat = latencyStats(
    await a.call('latency', { target: 'remote', id, n: QUERIES, warmup: WARMUP }),
  )
  const localLat = latencyStats(await a.call('latency', { target: 'local', n: QUERIES, warmup: WARMUP }))
  log(
    `query: cross-node median ${fmtMs(remoteLat.median)}, p99 ${fmtMs(remoteLat.p99)} (max ${fmtMs(remoteLat.max)}); local median ${fmtMs(localLat.median)}, p99 ${fmtMs(localLat.p99)}`,
  )

  // 2 and 3b: sustained dispatch, then one query that must see them all, in order.
  const throughput = async (target) => {
    const r = await a.call('throughput', { target, id, n: MESSAGES, chunk: CHUNK }, 300_000)
    const rate = (r.arrived / r.ms) * 1000
    log(
      `dispatch ${target}: ${r.arrived.toLocaleString('en')}/${MESSAGES.toLocaleString('en')} arrived in ${fmtMs(r.ms)} (dispatch loop ${fmtMs(r.dispatchMs)}) = ${fmtRate(rate)}, ${r.violations} order violations`,
    )
    if (r.arrived !== MESSAGES) notes.push(`${target}: ${r.arrived} of ${MESSAGES} messages arrived`)
    if (r.violations !== 0) notes.push(`${target}: ${r.violations} sequence violations (lost or reordered)`)
    return { ...r, rate }
  }
  const remoteTp = await throughput('remote')
  const localTp = await throughput('local')
  const statsA = await a.call('routingStats')
  const statsB = await b.call('routingStats')
  log(`node A routing: ${JSON.stringify(statsA)}; node B: ${JSON.stringify(statsB)}`)
  // Each query's temporary replyTo ref becomes a proxy actor on B, kept until idle (refIdleTimeout).
  if (statsB.proxies > 100)
    notes.push(
      `After the run node B held ${statsB.proxies.toLocaleString('en')} proxy actors: one per query's temporary \`replyTo\`, each kept until idle for refIdleTimeout (60 s).`,
    )
  if (remoteLat.p99 > 5 * remoteLat.median)
    notes.push(
      `The cross-node tail is long: p99 ${fmtMs(remoteLat.p99)}, max ${fmtMs(remoteLat.max)} against a median of ${fmtMs(remoteLat.median)}.`,
    )

  const delivered = (r) => r.arrived === MESSAGES && r.violations === 0
  rows.push([
    `1a. query round trip, median (${QUERIES.toLocaleString('en')} sequential, after ${WARMUP} warm-up)`,
    fmtMs(remoteLat.median),
    fmtMs(localLat.median),
    `≤ ${TARGET_MEDIAN_MS} ms`,
    remoteLat.median <= TARGET_MEDIAN_MS,
  ])
  rows.push(['1b. query round trip, p99', fmtMs(remoteLat.p99), fmtMs(localLat.p99), '', ''])
  rows.push([
    `2. dispatch ${MESSAGES.toLocaleString('en')} × { add: 1 } (chunks of ${CHUNK}), until a final query answers`,
    fmtRate(remoteTp.rate),
    fmtRate(localTp.rate),
    `≥ ${fmtRate(TARGET_RATE)}`,
    remoteTp.rate >= TARGET_RATE && delivered(remoteTp),
  ])
  rows.push([
    '2b. arrived / order violations',
    `${remoteTp.arrived.toLocaleString('en')} / ${remoteTp.violations}`,
    `${localTp.arrived.toLocaleString('en')} / ${localTp.violations}`,
    `${MESSAGES.toLocaleString('en')} / 0`,
    delivered(remoteTp) && delivered(localTp),
  ])
  if (remoteLat.median > TARGET_MEDIAN_MS)
    notes.push(
      `Shortfall: the cross-node query median is ${fmtMs(remoteLat.median)}, above the ${TARGET_MEDIAN_MS} ms target.`,
    )
  if (remoteTp.rate < TARGET_RATE)
    notes.push(
      `Shortfall: cross-node dispatch sustains ${fmtRate(remoteTp.rate)}, below the ${fmtRate(TARGET_RATE)} target.`,
    )

  // A normal exit, so that --cpu-prof writes the profiles.
  if (PROFILE) await Promise.all([a, b].map((n) => Promise.all([n.call('exit'), n.exited])))
} catch (err) {
  console.error('[routing bench] failed:', err)
  exitCode = 1
} finally {
  killChildren()
}
if (exitCode !== 0) process.exit(exitCode)

const header = ['measure', 'cross-node (A → child on B)', 'local nact baseline', 'target', 'met?']
const body = rows.map(([m, x, l, t, ok]) => [m, x, l, t, ok === '' ? '' : ok ? 'yes' : '**no**'])
console.log(`\n${table(header, body)}\n`)
for (const n of notes) console.log(`- ${n}`)
const load = loadavg()[0].toFixed(2)
recordSection(
  'routing',
  [
    '## routing',
    '',
    `Machine: ${machine()}. Two horde nodes in separate processes on 127.0.0.1 (libp2p TCP, noise, yamux; default options), a counter child on node B, everything timed on node A: \`nact.query(horde.ref(id), replyTo => ({ replyTo }), 5000)\` one after another, and \`nact.dispatch(horde.ref(id), { add: 1, seq })\` as fast as A can send (yielding to the event loop every ${CHUNK}), timed until a final query answers; the child counts sequence gaps. Baseline: a plain nact actor with the same behaviour on node A's system. Load average at the end: ${load} (a shared machine: figures vary between runs).`,
    '',
    table(header, body),
    ...(notes.length > 0 ? ['', ...notes.map((n) => `- ${n}`)] : []),
    '',
    '<!-- routing-notes -->',
  ].join('\n'),
)
