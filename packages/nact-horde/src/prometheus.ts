/**
 * A Prometheus exporter for a horde's metrics, through `prom-client` (an optional peer
 * dependency of nact-horde: install it to use this module).
 *
 * @packageDocumentation
 * @module nact-horde/prometheus
 */
import type { Registry } from 'prom-client'
import client from 'prom-client'
import type { Horde, HordeMetrics } from './horde.js'

/**
 * Exposes a horde's {@link Horde.metrics} to Prometheus through `prom-client` (an optional peer
 * dependency: install it to use this module). Values are read from the horde at scrape time.
 *
 * @example
 * ```ts
 * import { register } from 'prom-client'
 * import { registerHordeMetrics } from 'nact-horde/prometheus'
 * registerHordeMetrics(horde)            // then serve `await register.metrics()` on /metrics
 * ```
 * @returns a function that removes the metrics from the registry
 */
export function registerHordeMetrics(
  horde: Horde,
  registry: Registry = client.register,
  prefix = 'nact_horde_',
): () => void {
  const labels = { horde: horde.name, node: horde.nodeId }
  // horde.metrics() costs O(members), not O(children), but one snapshot per scrape keeps the
  // figures of one scrape consistent. It lives until the next turn of the event loop, which a
  // scrape runs within.
  let snapshot: HordeMetrics | undefined
  const metrics = (): HordeMetrics => {
    if (snapshot === undefined) {
      snapshot = horde.metrics()
      setImmediate(() => {
        snapshot = undefined
      })
    }
    return snapshot
  }
  const names: string[] = []
  const gauge = (name: string, help: string, read: (g: client.Gauge) => void, labelNames: string[] = []) => {
    names.push(prefix + name)
    new client.Gauge({
      name: prefix + name,
      help,
      labelNames: ['horde', 'node', ...labelNames],
      registers: [registry],
      collect() {
        read(this)
      },
    })
  }
  // Real counters (TYPE counter, so rate() and increase() apply): each scrape adds what the
  // horde's own monotonic counter grew by since the last one.
  const counter = (name: string, help: string, pick: (m: HordeMetrics) => number) => {
    names.push(`${prefix}${name}_total`)
    let last = 0
    new client.Counter({
      name: `${prefix}${name}_total`,
      help,
      labelNames: ['horde', 'node'],
      registers: [registry],
      collect() {
        const now = pick(metrics())
        this.inc(labels, Math.max(0, now - last))
        last = Math.max(last, now)
      },
    })
  }

  gauge(
    'members',
    'Members by liveness as this node sees them',
    (g) => {
      const m = metrics().members
      g.set({ ...labels, state: 'alive' }, m.alive)
      g.set({ ...labels, state: 'all' }, m.total)
    },
    ['state'],
  )
  gauge('children_local', 'Children running on this node', (g) => g.set(labels, metrics().children.local))
  gauge(
    'children',
    'Children known to the cluster, by assigned node',
    (g) => {
      for (const [owner, n] of Object.entries(metrics().children.perNode)) g.set({ ...labels, owner }, n)
    },
    ['owner'],
  )
  gauge('proxies', 'Ref proxy actors alive on this node', (g) => g.set(labels, metrics().proxies))
  gauge('held_messages', 'Messages waiting for a moving or restarting child', (g) =>
    g.set(labels, metrics().heldMessages),
  )
  counter('restarts', 'Local child restarts', (m) => m.restarts)
  counter('failed', 'Children given up (restart intensity) or that failed to start', (m) => m.failed)
  counter('failovers', 'Children of dead nodes reassigned by this node', (m) => m.failovers)
  counter('handoffs', 'Planned moves out of this node', (m) => m.handoffs)
  counter('conflicts', 'Duplicates after a partition resolved here', (m) => m.conflicts)
  counter('children_examined', 'Placement decisions taken by the reconciler', (m) => m.childrenExamined)
  counter('sync_rounds', 'Anti-entropy exchanges', (m) => m.syncRounds)
  counter('sync_audits', 'Audits of settled anti-entropy links started here', (m) => m.syncAudits)
  counter('sync_bytes_sent', 'Anti-entropy bytes sent', (m) => m.syncBytesSent)
  counter('sync_bytes_received', 'Anti-entropy bytes received', (m) => m.syncBytesReceived)
  counter('delta_bytes_sent', 'Gossiped delta bytes sent', (m) => m.deltaBytesSent)
  counter('delta_bytes_received', 'Gossiped delta bytes received', (m) => m.deltaBytesReceived)
  counter('deltas_relayed', 'Writes of other members relayed to every member', (m) => m.deltasRelayed)
  counter('deltas_dropped', 'Malformed gossiped deltas dropped', (m) => m.deltasDropped)
  counter('dead_letters', 'Messages that could not be delivered', (m) => m.deadLetters)
  counter('messages_routed_out', 'Messages sent to children on other nodes', (m) => m.messagesRoutedOut)
  counter('messages_routed_in', 'Messages received for children here', (m) => m.messagesRoutedIn)
  return () => {
    for (const n of names) registry.removeSingleMetric(n)
  }
}
