// Transport figures on 127.0.0.1 with three nodes in separate processes: time to a full
// mesh after start, publish→all-received latency, request/response latency and throughput
// over the reused stream, and the RSS of an idle node. `node bench/run.mjs transport`.
import { loadavg } from 'node:os'
import { machine, recordSection, table } from './lib/results.mjs'
import { spawnTransportNode } from './lib/transport-node.mjs'

const GOSSIP_N = 1000
const REQUEST_N = 5000
/** ms between publications: 200 messages/s. */
const GOSSIP_GAP = 5

const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]
}
const ms = (x) => `${x.toFixed(3)} ms`

/** A 3-node cluster with `init`: mesh time, idle RSS, gossip latencies, request figures. */
async function measure(init) {
  const a = spawnTransportNode(init)
  const readyA = await a.next('ready')
  const b = spawnTransportNode({ ...init, bootstrap: readyA.addresses })
  const c = spawnTransportNode({ ...init, bootstrap: readyA.addresses })
  const [readyB, readyC] = await Promise.all([b.next('ready'), c.next('ready')])
  const meshedAt = (await Promise.all([a, b, c].map((n) => n.next('meshed')))).map((m) => Number(m.at))
  // hrtime in ns as Number: exact to the ns for 100 days of uptime.
  const start = Math.min(Number(readyB.startedAt), Number(readyC.startedAt))
  const meshMs = (Math.max(...meshedAt) - start) / 1e6

  // RSS of an idle, meshed node before any load.
  await new Promise((resolve) => setTimeout(resolve, 1000))
  c.send({ cmd: 'rss' })
  const rss = (await c.next('rss')).rss

  // Gossip: wait until B and C receive A's probes (subscriptions known), then measure.
  for (;;) {
    a.send({ cmd: 'probe' })
    await a.next('probed')
    b.send({ cmd: 'seen' })
    c.send({ cmd: 'seen' })
    const [sb, sc] = await Promise.all([b.next('seen'), c.next('seen')])
    if (sb.from.includes(readyA.nodeId) && sc.from.includes(readyA.nodeId)) break
  }
  // Warm-up round (JIT, gossipsub mesh), then the measured one.
  for (const n of [200, GOSSIP_N]) {
    a.send({ cmd: 'gossip', n, size: 64, gap: GOSSIP_GAP })
    await a.next('gossiped')
    await new Promise((resolve) => setTimeout(resolve, 300))
    b.send({ cmd: 'latencies' })
    c.send({ cmd: 'latencies' })
    if (n !== GOSSIP_N) await Promise.all([b.next('latencies'), c.next('latencies')])
  }
  const [lb, lc] = await Promise.all([b.next('latencies'), c.next('latencies')])
  const byB = new Map(lb.latencies)
  const allReceived = lc.latencies
    .filter(([seq]) => byB.has(seq))
    .map(([seq, l]) => Math.max(l, byB.get(seq)))
  const delivered = allReceived.length

  // Request/response from B to A over the reused stream.
  b.send({ cmd: 'request', target: readyA.nodeId, n: REQUEST_N, warmup: 500, size: 64, concurrency: 32 })
  const req = await b.next('requested')

  for (const n of [a, b, c]) n.send({ cmd: 'stop' })
  await Promise.all([a, b, c].map((n) => new Promise((resolve) => n.child.once('exit', resolve))))

  return { meshMs, rss, allReceived, delivered, req, loadMs: readyB.loadMs }
}

const direct = await measure({})
const viaGossipsub = await measure({ pubsub: 'gossipsub' })
const { meshMs, rss, allReceived, delivered, req } = direct
const gossipMedian = quantile(allReceived, 0.5)
const reqMedian = quantile(req.each, 0.5)
const rows = [
  [
    'mesh formed after createTransport() of the bootstrapping nodes (3 nodes)',
    ms(meshMs),
    '≤ 500 ms',
    meshMs <= 500 ? 'met' : 'missed',
  ],
  [
    `publish → all received, median (${delivered}/${GOSSIP_N} msgs of 64 B, one every ${GOSSIP_GAP} ms)`,
    ms(gossipMedian),
    '≤ 3 ms',
    gossipMedian <= 3 ? 'met' : 'missed',
  ],
  ['loading libp2p modules (once per process, not in the mesh figure)', ms(direct.loadMs), '', ''],
  ['publish → all received, p99', ms(quantile(allReceived, 0.99)), '', ''],
  [
    `… the same with pubsub: 'gossipsub' (signed, relayed), median (${viaGossipsub.delivered}/${GOSSIP_N})`,
    ms(quantile(viaGossipsub.allReceived, 0.5)),
    '',
    '',
  ],
  ["… with pubsub: 'gossipsub', p99", ms(quantile(viaGossipsub.allReceived, 0.99)), '', ''],
  [
    'request/response median (64 B, reused stream)',
    ms(reqMedian),
    '≤ 0.5 ms',
    reqMedian <= 0.5 ? 'met' : 'missed',
  ],
  ['request/response p99', ms(quantile(req.each, 0.99)), '', ''],
  ['sequential throughput', `${Math.round(REQUEST_N / (req.totalMs / 1000))} req/s`, '', ''],
  ['throughput, 32 in flight', `${Math.round(REQUEST_N / (req.concurrentMs / 1000))} req/s`, '', ''],
  ['RSS of one idle meshed node', `${(rss / 2 ** 20).toFixed(1)} MiB`, '', ''],
]
const markdown = [
  '## transport',
  '',
  `Machine: ${machine()}. Three nodes in separate processes on 127.0.0.1 (TCP, noise, yamux; publications direct over each peer's stream, the default, and, for comparison, through gossipsub with signed messages). Load average at the end: ${loadavg()[0].toFixed(2)} (the machine is shared, figures vary between runs by ±50 %).`,
  '',
  table(['figure', 'value', 'target', ''], rows),
].join('\n')
console.log(markdown)
recordSection('transport', markdown)
