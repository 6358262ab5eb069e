import { exampleBehaviours } from '../example-behaviours.js'
import { type Horde, startHorde } from '../horde.js'
import { nact } from '../local/nact.js'
import type { HordeOptions } from '../options.js'
import { isLoopback, reachableAddresses } from './addresses.js'
import {
  checkMultiaddr,
  DEFAULT_NAME,
  EXIT_FAILURE,
  EXIT_OK,
  parseFlags,
  parseMs,
  UsageError,
} from './args.js'
import { EventLog } from './event-log.js'
import { messageOf, plural } from './format.js'
import type { Io } from './io.js'
import { serveIpc } from './ipc-control.js'

const DEFAULT_LISTEN = '/ip4/127.0.0.1/tcp/0'
const DEFAULT_FAILURE_TIMEOUT = 3000
/** Exit code after a second Ctrl-C cut the graceful stop short (128 + SIGINT, as shells report it). */
const EXIT_INTERRUPTED = 130

export const NODE_HELP = `Usage: nact-horde node [options]

Starts a horde node that runs the example behaviours (counter, echo), prints its node id and
address (so that others can --bootstrap from it), logs members going up and down and children
starting, failing over and moving, and stops gracefully on Ctrl-C (SIGINT) or SIGTERM: its
children are handed to the other members with their state. A second Ctrl-C stops at once.

Options:
  --bootstrap <multiaddr>    a node to join through: an address another node printed, or
                             just its host and port (/ip4/10.0.0.5/tcp/4001), or a DNS name
                             (/dns4/horde.example/tcp/4001: every address it resolves to,
                             re-resolved every 30 s); repeat for several. Retried until it
                             answers. Without it: a new cluster
  --name <horde>             the horde's name; nodes with the same name form one supervisor
                             (default: ${DEFAULT_NAME})
  --listen <multiaddr>       where to listen; repeat for several (default: ${DEFAULT_LISTEN},
                             use /ip4/0.0.0.0/tcp/4001 to be reachable from other machines)
  --identity <file>          key file that keeps the node id across restarts; created (mode
                             0600) if missing, its folder must exist
                             (default: $NACT_HORDE_IDENTITY; none: a new id at every start)
  --cluster-key <key>        shared secret: only nodes with the same key can connect
                             (default: $NACT_HORDE_CLUSTER_KEY)
  --failure-timeout <ms>     silence after which a member counts as dead (default: ${DEFAULT_FAILURE_TIMEOUT})
  --redistribution <mode>    passive: move children only when their node leaves or dies;
                             active: also rebalance when a node joins (default: passive)
  --ipc                      take commands from the parent process over its IPC channel (for
                             scripts that fork the node, such as examples/demo.mjs)
  -h, --help                 show this help

Example:
  nact-horde node --name shop
  nact-horde node --name shop --bootstrap /ip4/127.0.0.1/tcp/40123/p2p/12D3KooW…
  nact-horde node --name shop --listen /ip4/0.0.0.0/tcp/4001 --identity /var/lib/horde/node.key \
                  --bootstrap /dns4/horde-0.horde/tcp/4001
`

export async function nodeCommand(args: string[], io: Io): Promise<number> {
  const flags = parseFlags(
    args,
    {
      bootstrap: { type: 'string', multiple: true },
      name: { type: 'string' },
      listen: { type: 'string', multiple: true },
      identity: { type: 'string' },
      'cluster-key': { type: 'string' },
      'failure-timeout': { type: 'string' },
      redistribution: { type: 'string' },
      ipc: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    'node',
  )
  if (flags.help) {
    io.out(NODE_HELP)
    return EXIT_OK
  }
  const bootstrap = (flags.bootstrap ?? []).map((a) => checkMultiaddr('--bootstrap', a, 'node', false))
  const listen = (flags.listen ?? [DEFAULT_LISTEN]).map((a) => checkMultiaddr('--listen', a, 'node', false))
  const name = flags.name ?? DEFAULT_NAME
  if (name.length === 0 || name.length > 100)
    throw new UsageError('--name must be 1 to 100 characters', 'node')
  const failureTimeout =
    parseMs('--failure-timeout', flags['failure-timeout'], 'node', 100) ?? DEFAULT_FAILURE_TIMEOUT
  const redistribution = flags.redistribution ?? 'passive'
  if (redistribution !== 'passive' && redistribution !== 'active') {
    throw new UsageError(`--redistribution must be 'passive' or 'active', got '${redistribution}'`, 'node')
  }
  if (flags.ipc && process.send === undefined) {
    throw new UsageError('--ipc needs an IPC channel: start the node with child_process.fork', 'node')
  }
  const clusterKey = flags['cluster-key'] ?? io.env.NACT_HORDE_CLUSTER_KEY
  const identity = flags.identity ?? io.env.NACT_HORDE_IDENTITY
  if (identity === '') throw new UsageError('--identity needs the path of a key file', 'node')

  const options: HordeOptions = {
    name,
    behaviours: exampleBehaviours,
    transport: { listen, bootstrap, ...(identity === undefined ? {} : { identity }) },
    failureTimeout,
    processRedistribution: redistribution,
    ...(clusterKey ? { clusterKey } : {}),
  }
  const system = nact.start()
  let horde: Horde
  try {
    horde = await startHorde(system, options)
  } catch (err) {
    nact.stop(system)
    io.err(`error: could not start the node: ${explainStartError(err)}`)
    return EXIT_FAILURE
  }

  printBanner(horde, io, { bootstrap, listen, clusterKey: clusterKey !== undefined && clusterKey !== '' })
  const log = new EventLog(horde, io.out, failureTimeout + 10_000)

  return new Promise<number>((resolve) => {
    let stopping: Promise<void> | undefined
    const finish = (code: number) => {
      log.close()
      process.off('SIGINT', onSignal)
      process.off('SIGTERM', onSignal)
      resolve(code)
    }
    const stop = (why: string): Promise<void> => {
      if (stopping !== undefined) return stopping
      const local = horde.localChildren().length
      const others = horde.members().filter((m) => m.status === 'alive' && m.nodeId !== horde.nodeId).length
      log.flush()
      log.line(
        others > 0
          ? `stopping (${why}): handing ${plural(local, 'child', 'children')} to the other members… (Ctrl-C again to stop at once)`
          : `stopping (${why}): no other member is alive, so ${plural(local, 'child', 'children')} stop with this node`,
      )
      const t0 = performance.now()
      const before = horde.metrics().handoffs
      stopping = horde.stop().then(
        () => {
          nact.stop(system)
          const moved = horde.metrics().handoffs - before
          log.flush()
          log.line(
            `stopped in ${Math.round(performance.now() - t0)} ms; handed off ${plural(moved, 'child', 'children')}`,
          )
          finish(EXIT_OK)
        },
        (err: unknown) => {
          io.err(`error: the graceful stop failed: ${messageOf(err)}`)
          finish(EXIT_FAILURE)
        },
      )
      return stopping
    }
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping === undefined) {
        void stop(signal)
        return
      }
      log.line(
        `${signal} again: stopping at once (children not handed off yet restart elsewhere without their state)`,
      )
      finish(EXIT_INTERRUPTED)
    }
    process.on('SIGINT', onSignal)
    process.on('SIGTERM', onSignal)
    if (flags.ipc) {
      serveIpc({
        horde,
        stop,
        abandon: () => {
          // The script that drove this node is gone: no one is left to watch a graceful stop.
          if (stopping === undefined) finish(EXIT_FAILURE)
        },
      })
    }
  })
}

function printBanner(
  horde: Horde,
  io: Io,
  o: { bootstrap: string[]; listen: string[]; clusterKey: boolean },
): void {
  const reachable = reachableAddresses(horde.addresses, o.listen, horde.nodeId)
  // The join hint shows an address another machine can use; loopback only when there is none.
  const [first] = reachable.length > 0 ? reachable : horde.addresses
  const addresses = [...new Set([...horde.addresses, ...reachable])]
  const name = shellWord(horde.name)
  const lines = [
    `nact-horde node started`,
    `  node id     ${horde.nodeId}`,
    `  horde       ${horde.name}`,
    ...addresses.map((a) => `  address     ${a}`),
    `  behaviours  ${Object.keys(exampleBehaviours).join(', ')}`,
    o.bootstrap.length > 0 ? `  joining via ${o.bootstrap.join(', ')}` : '  a new cluster (no --bootstrap)',
  ]
  if (first !== undefined) {
    const key = o.clusterKey ? ' --cluster-key <key>' : ''
    lines.push(
      '',
      'Another node joins with:',
      `  nact-horde node --name ${name}${key} --bootstrap ${first}`,
      'The cluster, seen from here:',
      `  nact-horde status --name ${name}${key} --connect ${first}`,
      '',
      'Ctrl-C stops this node gracefully (its children move to the other members).',
    )
  }
  io.out(lines.join('\n'))
  if (reachable.length === 0 && horde.addresses.every(isLoopback)) {
    io.err(
      'warning: listening on loopback only: nodes on other machines cannot join this one. ' +
        'Pass --listen /ip4/0.0.0.0/tcp/4001 (any free port) to accept them.',
    )
  }
}

/** Quotes a word for a POSIX shell when it needs it, so the printed commands can be pasted. */
function shellWord(word: string): string {
  return /^[\w.@%+=:,/-]+$/.test(word) ? word : `'${word.replaceAll("'", "'\\''")}'`
}

/** libp2p's listen errors carry a stack trace in their message: say what went wrong instead. */
function explainStartError(err: unknown): string {
  const message = messageOf(err)
  const inUse = /EADDRINUSE\D*([\d.:[\]a-f]+:\d+)/i.exec(message)
  if (inUse) {
    return `${inUse[1]} is already in use (another process listens there): choose another --listen port, or tcp/0 for a free one`
  }
  return message
    .split('\n')
    .filter((l) => !/^\s+at /.test(l))
    .join('\n')
    .trim()
}
