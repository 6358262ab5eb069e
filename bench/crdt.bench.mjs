// @nact-horde/crdt against Yjs and Automerge on the same machine in one run, 100k distinct
// keys with small object values: local set + encode throughput, full-state join, heap per
// key, bytes of a single-key delta, and a 15-key anti-entropy exchange at 100k keys.
// `node bench/run.mjs crdt` (after `npx turbo run build`). Every figure printed and recorded
// in RESULTS.md comes from this run.
import { spawnSync } from 'node:child_process'
import { loadavg } from 'node:os'
import { fileURLToPath } from 'node:url'
import * as Automerge from '@automerge/automerge'
import { AWLWWMap, decodeDelta, encodeDelta } from '@nact-horde/crdt'
import * as Y from 'yjs'
import { machine, recordSection, table } from './lib/results.mjs'

const N = 100_000
const REPS = 5
/** A generated replica id has 16 characters (96 random bits in base64url). */
const ID_A = 'Xk3v9QpL2mZt8RwA'
const ID_B = 'Pq7nC2sVb4Hy0LdE'
/**
 * Automerge 3 takes ~0.1 s per `change` on a 100k-key document and ~10 s to build one, so
 * its throughput is the median per-op time of this many changes on a 100k-key document.
 */
const AM_OPS = 30

const key = (i) => `key-${i}`
const value = (i) => ({ i, s: 'value' })
const now = () => performance.now()
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}
const gc = () => {
  if (typeof globalThis.gc !== 'function') throw new Error('run with node --expose-gc (bench/run.mjs does)')
  globalThis.gc()
  globalThis.gc()
}

// ——— builders ———

function buildOurs(id = ID_A, n = N) {
  const m = new AWLWWMap({ replicaId: id })
  for (let i = 0; i < n; i++) m.set(key(i), value(i))
  return m
}

function buildYjs(n = N) {
  const doc = new Y.Doc()
  const map = doc.getMap('m')
  doc.transact(() => {
    for (let i = 0; i < n; i++) map.set(key(i), value(i))
  })
  return doc
}

function buildAutomerge(n = N) {
  return Automerge.change(Automerge.init(), (d) => {
    for (let i = 0; i < n; i++) d[key(i)] = value(i)
  })
}

// ——— heap per key, each library in a fresh process so no allocator is warm ———

if (process.argv[2] === 'heap') {
  const which = process.argv[3]
  // Load the library's code (and Automerge's wasm) before the baseline.
  ;({ ours: () => buildOurs(ID_A, 10), yjs: () => buildYjs(10), automerge: () => buildAutomerge(10) })[
    which
  ]()
  gc()
  const used = () => {
    const u = process.memoryUsage()
    // Automerge keeps its document in wasm memory, which V8 counts as external, not heap.
    return u.heapUsed + u.external
  }
  const before = used()
  const built = { ours: buildOurs, yjs: buildYjs, automerge: buildAutomerge }[which]()
  gc()
  const after = used()
  if (built === undefined) throw new Error('unreachable')
  process.stdout.write(JSON.stringify({ perKey: (after - before) / N }))
  process.exit(0)
}

function heapPerKey(which) {
  const r = spawnSync(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), 'heap', which], {
    encoding: 'utf8',
    maxBuffer: 1 << 20,
  })
  if (r.status !== 0) throw new Error(`heap measurement of ${which} failed: ${r.stderr}`)
  return JSON.parse(r.stdout).perKey
}

// ——— 1. local set + encode ———

/** Median seconds per op over REPS fresh 100k-key builds, after a warm-up build. */
function setEncodeOurs() {
  const run = (n) => {
    const m = new AWLWWMap({ replicaId: ID_A })
    let bytes = 0
    gc()
    const t0 = now()
    for (let i = 0; i < n; i++) bytes += encodeDelta(m.set(key(i), value(i))).length
    const t = now() - t0
    if (bytes === 0) throw new Error('no bytes')
    return t / n / 1000
  }
  run(N)
  const times = []
  for (let r = 0; r < REPS; r++) times.push(run(N))
  return median(times)
}

function setEncodeYjs() {
  const run = (n) => {
    const doc = new Y.Doc()
    const map = doc.getMap('m')
    let bytes = 0
    doc.on('update', (u) => {
      bytes += u.length
    })
    gc()
    const t0 = now()
    for (let i = 0; i < n; i++) doc.transact(() => map.set(key(i), value(i)))
    const t = now() - t0
    if (bytes === 0) throw new Error('no bytes')
    return t / n / 1000
  }
  run(N)
  const times = []
  for (let r = 0; r < REPS; r++) times.push(run(N))
  return median(times)
}

/** One `change` per op, then `getLastLocalChange`: the encoded change a peer would be sent. */
function setEncodeAutomerge(doc) {
  const times = []
  let d = doc
  for (let i = 0; i < AM_OPS; i++) {
    const t0 = now()
    d = Automerge.change(d, (x) => {
      x[`new-${i}`] = value(i)
    })
    const change = Automerge.getLastLocalChange(d)
    times.push(now() - t0)
    if (change === undefined || change.length === 0) throw new Error('no change')
  }
  return { perOp: median(times) / 1000, doc: d }
}

// ——— 2. full-state join into an empty replica ———

function joinOurs() {
  const src = buildOurs()
  const bytes = encodeDelta(src.state())
  const decodeT = []
  const joinT = []
  for (let r = 0; r < REPS + 1; r++) {
    gc()
    const t0 = now()
    const delta = decodeDelta(bytes)
    const t1 = now()
    const dst = new AWLWWMap({ replicaId: ID_B })
    dst.join(delta)
    const t2 = now()
    if (dst.size !== N) throw new Error(`joined ${dst.size} keys`)
    // The first round is a warm-up.
    if (r > 0) {
      decodeT.push(t1 - t0)
      joinT.push(t2 - t1)
    }
  }
  return { decode: median(decodeT), join: median(joinT), bytes: bytes.length }
}

function joinYjs() {
  const update = Y.encodeStateAsUpdate(buildYjs())
  const times = []
  for (let r = 0; r < REPS + 1; r++) {
    gc()
    const doc = new Y.Doc()
    const t0 = now()
    Y.applyUpdate(doc, update)
    const t = now() - t0
    if (doc.getMap('m').size !== N) throw new Error('Yjs join lost keys')
    if (r > 0) times.push(t)
  }
  return { time: median(times), bytes: update.length }
}

/** `load` of a saved document: Automerge's way to take in a whole state. Once: it is slow. */
function loadAutomerge(doc) {
  const bytes = Automerge.save(doc)
  gc()
  const t0 = now()
  const loaded = Automerge.load(bytes)
  const t = now() - t0
  if (Object.keys(loaded).length < N) throw new Error('Automerge load lost keys')
  return { time: t, bytes: bytes.length }
}

// ——— 4. bytes of a single-key delta (overwrite of an existing key) ———

function singleKeyBytes(ours, yjsDoc, amDoc) {
  const o = encodeDelta(ours.set(key(42), { i: -1, s: 'value' })).length
  let y = 0
  const onUpdate = (u) => {
    y += u.length
  }
  yjsDoc.on('update', onUpdate)
  yjsDoc.transact(() => yjsDoc.getMap('m').set(key(42), { i: -1, s: 'value' }))
  yjsDoc.off('update', onUpdate)
  const am = Automerge.change(amDoc, (d) => {
    d[key(42)] = { i: -1, s: 'value' }
  })
  return { ours: o, yjs: y, automerge: Automerge.getLastLocalChange(am).length }
}

// ——— 5. anti-entropy: 15 of 100k keys differ ———

function syncOurs() {
  const base = encodeDelta(buildOurs().state())
  const runs = []
  for (let r = 0; r < REPS + 1; r++) {
    const a = new AWLWWMap({ replicaId: ID_A.replace('X', `${r}`) })
    const b = new AWLWWMap({ replicaId: ID_B.replace('P', `${r}`) })
    a.join(decodeDelta(base))
    b.join(decodeDelta(base))
    // Diverge; the deltas are never delivered.
    for (let i = 0; i < 5; i++) a.set(key(10 + i), { i: -i, s: 'changed' })
    for (let i = 0; i < 5; i++) a.delete(key(1000 + i))
    for (let i = 0; i < 5; i++) b.delete(key(5000 + i))
    gc()
    const la = a.link(b.replicaId)
    const lb = b.link(a.replicaId)
    let bytes = 0
    let messages = 0
    const t0 = now()
    for (let round = 0; ; round++) {
      if (round > 100) throw new Error('sync did not settle')
      const m1 = la.generate()
      if (m1) {
        bytes += m1.length
        messages++
        lb.receive(m1)
      }
      const m2 = lb.generate()
      if (m2) {
        bytes += m2.length
        messages++
        la.receive(m2)
      }
      if (!m1 && !m2) break
    }
    const t = now() - t0
    // 10 keys deleted (5 on each side), 5 overwritten.
    if (a.size !== N - 10 || b.size !== N - 10 || b.get(key(10))?.s !== 'changed')
      throw new Error(`sync left ${a.size} / ${b.size} keys`)
    if (r > 0) runs.push({ t, bytes, messages })
  }
  return {
    time: median(runs.map((x) => x.t)),
    bytes: median(runs.map((x) => x.bytes)),
    messages: median(runs.map((x) => x.messages)),
  }
}

/** Yjs's own protocol (y-protocols sync step 1/2): exchange state vectors, then missing updates. */
function syncYjs() {
  const base = Y.encodeStateAsUpdate(buildYjs())
  const runs = []
  for (let r = 0; r < REPS + 1; r++) {
    const a = new Y.Doc()
    const b = new Y.Doc()
    Y.applyUpdate(a, base)
    Y.applyUpdate(b, base)
    const ma = a.getMap('m')
    const mb = b.getMap('m')
    for (let i = 0; i < 5; i++) ma.set(key(10 + i), { i: -i, s: 'changed' })
    for (let i = 0; i < 5; i++) ma.delete(key(1000 + i))
    for (let i = 0; i < 5; i++) mb.delete(key(5000 + i))
    gc()
    const t0 = now()
    const svA = Y.encodeStateVector(a)
    const svB = Y.encodeStateVector(b)
    const toB = Y.encodeStateAsUpdate(a, svB)
    const toA = Y.encodeStateAsUpdate(b, svA)
    Y.applyUpdate(b, toB)
    Y.applyUpdate(a, toA)
    const t = now() - t0
    if (ma.size !== N - 10 || mb.size !== N - 10 || mb.get(key(10))?.s !== 'changed')
      throw new Error('Yjs sync did not converge')
    if (r > 0) runs.push({ t, bytes: svA.length + svB.length + toA.length + toB.length })
  }
  return { time: median(runs.map((x) => x.t)), bytes: median(runs.map((x) => x.bytes)), messages: 4 }
}

// ——— run ———

const fmtOps = (sPerOp) =>
  `${Math.round(1 / sPerOp).toLocaleString('en-US')} ops/s (${(sPerOp * 1e6).toFixed(2)} µs/op)`
const fmtMs = (x) => `${x.toFixed(1)} ms`
const fmtB = (x) => `${Math.round(x).toLocaleString('en-US')} B`
const met = (ok) => (ok ? 'met' : 'missed')

console.log('heap per key (each in its own process)…')
const heap = { ours: heapPerKey('ours'), yjs: heapPerKey('yjs'), automerge: heapPerKey('automerge') }
console.log('set + encode…')
const seOurs = setEncodeOurs()
const seYjs = setEncodeYjs()
console.log('building a 100k-key Automerge document (slow)…')
const amDoc = buildAutomerge()
const seAm = setEncodeAutomerge(amDoc)
console.log('full-state join…')
const jOurs = joinOurs()
const jYjs = joinYjs()
const jAm = loadAutomerge(amDoc)
console.log('single-key delta…')
const single = singleKeyBytes(buildOurs(), buildYjs(), seAm.doc)
console.log('sync of 15 differing keys…')
const sOurs = syncOurs()
const sYjs = syncYjs()

const rows = [
  [
    'local set + encode, 100k keys',
    fmtOps(seOurs),
    fmtOps(seYjs),
    `${fmtOps(seAm.perOp)} ¹`,
    '≥ 5× Yjs',
    `${met(seYjs / seOurs >= 5)} (${(seYjs / seOurs).toFixed(1)}×)`,
  ],
  [
    'full-state join into an empty replica, join only',
    fmtMs(jOurs.join),
    `${fmtMs(jYjs.time)} (applyUpdate)`,
    `${fmtMs(jAm.time)} (load) ²`,
    '≤ ½ Yjs',
    `${met(jOurs.join <= jYjs.time / 2)} (${(jOurs.join / jYjs.time).toFixed(2)}×)`,
  ],
  [
    'full-state decode + join',
    fmtMs(jOurs.decode + jOurs.join),
    fmtMs(jYjs.time),
    fmtMs(jAm.time),
    '≤ ½ Yjs',
    `${met(jOurs.decode + jOurs.join <= jYjs.time / 2)} (${((jOurs.decode + jOurs.join) / jYjs.time).toFixed(2)}×)`,
  ],
  ['full state encoded', fmtB(jOurs.bytes), fmtB(jYjs.bytes), fmtB(jAm.bytes), '', ''],
  [
    'heap bytes per key (100k-key replica)',
    fmtB(heap.ours),
    fmtB(heap.yjs),
    `${fmtB(heap.automerge)} ³`,
    '≤ 500 B',
    met(heap.ours <= 500),
  ],
  [
    'bytes of a single-key delta (overwrite, 16-char replica id)',
    fmtB(single.ours),
    fmtB(single.yjs),
    fmtB(single.automerge),
    '≤ 100 B',
    met(single.ours <= 100),
  ],
  [
    'sync, 15 of 100k keys differ: bytes',
    fmtB(sOurs.bytes),
    `${fmtB(sYjs.bytes)} ⁴`,
    '',
    '< 30 kB',
    met(sOurs.bytes < 30_000),
  ],
  ['sync: messages', String(sOurs.messages), String(sYjs.messages), '', '', ''],
  ['sync: wall time', fmtMs(sOurs.time), fmtMs(sYjs.time), '', '< 10 ms', met(sOurs.time < 10)],
]
const header = ['measure', 'ours', 'Yjs', 'Automerge', 'target', 'met?']
const shortfalls = rows.filter((r) => r[5].startsWith('missed')).map((r) => r[0])
const markdown = [
  '## crdt',
  '',
  `Machine: ${machine()}. Keys \`key-<i>\`, values \`{ i, s: 'value' }\`, ${N.toLocaleString('en-US')} distinct keys; times are medians of ${REPS} runs after a warm-up (gc before each). Yjs 13.x, Automerge 3.x. Load average at the end: ${loadavg()[0].toFixed(2)} (a shared machine: figures vary between runs).`,
  '',
  table(header, rows),
  '',
  `¹ Automerge: one \`change\` per op plus \`getLastLocalChange\` (the encoded change a peer is sent; \`saveIncremental\` is the same bytes for one change), median of ${AM_OPS} ops on a 100k-key document — building 100k keys one change at a time would take hours. ` +
    '² Automerge takes a whole state with `load` of `save` bytes, once (slow). ' +
    '³ heap: `heapUsed + external` (Automerge keeps its document in wasm memory) after gc, before and after building the replica in a fresh process, divided by 100k; values are shared objects in ours and Yjs. ' +
    '⁴ Yjs: state vectors both ways, then `encodeStateAsUpdate(doc, sv)` both ways (y-protocols sync steps 1 and 2); Yjs deletes are a delete set that is always shipped whole, so it has no digest tree to walk.',
  '',
  shortfalls.length === 0 ? 'All targets met in this run.' : `Missed in this run: ${shortfalls.join('; ')}.`,
  '',
  ...notes(),
].join('\n')

/** Why a target was missed, with this run's figures: only for the targets that were. */
function notes() {
  const out = []
  if (seYjs / seOurs < 5) {
    out.push(
      `**set + encode** (${(seOurs * 1e6).toFixed(2)} µs/op against Yjs's ${(seYjs * 1e6).toFixed(2)} µs/op, ${(seYjs / seOurs).toFixed(1)}×; 5× needs ≤ ${((seYjs * 1e6) / 5).toFixed(2)} µs/op). ` +
        'Encoding is now the smaller part: a single-key delta is written straight into a reused buffer, byte-identical to what msgpackr wrote. ' +
        'Most of what remains is keeping 100k live keys at all: each write allocates a record, its entry and an entry array, and inserts them into a 100k-entry Map, a digest-tree leaf bucket and the dot index. In CPU profiles (`node --cpu-prof`) a quarter to a third of the time is the garbage collector moving those long-lived objects out of the young generation. ' +
        'Yjs pays the same kinds of cost (an Item per write, plus a transaction), so trimming our allocations moves the ratio only slowly. ' +
        'Reaching 5× would take a different store (entries packed in typed arrays instead of one object per key), not a faster encoder.',
    )
  }
  const dj = jOurs.decode + jOurs.join
  if (jOurs.join > jYjs.time / 2 || dj > jYjs.time / 2) {
    out.push(
      `**full-state join**: join alone ${fmtMs(jOurs.join)}, decode + join ${fmtMs(dj)}, Yjs applyUpdate ${fmtMs(jYjs.time)} (½ = ${fmtMs(jYjs.time / 2)}). ` +
        'Join now shares entry arrays with the delta, skips key look-ups when the replica is empty and no longer builds a Map of the previous winners. ' +
        'Decoding (msgpackr, then a check of every field) on its own takes more than the ½-Yjs budget: most of it is allocating the 100k entries, values and strings the replica then keeps, and the garbage collection that follows. A hand-written reader that skipped msgpackr’s intermediate arrays was tried and measured no faster in CPU time, so it was not kept. ' +
        'Yjs’s applyUpdate decodes and integrates in one pass over its own, more compact format.',
    )
  }
  if (heap.ours > 500) out.push(`**heap**: ${fmtB(heap.ours)} per key.`)
  if (single.ours > 100) out.push(`**single-key delta**: ${fmtB(single.ours)}.`)
  if (sOurs.bytes >= 30_000 || sOurs.time >= 10) {
    out.push(`**sync**: ${fmtB(sOurs.bytes)} in ${sOurs.messages} messages, ${fmtMs(sOurs.time)}.`)
  }
  return out.flatMap((p) => [p, ''])
}

console.log(`\n${table(header, rows)}\n`)
recordSection('crdt', markdown)
