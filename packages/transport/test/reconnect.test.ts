// Stable identities, bootstrap by address or DNS name, and redialling that never gives up:
// what nodes on several machines need (issue 12), on loopback.
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises'
import { type AddressInfo, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { format } from 'node:util'
import {
  createTransport,
  IdentityError,
  InvalidOptionsError,
  type PeerMismatchEventDetail,
  RPC_PROTOCOL,
  type Transport,
  type TransportInit,
} from '@nact-horde/transport'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { nextPeerEvent, rawLibp2pNode, waitFor } from './helpers.js'

const OTHER_PEER = '12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq'

/** `/ip4/…/tcp/…` of a node, without its `/p2p/<id>`. */
const hostPort = (t: Transport) => t.addresses[0]!.split('/p2p/')[0]!
const portOf = (t: Transport) => Number(hostPort(t).split('/tcp/')[1])

describe('libp2p transport across restarts and machines', () => {
  const cleanup: Array<() => Promise<void> | void> = []
  let dir = ''
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'horde-identity-'))
    cleanup.push(() => rm(dir, { recursive: true, force: true }))
  })
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn()
  })
  const start = async (init: TransportInit = {}) => {
    const t = await createTransport(init)
    cleanup.push(() => t.stop())
    return t
  }

  it('an identity file is created with mode 0600 and gives the same node id after a restart', async () => {
    const path = join(dir, 'node.key')
    const first = await start({ identity: path })
    expect((await stat(path)).mode & 0o777).toBe(0o600)
    await first.stop()
    const again = await start({ identity: path })
    expect(again.nodeId).toBe(first.nodeId)
    const other = await start({ identity: join(dir, 'other.key') })
    expect(other.nodeId).not.toBe(first.nodeId)
  })

  it('an identity in a missing folder, a folder, or a file that is not a key: IdentityError naming the path', async () => {
    const garbage = join(dir, 'garbage.key')
    await writeFile(garbage, 'not a key')
    const empty = join(dir, 'empty.key')
    await writeFile(empty, '')
    for (const path of [join(dir, 'missing', 'node.key'), dir, garbage, empty]) {
      const err = await createTransport({ identity: path }).catch((e: unknown) => e)
      expect(err, path).toBeInstanceOf(IdentityError)
      expect((err as IdentityError).path).toBe(path)
    }
    const missing = await createTransport({ identity: join(dir, 'missing', 'node.key') }).catch(
      (e: Error) => e,
    )
    expect((missing as Error).message).toMatch(/does not exist — create it/)
    // The refused file is left as it was.
    expect((await stat(garbage)).size).toBe(9)
  })

  it('joins through a bootstrap address without /p2p/, learning the id on connect', async () => {
    const a = await start()
    const b = await start({ bootstrap: [hostPort(a)] })
    await waitFor(() => b.peers().includes(a.nodeId) && a.peers().includes(b.nodeId), 10_000)
    expect(b.stats().peerIdMismatches).toBe(0)
  })

  it('joins through /dns4/localhost/tcp/<port> with the system resolver', async () => {
    const a = await start()
    const b = await start({ bootstrap: [`/dns4/localhost/tcp/${portOf(a)}`] })
    await waitFor(() => b.peers().includes(a.nodeId), 10_000)
  })

  it('dials every address a name resolves to, and finds addresses that appear later', async () => {
    const a = await start()
    const port = portOf(a)
    // Another node on the same port of another loopback address: what a second pod behind a
    // headless service looks like.
    const c = await start({ listen: [`/ip4/127.0.0.2/tcp/${port}`] })
    const answers: Record<string, string[]> = { 'horde.test': ['127.0.0.1', '127.0.0.2'] }
    const asked: string[] = []
    const resolveHost = async (name: string, family: 0 | 4 | 6) => {
      asked.push(`${name}/${family}`)
      const ips = answers[name]
      if (ips === undefined) throw new Error(`ENOTFOUND ${name}`)
      return [...ips]
    }
    const b = await start({ bootstrap: [`/dns4/horde.test/tcp/${port}`], resolveHost, resolveInterval: 200 })
    await waitFor(() => b.peers().includes(a.nodeId) && b.peers().includes(c.nodeId), 10_000)
    expect(asked[0]).toBe('horde.test/4')
    // A third pod appears behind the name; nobody else knows it: only re-resolution finds it.
    const d = await start({ listen: [`/ip4/127.0.0.3/tcp/${port}`] })
    answers['horde.test']!.push('127.0.0.3')
    await waitFor(() => b.peers().includes(d.nodeId), 10_000, 'the new address was not dialled')
  })

  it('a bootstrap address whose /p2p/ id names another node: refused, peer:mismatch, counted', async () => {
    const a = await start()
    const logged: string[] = []
    const b = await start({
      bootstrap: [`${hostPort(a)}/p2p/${OTHER_PEER}`],
      redialMaxDelay: 100,
      log: (f, ...args) => logged.push(`${f} ${args.join(' ')}`),
    })
    const mismatch = await new Promise<PeerMismatchEventDetail>((resolve) =>
      b.addEventListener('peer:mismatch', (e) => resolve(e.detail), { once: true }),
    )
    expect(mismatch.expected).toBe(OTHER_PEER)
    expect(mismatch.actual).toBe(a.nodeId)
    expect(mismatch.address).toBe(`${hostPort(a)}/p2p/${OTHER_PEER}`)
    expect(mismatch.error.name).toBe('PeerIdMismatchError')
    expect(mismatch.error.message).toMatch(/drop the \/p2p\/<id> part/)
    // Retried with backoff, refused each time; never a member.
    await waitFor(() => b.stats().peerIdMismatches >= 3, 10_000)
    expect(b.peers()).toEqual([])
    expect(a.peers()).toEqual([])
    expect(
      logged.some((l) => l.includes('PeerIdMismatch') || l.includes(`is ${a.nodeId}, not ${OTHER_PEER}`)),
    ).toBe(true)
  })

  it('never gives up: a seed down for 60+ redials comes back at its address with its identity and both members rejoin it', async () => {
    const identity = join(dir, 'seed.key')
    const fast = { redialMaxDelay: 100, dialTimeout: 500, failureTimeout: 600 }
    const seed = await start({ ...fast, identity })
    const port = portOf(seed)
    const failed = { b: 0, c: 0 }
    const counting = (who: 'b' | 'c') => (f: string) => {
      if (/^(redial|dial) %s failed/.test(f) || f.startsWith('redial')) failed[who]++
    }
    // b knows the seed only by address (a bootstrap target); c knows it only as a member.
    const b = await start({ ...fast, bootstrap: [hostPort(seed)], log: counting('b') })
    const c = await start({ ...fast, bootstrap: [`${hostPort(b)}/p2p/${b.nodeId}`], log: counting('c') })
    await waitFor(() => c.peers().includes(seed.nodeId) && b.peers().includes(seed.nodeId), 10_000)

    await seed.stop()
    await waitFor(() => !b.peers().includes(seed.nodeId) && !c.peers().includes(seed.nodeId), 5000)
    // The old transport gave up after 40 attempts.
    const before = { ...failed }
    await waitFor(() => failed.c - before.c > 60, 30_000, 'c did not keep redialling the seed')

    const back = await start({ ...fast, identity, listen: [`/ip4/127.0.0.1/tcp/${port}`] })
    expect(back.nodeId).toBe(seed.nodeId)
    const healed = performance.now()
    await Promise.all([
      nextPeerEvent(b, 'peer:up', back.nodeId, 5000),
      nextPeerEvent(c, 'peer:up', back.nodeId, 5000),
    ])
    // Within the cap plus the dial timeout (plus a connection set-up).
    expect(performance.now() - healed).toBeLessThan(fast.redialMaxDelay + fast.dialTimeout + 1000)
    await waitFor(() => back.peers().length === 2, 5000)
  })

  it('a discovered peer whose first dials failed is dialled again, without another announcement, until it answers', async () => {
    // C's id and port are fixed before it runs: its identity file, and a port known to be free.
    const cKey = join(dir, 'c.key')
    const first = await start({ identity: cKey })
    const cId = first.nodeId
    await first.stop()
    const port = await new Promise<number>((resolve) => {
      const server = createServer().listen(0, '127.0.0.1', () => {
        const { port } = server.address() as AddressInfo
        server.close(() => resolve(port))
      })
    })
    const lines: string[] = []
    const a = await start({ dialTimeout: 500, log: (f, ...args) => lines.push(format(f, ...args)) })
    // A peer tells A about C (one peer-exchange frame, as a member introducing a newcomer does).
    const { node: raw, multiaddr } = await rawLibp2pNode()
    cleanup.push(() => raw.stop())
    const stream = await raw.dialProtocol(multiaddr(a.addresses[0]!), RPC_PROTOCOL)
    const body = new TextEncoder().encode(
      JSON.stringify([{ id: cId, addrs: [`/ip4/127.0.0.1/tcp/${port}`] }]),
    )
    expect(body.length).toBeLessThan(127) // a one-byte length prefix
    stream.send(Uint8Array.of(body.length + 1, 5 /* FRAME_PEERS */, ...body))
    const failed = () => lines.filter((l) => l.startsWith(`dial ${cId} failed`)).length
    await waitFor(() => failed() >= 2, 10_000, 'the dial of C was not retried')
    await stream.close()
    // C starts at that address, knowing no one: only A's retries can connect the two.
    const c = await start({ identity: cKey, listen: [`/ip4/127.0.0.1/tcp/${port}`] })
    await waitFor(() => a.peers().includes(cId) && c.peers().includes(a.nodeId), 10_000, 'A never reached C')
  })

  it('sixteen nodes started at once on one host mesh (connection limits fit a one-host cluster)', async () => {
    const seed = await start()
    const rest = await Promise.all(Array.from({ length: 15 }, () => start({ bootstrap: [hostPort(seed)] })))
    const all = [seed, ...rest]
    await waitFor(() => all.every((t) => t.peers().length === 15), 35_000, 'no full mesh of 16')
  }, 50_000)

  it('refuses bad new options with InvalidOptionsError', async () => {
    const bad: TransportInit[] = [
      { bootstrap: ['/ip4/127.0.0.1/udp/1'] },
      { bootstrap: ['/dnsaddr/example.com'] },
      { bootstrap: ['/ip4/127.0.0.1/tcp/70000'] },
      { identity: '' },
      { redialMaxDelay: 10 },
      { dialTimeout: 0 },
      { resolveInterval: 50 },
      { maxConnections: 0 },
      { inboundConnectionThreshold: 1.5 },
      { maxIncomingPendingConnections: -1 },
      { maxParallelDials: 0 },
      { maxParallelDials: 2.5 },
      { resolveHost: 'dns' as unknown as TransportInit['resolveHost'] },
    ]
    for (const init of bad) {
      await expect(createTransport(init), JSON.stringify(init)).rejects.toBeInstanceOf(InvalidOptionsError)
    }
  })
})
