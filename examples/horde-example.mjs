// Three nodes of one horde in a single process, on the in-memory network.
//
//   npx turbo run build && node examples/horde-example.mjs
//
// It starts children from one node (the strategy spreads them over the three), lists and
// counts them cluster-wide, lets a child stop itself, terminates one, then stops one node
// gracefully: its counters move to the other two *with their state* (the behaviour's
// `handoff`), and none runs twice. Exits 0 when all of that held, 1 otherwise.
//
// Each node would normally be its own process on libp2p (`startHorde(system, { name,
// behaviours })` creates a TCP transport); the memory network gives the same Transport
// interface in one process, so the example needs no ports.
import { createMemoryNetwork } from '@nact-horde/transport'
import nact from 'nact'
import { startHorde, stopSelf } from 'nact-horde'

/** Each counter's latest value and the node it last started on, for printing and checks. */
const seen = new Map()
const note = (state) => {
  seen.set(state.id, { ...seen.get(state.id), n: state.n })
  return state
}

const behaviours = {
  // A counter that counts `args.ticks` messages it sends itself, then waits. Its state travels
  // on planned moves: `save` runs on the old node, `restore` instead of `init` on the new one.
  counter: {
    init: (args, ctx) => {
      // The child messages itself through ctx.self, so this example needs no ref; from outside
      // a child is reached with horde.ref(id) (see examples/demo.mjs and docs/getting-started.md).
      for (let i = 0; i < args.ticks; i++) nact.dispatch(ctx.self, { add: 1 })
      return note({ id: ctx.id, n: args.start })
    },
    handle: (state, msg) => note({ ...state, n: state.n + msg.add }),
    terminate: (state, reason) => {
      if (reason === 'handoff') log(`      ${state.id}: terminate({ n: ${state.n} }, 'handoff')`)
    },
    handoff: {
      save: (state) => state, // must be JSON-like: it travels in the replicated map
      restore: (saved, _args) => {
        log(`      ${saved.id}: restore({ n: ${saved.n} }) instead of init`)
        return note(saved)
      },
    },
  },
  // A one-shot job: does its work in a message to itself, then stops normally with stopSelf.
  // As a 'transient' child it is not restarted after a normal stop, and the cluster forgets it.
  job: {
    init: (args, ctx) => {
      nact.dispatch(ctx.self, { run: args.what })
      return { done: false }
    },
    handle: (_state, msg, ctx) => {
      log(`      job ${ctx.id} on ${ctx.node} ran '${msg.run}' and stops itself`)
      return stopSelf({ done: true })
    },
  },
}

const log = (s) => console.log(s)
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
async function waitFor(what, pred, timeout = 5000) {
  const deadline = Date.now() + timeout
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(20)
  }
}

// ——— three nodes ———

const network = createMemoryNetwork({ seed: 7 })
const nodes = []
for (let i = 0; i < 3; i++) {
  const system = nact.start()
  const transport = await network.createTransport({ nodeId: `node-${i}` })
  const horde = await startHorde(system, {
    name: 'counters',
    behaviours,
    transport,
    syncInterval: 100, // anti-entropy every 100 ms (default 1000)
  })
  horde.addEventListener('child:started', (e) => {
    log(`    [${e.detail.node}] child:started ${e.detail.id}`)
    seen.set(e.detail.id, { ...seen.get(e.detail.id), node: e.detail.node })
  })
  horde.addEventListener('child:stopped', (e) =>
    log(`    [${e.detail.node}] child:stopped ${e.detail.id} (${e.detail.reason})`),
  )
  nodes.push({ system, horde })
}
const [h0, h1, h2] = nodes.map((n) => n.horde)
log('Three nodes of horde "counters" on an in-memory network:')
await waitFor('every node to see three alive members', () =>
  [h0, h1, h2].every((h) => h.members().filter((m) => m.status === 'alive').length === 3),
)
log(`  members seen by node-0: ${JSON.stringify(h0.members())}`)

// ——— start children from one node ———

log('\nnode-0 starts six counters; the uniform strategy (rendezvous hashing) places each one:')
const ids = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot']
for (const [i, id] of ids.entries()) {
  const { node } = await h0.startChild({ id, behaviour: 'counter', args: { start: 100 * i, ticks: 5 } })
  log(`  startChild('${id}') → runs on ${node}`)
}
try {
  await h1.startChild({ id: 'alpha', behaviour: 'counter', args: { start: 0, ticks: 0 } })
} catch (err) {
  log(`  a second startChild('alpha') from node-1 → ${err.name}: it runs on ${err.node}`)
}

log('\nA transient job that stops itself with stopSelf():')
await h2.startChild({ id: 'job-1', behaviour: 'job', args: { what: 'rebuild index' }, restart: 'transient' })
await waitFor('the job to end and be forgotten', async () => (await h0.countChildren()).specs === ids.length)

await waitFor('every counter to count its ticks', () => ids.every((id, i) => seen.get(id)?.n === 100 * i + 5))
const before = await h1.whichChildren()
log('\nwhichChildren() from node-1 (asks every node):')
for (const c of before)
  log(`  ${c.id.padEnd(8)} on ${c.node}  ${c.status}, ${c.restart}, value ${seen.get(c.id).n}`)
log(`countChildren(): ${JSON.stringify(await h2.countChildren())}`)

log("\nterminateChild('foxtrot') from node-2:")
await h2.terminateChild('foxtrot')
ids.pop()

// ——— graceful stop of one node ———

const leaving = before.find((c) => c.id !== 'foxtrot')?.node ?? 'node-1'
const leavingHorde = [h0, h1, h2].find((h) => h.nodeId === leaving)
const moving = before.filter((c) => c.node === leaving && c.id !== 'foxtrot').map((c) => c.id)
const valuesBefore = new Map(ids.map((id) => [id, seen.get(id).n]))
log(`\n${leaving}.stop(): a graceful stop hands [${moving.join(', ')}] to the others, state included`)
await leavingHorde.stop()
const rest = [h0, h1, h2].filter((h) => h !== leavingHorde)
log(`  ${leaving} has stopped; members() on ${rest[0].nodeId}: ${JSON.stringify(rest[0].members())}`)

const after = await rest[0].whichChildren()
log(`\nwhichChildren() from ${rest[0].nodeId}:`)
for (const c of after) {
  const moved = moving.includes(c.id) ? `  (moved from ${leaving}, value was ${valuesBefore.get(c.id)})` : ''
  log(`  ${c.id.padEnd(8)} on ${c.node}  value ${seen.get(c.id).n}${moved}`)
}

// ——— checks ———

const problems = []
const placed = after.map((c) => c.id).sort()
if (JSON.stringify(placed) !== JSON.stringify([...ids].sort()))
  problems.push(`expected each of [${ids}] exactly once, got [${placed}]`)
if (after.some((c) => c.node === leaving)) problems.push(`a child still runs on ${leaving}`)
for (const id of moving) {
  if (seen.get(id).n !== valuesBefore.get(id)) problems.push(`${id} lost its state`)
  if (seen.get(id).node === leaving) problems.push(`${id} did not run again elsewhere`)
}
if (moving.length === 0) problems.push(`no child ran on ${leaving}: nothing was handed off`)

log('\nStopping the other two nodes.')
for (const h of rest) await h.stop()
for (const n of nodes) nact.stop(n.system)

if (problems.length > 0) {
  console.error(`\nFAILED:\n  ${problems.join('\n  ')}`)
  process.exit(1)
}
log(`\nOK: ${moving.length} counters moved with their values, every child runs exactly once.`)
