// Anti-entropy under writes: N replicas, every write gossiped to all the others, and every
// `SYNC_EVERY` writes each replica syncs with each peer the way nact-horde's syncWith does
// (generate → the peer's receive + generate as the reply → receive, up to 16 rounds, until
// the link says null). Measures the sync bytes (and sync CPU time) per write, at 3 and 16
// replicas, for this package against a baseline build of it (by default the last commit
// before byte budgets and gossip-aware links), all in one run.
//
// `node bench/run.mjs crdt-sync` (after `npx turbo run build`). The baseline is built into
// bench/.tmp/ from git (`node bench/crdt-sync.bench.mjs <commit>` to choose another); without git history
// only this package's figures are printed.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, rmSync } from 'node:fs'
import { loadavg } from 'node:os'
import { fileURLToPath, pathToFileURL } from 'node:url'
import * as current from '@nact-horde/crdt'
import { machine, recordSection, table } from './lib/results.mjs'

const BASELINE_REF = process.argv[2] ?? '2428e50'
if (!/^[\w./-]+$/.test(BASELINE_REF)) throw new Error(`not a git ref: ${BASELINE_REF}`)
const ROOT = fileURLToPath(new URL('..', import.meta.url))
const TMP = fileURLToPath(
  new URL(`./.tmp/crdt-baseline-${BASELINE_REF.replaceAll('/', '_')}/`, import.meta.url),
)
const MAX_SYNC_ROUNDS = 16
const SYNC_EVERY = 32
const WRITES = { 3: 3_000, 16: 1_600 }

/** Builds the baseline package from git into bench/.tmp; returns its module, or undefined. */
async function loadBaseline() {
  const entry = `${TMP}packages/crdt/dist/index.js`
  if (!existsSync(entry)) {
    rmSync(TMP, { recursive: true, force: true })
    mkdirSync(TMP, { recursive: true })
    const archive = spawnSync(
      'sh',
      ['-c', `git archive ${BASELINE_REF} packages/crdt tsconfig.base.json | tar -x -C '${TMP}'`],
      { cwd: ROOT, encoding: 'utf8' },
    )
    if (archive.status !== 0) {
      console.log(`no baseline: git archive ${BASELINE_REF} failed (${archive.stderr.trim()})`)
      return undefined
    }
    const tsc = spawnSync(
      process.execPath,
      [`${ROOT}node_modules/typescript/bin/tsc`, '-p', `${TMP}packages/crdt/tsconfig.build.json`],
      { cwd: ROOT, encoding: 'utf8' },
    )
    if (tsc.status !== 0) {
      console.log(`no baseline: its build failed\n${tsc.stdout}${tsc.stderr}`)
      return undefined
    }
  }
  return import(pathToFileURL(entry).href)
}

const value = (i, w) => ({
  behaviour: 'worker',
  args: { n: i },
  node: `node-${w}`,
  restart: 'permanent',
  epoch: 1,
})

/**
 * One run: `n` replicas, `writes` writes round-robin, each delta delivered to every other
 * replica (with `joinFrom` when `fromAware`), sync ticks every SYNC_EVERY writes, then ticks
 * until every link is silent. Returns sync bytes and sync time per write.
 */
function run(lib, n, writes, fromAware) {
  const { AWLWWMap, encodeDelta, decodeDelta } = lib
  const ids = Array.from({ length: n }, (_, i) => `replica-${String(i).padStart(8, '0')}`)
  const rs = ids.map((replicaId) => new AWLWWMap({ replicaId }))
  let bytes = 0
  let messages = 0
  let time = 0

  const syncWith = (x, y) => {
    const lx = rs[x].link(ids[y])
    const ly = rs[y].link(ids[x])
    for (let round = 0; round < MAX_SYNC_ROUNDS; round++) {
      const msg = lx.generate()
      if (msg === null) return
      ly.receive(msg)
      const reply = ly.generate()
      bytes += msg.length + (reply?.length ?? 0)
      messages += reply === null ? 1 : 2
      if (reply === null) {
        if (lx.idle) return
        continue
      }
      lx.receive(reply)
    }
  }
  const tick = () => {
    const t0 = performance.now()
    for (let x = 0; x < n; x++) for (let y = 0; y < n; y++) if (x !== y) syncWith(x, y)
    time += performance.now() - t0
  }

  for (let i = 0; i < writes; i++) {
    const w = i % n
    const bytesOut = encodeDelta(rs[w].set(`child-${i % 500}`, value(i, w)))
    for (let o = 0; o < n; o++) {
      if (o === w) continue
      const d = decodeDelta(bytesOut)
      if (fromAware) rs[o].joinFrom(ids[w], d)
      else rs[o].join(d)
    }
    if ((i + 1) % SYNC_EVERY === 0) tick()
  }
  for (let settle = 0; settle < 50; settle++) {
    const before = messages
    tick()
    if (messages === before) break
  }
  const states = new Set(rs.map((r) => JSON.stringify([...r.entries()].sort())))
  if (states.size !== 1) throw new Error(`${n} replicas did not converge`)
  return { bytesPerWrite: bytes / writes, msPerWrite: time / writes, messages }
}

const baseline = await loadBaseline()
const rows = []
const results = {}
for (const n of [3, 16]) {
  const writes = WRITES[n]
  console.log(`${n} replicas, ${writes} writes…`)
  // A warm-up run of each, then the measured one.
  const measure = (lib, fromAware) => {
    run(lib, n, Math.min(writes, 400), fromAware)
    return run(lib, n, writes, fromAware)
  }
  const base = baseline === undefined ? undefined : measure(baseline, false)
  const join = measure(current, false)
  const from = measure(current, true)
  results[n] = { base, join, from }
  const fmt = (r) => (r === undefined ? 'n/a' : `${Math.round(r.bytesPerWrite).toLocaleString('en-US')} B`)
  const fmtT = (r) => (r === undefined ? 'n/a' : `${(r.msPerWrite * 1000).toFixed(0)} µs`)
  const ratio = (r) => (base === undefined ? 'n/a' : `${(r.bytesPerWrite / base.bytesPerWrite).toFixed(3)}×`)
  const ratioT = (r) => (base === undefined ? 'n/a' : `${(r.msPerWrite / base.msPerWrite).toFixed(2)}×`)
  rows.push([
    `sync bytes per write, ${n} replicas`,
    fmt(base),
    fmt(join),
    fmt(from),
    `${ratio(join)} / ${ratio(from)}`,
  ])
  rows.push([
    `sync CPU per write, ${n} replicas`,
    fmtT(base),
    fmtT(join),
    fmtT(from),
    `${ratioT(join)} / ${ratioT(from)}`,
  ])
}

const header = [
  'measure',
  `baseline (${BASELINE_REF})`,
  'now, gossip joined with join',
  'now, with joinFrom',
  'ratio to baseline',
]
const markdown = [
  '## crdt sync under writes',
  '',
  `Machine: ${machine()}. N replicas in one process; writes round-robin over 500 keys (child-like records, ~90 B), each delta delivered to every other replica; every ${SYNC_EVERY} writes each replica syncs with each peer as nact-horde's syncWith does (request/response rounds, at most ${MAX_SYNC_ROUNDS}, until the link says null), then until all links are silent. Bytes count both directions of every sync exchange, summed over all replicas, per write; CPU is the time spent in those exchanges per write. Load average at the end: ${loadavg()[0].toFixed(2)} (bytes are deterministic; times vary on a shared machine).`,
  '',
  table(header, rows),
  '',
  'Baseline: every change woke every link, and a link sent everything the peer’s last report lacked — including writes gossip had already delivered. Now a write reaches a peer by sync only when the peer’s report, received after this replica had the write, still lacks it and the peer is not assumed to have it (sent already, or gossiped by it and recorded with `joinFrom`); a writer’s gossip does not wake the receiver’s link back to it.',
].join('\n')

console.log(`\n${table(header, rows)}\n`)
recordSection('crdt-sync', markdown)
