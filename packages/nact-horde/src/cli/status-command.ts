import {
  createTransport,
  NoHandlerError,
  type PeerIdMismatchError,
  PeerUnreachableError,
} from '@nact-horde/transport'
import { TimeoutError } from '../errors.js'
import type { HordeStatus } from '../horde.js'
import { fetchStatus } from '../status-client.js'
import {
  checkMultiaddr,
  DEFAULT_NAME,
  EXIT_FAILURE,
  EXIT_OK,
  parseFlags,
  parseMs,
  UsageError,
} from './args.js'
import { messageOf, table } from './format.js'
import type { Io } from './io.js'

export const STATUS_HELP = `Usage: nact-horde status --connect <multiaddr> [options]

Prints a running node's view of its horde: the members, their status and how many children
each runs. Connects without joining the horde.

Options:
  --connect <multiaddr>   the node's address as 'nact-horde node' prints it, ending in
                          /p2p/<node id> (required)
  --name <horde>          the horde's name (default: ${DEFAULT_NAME})
  --cluster-key <key>     the cluster's shared secret, if it has one
                          (default: $NACT_HORDE_CLUSTER_KEY)
  --timeout <ms>          give up after this long (default: 5000)
  --json                  print the status as JSON instead of a table
  -h, --help              show this help

Exit codes: 0 printed, 1 the node could not be reached or answered with an error,
2 wrong command line.

Example:
  nact-horde status --connect /ip4/127.0.0.1/tcp/4001/p2p/12D3KooW…
`

/** The status as the table `nact-horde status` prints. */
export function formatStatus(s: HordeStatus): string[] {
  const alive = s.members.filter((m) => m.status === 'alive').length
  const rows = [...s.members]
    .sort((a, b) => (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0))
    .map((m) => [m.nodeId, m.status, String(m.children), m.nodeId === s.node ? '(connected)' : ''])
  const assigned = s.members.reduce((n, m) => n + m.children, 0)
  const lines = [
    `horde '${s.name}' as seen by ${s.node}`,
    `${s.members.length} ${s.members.length === 1 ? 'member' : 'members'} (${alive} alive), ${s.children} ${s.children === 1 ? 'child' : 'children'}`,
    '',
    ...table(['NODE', 'STATUS', 'CHILDREN', ''], rows, ['left', 'left', 'right']),
  ]
  // Children assigned to a node that is no longer a member (e.g. just removed): say so, not hide it.
  if (assigned !== s.children)
    lines.push('', `${s.children - assigned} children are assigned to nodes not listed`)
  return lines
}

export async function statusCommand(args: string[], io: Io): Promise<number> {
  const flags = parseFlags(
    args,
    {
      connect: { type: 'string' },
      name: { type: 'string' },
      'cluster-key': { type: 'string' },
      timeout: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    'status',
  )
  if (flags.help) {
    io.out(STATUS_HELP)
    return EXIT_OK
  }
  if (flags.connect === undefined) {
    throw new UsageError(
      "status needs --connect <multiaddr>: the address 'nact-horde node' printed",
      'status',
    )
  }
  const address = checkMultiaddr('--connect', flags.connect, 'status', true)
  const name = flags.name ?? DEFAULT_NAME
  const timeout = parseMs('--timeout', flags.timeout, 'status') ?? 5000
  const clusterKey = flags['cluster-key'] ?? io.env.NACT_HORDE_CLUSTER_KEY
  let status: HordeStatus
  try {
    status = await fetchStatus(address, { name, timeout, ...(clusterKey ? { clusterKey } : {}) })
  } catch (err) {
    // Unreachable may mean that another node answers there now: say so rather than guess.
    const unreachable = err instanceof PeerUnreachableError || (err as Error)?.name === 'TimeoutError'
    const mismatch = unreachable
      ? await findMismatch(address, clusterKey, Math.min(timeout, 3000))
      : undefined
    io.err(`error: ${mismatch === undefined ? explain(err, address, name) : explainMismatch(mismatch)}`)
    return EXIT_FAILURE
  }
  if (flags.json) io.out(JSON.stringify(status, null, 2))
  else io.out(formatStatus(status).join('\n'))
  return EXIT_OK
}

/**
 * Dials `address` once more and reports whether the node that answers there has another id
 * than its `/p2p/` part (the transport refuses it and says so in `peer:mismatch`).
 */
async function findMismatch(
  address: string,
  clusterKey: string | undefined,
  timeout: number,
): Promise<PeerIdMismatchError | undefined> {
  const t = await createTransport({ bootstrap: [address], ...(clusterKey ? { clusterKey } : {}) })
  try {
    return await new Promise<PeerIdMismatchError | undefined>((resolve) => {
      const timer = setTimeout(() => resolve(undefined), timeout)
      const done = (value: PeerIdMismatchError | undefined) => {
        clearTimeout(timer)
        resolve(value)
      }
      t.addEventListener('peer:mismatch', (e) => done(e.detail.error))
      t.addEventListener('peer:up', () => done(undefined))
    })
  } finally {
    await t.stop()
  }
}

function explainMismatch(err: PeerIdMismatchError): string {
  const where = err.address.split('/p2p/')[0]
  return (
    `the node at ${where} is ${err.actual}, not ${err.expected}: the address is stale (that node restarted with a new id). ` +
    `Use the address it prints now, or ${where} without /p2p/; start nodes with --identity <file> to keep their ids`
  )
}

function explain(err: unknown, address: string, name: string): string {
  if (err instanceof NoHandlerError) {
    return `the node at ${address} runs no horde named '${name}' (pass --name with the name its 'nact-horde node' was started with)`
  }
  if (err instanceof TimeoutError || (err as Error)?.name === 'TimeoutError') {
    return `could not reach ${address}: no answer within the timeout (is the node running, and is the cluster key the same?)`
  }
  if (err instanceof PeerUnreachableError) {
    return `could not reach ${address}: ${messageOf(err)} (is the node running, and is the cluster key the same?)`
  }
  return `could not read the status of ${address}: ${messageOf(err)}`
}
