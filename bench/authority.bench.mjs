// Who decides that a node is dead, measured on real processes and real sockets: how fast
// children fail over when a node really dies (SIGKILL: its connections reset; silent death:
// all its traffic dropped), and how many children run twice when a node only looks dead (a
// frozen process, one cut link, a one-way cut). Nodes run in separate processes, each in its
// own network namespace on one bridge (bench/lib/netns.mjs) when the machine allows it; faults
// are iptables drops inside those namespaces. Without namespaces (not root, no iptables) the
// nodes run on 127.0.0.1, a silent death is a SIGSTOP that never ends, and the cut scenarios
// are not run. `node bench/run.mjs authority` (after `npx turbo run build`).
//
// Failover times come from the survivors' own clocks (process.hrtime, shared by every process
// on the machine): from the fault to the moment the last lost child's init finished. Duplicates
// are ground truth: every 20 ms each node's own list of local children over IPC; an id listed
// by two nodes in one sample counts (a frozen node is not asked while it is stopped: it runs
// nothing then).
import { loadavg } from 'node:os'
import {
  duplicatesIn,
  exactlyOnce,
  GroundTruth,
  hrNow,
  killAll,
  overlaps,
  spawnNode,
  waitFor,
} from '../packages/nact-horde/test/fixtures/horde-process.mjs'
import { createNetwork, netnsUnavailable } from './lib/netns.mjs'
import { machine, recordSection, table } from './lib/results.mjs'

const FAILURE_TIMEOUT = 1000
const PER_NODE = 200
const CUT_MS = 10_000
const NODE = { failureTimeout: FAILURE_TIMEOUT, syncInterval: 200 }

const ms = (ns) => Number(ns) / 1e6
const fmtMs = (x) => (Number.isFinite(x) ? `${x.toFixed(0)} ms` : 'never')
const ids = (n, prefix) => Array.from({ length: n }, (_, i) => `${prefix}-${i}`)
const log = (...a) => console.log('[authority bench]', ...a)
const sleep = (t) => new Promise((r) => setTimeout(r, t))

/** When a survivor first listed the victim as suspected, as dead (downed), and when the first lost child ran again. */
const phases = (r) =>
  `${Number.isNaN(r.suspected) ? 'no survivor listed it as suspected first' : `suspected ${fmtMs(r.suspected)}`}, downed ${fmtMs(r.downed)} (by every survivor ${fmtMs(r.downedAll)}), first restart ${fmtMs(r.first)}`

const noNetns = netnsUnavailable()
if (noNetns !== undefined)
  log(`network namespaces unavailable (${noNetns}): 127.0.0.1, SIGSTOP as silent death`)

/** `n` nodes (sorted by id), each in its own namespace when possible, all seeing all alive. */
async function cluster(n) {
  const net = noNetns === undefined ? createNetwork(n) : undefined
  const opts = (i) => (net === undefined ? {} : { netns: net.ns(i) })
  const listen = (i) => (net === undefined ? {} : { listen: net.listen(i) })
  const first = await spawnNode({ ...NODE, ...listen(0) }, opts(0))
  const rest = await Promise.all(
    Array.from({ length: n - 1 }, (_, k) =>
      spawnNode({ ...NODE, ...listen(k + 1), bootstrap: first.addresses }, opts(k + 1)),
    ),
  )
  const spawned = [first, ...rest]
  await Promise.all(spawned.map((node) => node.call('awaitAlive', { n, timeout: 30_000 })))
  // Fault helpers take indexes into the network; keep each node's index beside it.
  for (const [i, node] of spawned.entries()) node.netIndex = i
  const nodes = [...spawned].sort((x, y) => (x.nodeId < y.nodeId ? -1 : 1))
  return { nodes, net }
}

async function teardown(c) {
  await killAll()
  c?.net?.destroy()
}

/** Starts `n` children from the first node and waits until each runs exactly once. */
async function populate(nodes, n, prefix) {
  const all = ids(n, prefix)
  await nodes[0].call('start', { ids: all, behaviour: 'plain' }, 120_000)
  await waitFor(() => exactlyOnce(nodes, all), 20_000, 'children to run', 50)
  return all
}

/** Every id once among the nodes that answered in `s` (and `expect` nodes answered). */
function onceIn(s, all, expect) {
  if (s.lists.size !== expect) return false
  const seen = new Set()
  let listed = 0
  for (const list of s.lists.values()) {
    listed += list.length
    for (const id of list) seen.add(id)
  }
  return listed === all.length && seen.size === all.length
}

/**
 * A node dies — `how` is 'kill' (SIGKILL) or 'silent' (all its traffic dropped; SIGSTOP without
 * namespaces) — in a cluster of `n`; the highest id dies (the coordinator stays). Returns the
 * time until the last of its children ran again on a survivor, and until it was downed.
 */
async function failover(n, how) {
  const c = await cluster(n)
  try {
    const { nodes, net } = c
    const all = await populate(nodes, n * PER_NODE, `${how}${n}`)
    const victim = nodes[n - 1]
    const survivors = nodes.filter((x) => x !== victim)
    const lost = new Set(await victim.call('local'))
    const since = String(hrNow())
    let at
    if (how === 'kill') at = victim.kill()
    else if (net === undefined) at = victim.pause()
    else {
      at = hrNow()
      net.isolate(victim.netIndex)
    }
    await waitFor(
      async () =>
        (await Promise.all(survivors.map((x) => x.call('localCount')))).reduce((a, b) => a + b) ===
        all.length,
      20_000,
      'failover',
      10,
    )
    if (!(await exactlyOnce(survivors, all)))
      throw new Error(`${how} 1 of ${n}: after failover some child runs twice or nowhere`)
    const tls = await Promise.all(survivors.map((x) => x.call('timeline', { since })))
    // First and last restart of a lost child; first time a survivor suspected, then downed, it.
    let last = 0n
    let first
    const firstEvent = { suspected: undefined, dead: undefined }
    let downedAll
    for (const tl of tls) {
      for (const [id, startedAt] of tl.runs) {
        if (!lost.has(id)) continue
        const t = BigInt(startedAt)
        if (t > last) last = t
        if (first === undefined || t < first) first = t
      }
      // When this survivor downed it: the last of these is when every survivor agreed.
      const own = tl.members.find((e) => e.nodeId === victim.nodeId && e.status === 'dead')
      if (own !== undefined && (downedAll === undefined || BigInt(own.at) > downedAll))
        downedAll = BigInt(own.at)
      for (const e of tl.members) {
        if (e.nodeId !== victim.nodeId || !(e.status in firstEvent)) continue
        const t = BigInt(e.at)
        if (firstEvent[e.status] === undefined || t < firstEvent[e.status]) firstEvent[e.status] = t
      }
    }
    const since0 = (t) => (t === undefined ? Number.NaN : ms(t - at))
    const dups = overlaps(tls).length
    const r = {
      n,
      how,
      lost: lost.size,
      took: ms(last - at),
      suspected: since0(firstEvent.suspected),
      downed: since0(firstEvent.dead),
      downedAll:
        downedAll === undefined ||
        tls.some((tl) => !tl.members.some((e) => e.nodeId === victim.nodeId && e.status === 'dead'))
          ? Number.NaN
          : ms(downedAll - at),
      first: since0(first),
      dups,
    }
    log(
      `${how} 1 of ${n}: ${r.lost} children running again after ${fmtMs(r.took)} (${phases(r)}); ${dups} ran twice among the survivors`,
    )
    return r
  } finally {
    await teardown(c)
  }
}

/**
 * A fault that makes a healthy node look dead: `apply(c)` starts it, `heal(c)` ends it after
 * `hold` ms. Samples ground truth from before the fault until 2 s after exactly once returned
 * (or 10 s after the heal if it does not). `pausedNode(c)` names a node stopped by the fault
 * (not asked while stopped; its set of children must never grow).
 */
async function lookAlike(name, { apply, heal, hold, paused = () => undefined }) {
  const c = await cluster(3)
  try {
    const { nodes } = c
    const all = await populate(nodes, 3 * PER_NODE, name)
    const frozen = paused(c)
    const before = frozen === undefined ? undefined : new Set(await frozen.call('local'))
    const truth = new GroundTruth(nodes, 20).start()
    await waitFor(() => truth.samples.length >= 5, 5000, 'samples before the fault')
    const t0 = await apply(c, truth)
    await sleep(hold)
    // What each node that can answer believes just before the heal (evidence the fault took).
    const rank = new Map(nodes.map((x, i) => [x.nodeId, `n${i}`]))
    const views = []
    for (const [i, x] of nodes.entries()) {
      if (truth.paused.has(x)) {
        views.push(`n${i} stopped`)
        continue
      }
      const members = await x.call('members')
      const others = members.filter((m) => m.nodeId !== x.nodeId && m.status !== 'alive')
      views.push(
        `n${i} sees ${others.length === 0 ? 'all alive' : others.map((m) => `${rank.get(m.nodeId) ?? '?'} ${m.status}`).join(', ')}`,
      )
    }
    const healedAt = await heal(c, truth)
    let backAt
    await waitFor(
      () => {
        backAt = truth.samples.find((s) => s.at > healedAt && onceIn(s, all, 3))?.at
        return backAt !== undefined
      },
      10_000,
      'exactly once after the fault',
    ).catch(() => undefined)
    const until = hrNow() + 2_000_000_000n
    await waitFor(() => truth.samples.at(-1).at > until, 15_000, 'samples after the fault')
    const samples = await truth.stop()
    const counts = samples.map((s) => duplicatesIn(s).length)
    const maxDup = Math.max(0, ...counts)
    const worst = samples[counts.indexOf(maxDup)]
    const dupIds = new Set(samples.flatMap((s) => duplicatesIn(s)))
    const foreign =
      frozen === undefined
        ? 0
        : new Set(samples.flatMap((s) => (s.lists.get(frozen.nodeId) ?? []).filter((id) => !before.has(id))))
            .size
    const last = samples.at(-1)
    const present = new Set([...last.lists.values()].flat())
    const lostIds = all.filter((id) => !present.has(id)).length
    const duringFault = samples.filter((s) => s.at > t0 && s.at < healedAt)
    const heldAllDuring = duringFault.some((s) => new Set([...s.lists.values()].flat()).size === all.length)
    const r = {
      name,
      maxDup,
      dupIds: dupIds.size,
      worstAt: maxDup > 0 ? ms(worst.at - t0) : Number.NaN,
      dupFor:
        dupIds.size > 0
          ? ms(
              samples.findLast((s) => duplicatesIn(s).length > 0).at -
                samples.find((s) => duplicatesIn(s).length > 0).at,
            )
          : 0,
      back: backAt === undefined ? Number.NaN : ms(backAt - healedAt),
      foreign,
      lost: lostIds,
      finalOnce: onceIn(last, all, 3),
      failedOverDuring: heldAllDuring,
      samples: samples.length,
      views: views.join('; '),
    }
    log(
      `${name}: at most ${r.maxDup} ids listed twice in one sample (${r.dupIds} distinct, worst ${fmtMs(r.worstAt)} after the fault, over ${fmtMs(r.dupFor)}); ` +
        `exactly once ${fmtMs(r.back)} after the heal; ${r.lost} lost; ${r.samples} samples; before the heal ${r.views}` +
        (frozen === undefined ? '' : `; ${foreign} of the others' children started by the frozen node`),
    )
    return r
  } finally {
    await teardown(c)
  }
}

const rows = []
const notes = []
process.on('exit', () => void killAll())

try {
  // 1. Real deaths: failover time.
  const kill3 = await failover(3, 'kill')
  const kill5 = await failover(5, 'kill')
  const silent3 = await failover(3, 'silent')
  const silent5 = await failover(5, 'silent')
  const silentHow = noNetns === undefined ? 'all its traffic dropped (iptables)' : 'SIGSTOP, never resumed'
  for (const r of [kill3, kill5, silent3, silent5]) {
    const target = r.how === 'kill' && r.n === 3 ? 500 : FAILURE_TIMEOUT + 1000
    rows.push([
      `${r.how === 'kill' ? 'SIGKILL' : `silent death (${silentHow})`} of 1 of ${r.n} nodes (${r.lost} children) → all running on the survivors`,
      `${fmtMs(r.took)} (${phases(r)})`,
      `≤ ${target} ms`,
      r.took <= target,
    ])
    if (r.dups > 0) notes.push(`${r.how} 1 of ${r.n}: ${r.dups} children ran on two survivors at once`)
  }

  // 2. Looks dead, is not: duplicates.
  const freeze = await lookAlike('freeze', {
    hold: 2 * FAILURE_TIMEOUT,
    paused: (c) => c.nodes[2],
    apply: (c, truth) => truth.pause(c.nodes[2]),
    heal: (c, truth) => truth.resume(c.nodes[2]),
  })
  rows.push([
    `freeze: SIGSTOP 1 of 3 for ${2 * FAILURE_TIMEOUT} ms, then SIGCONT — max ids on two nodes in one sample`,
    `${freeze.maxDup} (${freeze.dupIds} ids, for ${fmtMs(freeze.dupFor)}); exactly once ${fmtMs(freeze.back)} after SIGCONT`,
    '0',
    freeze.maxDup === 0,
  ])
  rows.push([
    '… of which the resumed node started of the others’ children',
    String(freeze.foreign),
    '0',
    freeze.foreign === 0,
  ])
  notes.push(`freeze, just before SIGCONT: ${freeze.views}`)
  if (freeze.maxDup > 0)
    notes.push(
      `freeze: the frozen node's children are failed over while it is stopped (${freeze.failedOverDuring ? 'all ran on the survivors before the resume' : 'not all were running on the survivors before the resume'}); after SIGCONT its old copies keep running until the node learns the new placements, so each of its ids is listed by two processes for up to ${fmtMs(freeze.dupFor)}. It starts nothing new (${freeze.foreign} foreign ids).`,
    )
  if (noNetns === undefined) {
    const cut = await lookAlike('link cut', {
      hold: CUT_MS,
      apply: (c) => {
        const at = hrNow()
        c.net.cut(c.nodes[0].netIndex, c.nodes[2].netIndex)
        return at
      },
      heal: (c) => {
        const at = hrNow()
        c.net.heal()
        return at
      },
    })
    notes.push(`link cut, just before the heal (n0 lowest id … n2 highest): ${cut.views}`)
    rows.push([
      `one link cut both ways (lowest id ↔ highest id; the third reaches both) for ${CUT_MS / 1000} s — max ids on two nodes in one sample`,
      `${cut.maxDup} (${cut.dupIds} ids); ${cut.lost} lost; exactly once at the end: ${cut.finalOnce}`,
      '0',
      cut.maxDup === 0 && cut.lost === 0 && cut.finalOnce,
    ])
    const asym = await lookAlike('one-way cut', {
      hold: CUT_MS,
      apply: (c) => {
        const at = hrNow()
        c.net.dropFrom(c.nodes[0].netIndex, c.nodes[1].netIndex)
        return at
      },
      heal: (c) => {
        const at = hrNow()
        c.net.heal()
        return at
      },
    })
    notes.push(`one-way cut, just before the heal: ${asym.views}`)
    rows.push([
      `one-way cut (lowest id drops every packet from the middle id) for ${CUT_MS / 1000} s — max ids on two nodes in one sample`,
      `${asym.maxDup} (${asym.dupIds} ids); ${asym.lost} lost; exactly once at the end: ${asym.finalOnce}`,
      '0',
      asym.maxDup === 0 && asym.lost === 0 && asym.finalOnce,
    ])
  } else {
    notes.push(`link cuts not measured: network namespaces unavailable (${noNetns})`)
  }
} finally {
  await killAll()
}

const header = ['scenario', 'measured', 'target', 'met?']
const body = rows.map(([a, b, c, d]) => [a, b, c, d ? 'yes' : '**no**'])
console.log(`\n${table(header, body)}\n`)
for (const n of notes) console.log(`- ${n}`)
const load = loadavg()[0].toFixed(2)
const setup =
  noNetns === undefined
    ? 'each node in its own network namespace on one bridge (bench/lib/netns.mjs; faults are iptables drops on arrival inside the namespaces)'
    : `on 127.0.0.1 (network namespaces unavailable: ${noNetns}; silent death is SIGSTOP)`
recordSection(
  'authority',
  [
    '## authority',
    '',
    `Machine: ${machine()}. Nodes in separate processes over libp2p TCP, ${setup}; failureTimeout ${FAILURE_TIMEOUT} ms, syncInterval 200 ms, uniform distribution, ${PER_NODE} children per node. Failover: from the fault to the last lost child's init finishing, on the survivors' clocks; the highest id dies (not the coordinator). Duplicates: ground truth, each node's own list of local children sampled every 20 ms over IPC; an id listed by two nodes in one sample counts. Load average at the end: ${load} (a shared 2-core machine: figures vary between runs).`,
    '',
    table(header, body),
    ...(notes.length > 0 ? ['', ...notes.map((n) => `- ${n}`)] : []),
  ].join('\n'),
)
