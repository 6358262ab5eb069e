import {
  createTransport,
  InvalidOptionsError,
  MAX_PUBLISH_BYTES,
  MessageTooLargeError,
  RPC_PROTOCOL,
  type Transport,
  type TransportInit,
} from '@nact-horde/transport'
import { afterEach, describe, expect, it } from 'vitest'
import { runTransportTests } from './compliance.js'
import { bytes, nextPeerEvent, rawLibp2pNode, recordPeerEvents, spawnNode, waitFor } from './helpers.js'

const UNKNOWN_PEER = '12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq'

/** N transports bootstrapped from the first, all meshed. */
async function cluster(n: number, init: TransportInit = {}) {
  const all: Transport[] = []
  const first = await createTransport(init)
  all.push(first)
  const add = async () => {
    const t = await createTransport({ ...init, bootstrap: [first.addresses[0]!] })
    all.push(t)
    return t
  }
  for (let i = 1; i < n; i++) await add()
  const transports = [...all]
  await waitFor(() => transports.every((t) => t.peers().length === n - 1), 10_000, 'mesh did not form')
  return {
    transports,
    add,
    unknownNodeId: UNKNOWN_PEER,
    teardown: async () => {
      await Promise.all(all.map((t) => t.stop()))
    },
  }
}

runTransportTests('libp2p', (n, options) => cluster(n, options))
runTransportTests('libp2p, pubsub through gossipsub', (n, options) =>
  cluster(n, { ...options, pubsub: 'gossipsub' }),
)

describe('libp2p transport', () => {
  const cleanup: Array<() => Promise<void> | void> = []
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn()
  })
  const track = (...ts: Transport[]) => {
    for (const t of ts) cleanup.push(() => t.stop())
    return ts
  }

  it('three nodes bootstrapped from one find and mesh with each other', async () => {
    const [a] = track(await createTransport())
    expect(a!.addresses[0]).toMatch(/^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\//)
    expect(a!.addresses[0]!.endsWith(`/p2p/${a!.nodeId}`)).toBe(true)
    const [b, c] = track(
      await createTransport({ bootstrap: a!.addresses }),
      await createTransport({ bootstrap: a!.addresses }),
    )
    await waitFor(() => [a!, b!, c!].every((t) => t.peers().length === 2), 5000, 'no full mesh')
    // b and c only knew a: they found each other and talk directly.
    c!.handle('/who/1', (_, from) => new TextEncoder().encode(from))
    expect(new TextDecoder().decode(await b!.request(c!.nodeId, '/who/1', bytes()))).toBe(b!.nodeId)
  })

  it('a mesh formed from one seed: the seed introduces every newcomer, the others only send lists (n², not n³ frames)', async () => {
    const n = 6
    const [seed] = track(await createTransport())
    const rest = track(
      ...(await Promise.all(
        Array.from({ length: n - 1 }, () => createTransport({ bootstrap: seed!.addresses })),
      )),
    )
    const all = [seed!, ...rest]
    await waitFor(() => all.every((t) => t.peers().length === n - 1), 15_000, 'no full mesh')
    // The seed tells the k-th newcomer it reaches of the k − 1 before it (one frame) and each
    // of them of the newcomer (k − 1 frames).
    const seedBound = n - 2 + ((n - 1) * (n - 2)) / 2
    expect(seed!.stats().introductions).toBeGreaterThan(0)
    expect(seed!.stats().introductions).toBeLessThanOrEqual(seedBound)
    // Every other node sends each peer that reaches it one list of its other peers (at most
    // n − 2 lists each) and introduces a newcomer to the others only if it reaches it before
    // the seed's introduction of it did (rare). Each node introducing every peer it reached
    // to all the others, as before, was 70 frames here.
    const others = rest.reduce((sum, t) => sum + t.stats().introductions, 0)
    expect(others).toBeLessThanOrEqual((n - 1) * (n - 2) + (n - 1))
  })

  it('two meshes joined through a node bootstrapped from both become one mesh without a peer-list repair', async () => {
    // No repair within the test: the lists exchanged on connecting must form the mesh alone.
    const init = { peerRepairInterval: 3_600_000 }
    const [a] = track(await createTransport(init))
    const [c] = track(await createTransport({ ...init, bootstrap: a!.addresses }))
    const [b] = track(await createTransport(init))
    const [d] = track(await createTransport({ ...init, bootstrap: b!.addresses }))
    await waitFor(
      () => a!.peers().includes(c!.nodeId) && b!.peers().includes(d!.nodeId),
      10_000,
      'two meshes',
    )
    // e bridges them: a introduces it to c, b to d; c and d hear of each other only through
    // the lists e and the others send them.
    const [e] = track(await createTransport({ ...init, bootstrap: [a!.addresses[0]!, b!.addresses[0]!] }))
    const all = [a!, b!, c!, d!, e!]
    await waitFor(() => all.every((t) => t.peers().length === 4), 15_000, 'no full mesh')
  })

  it('reports a SIGKILLed node in another process down within 1 s, a frozen one after failureTimeout, and reconnects when it thaws', async () => {
    const [a] = track(await createTransport({ failureTimeout: 600 }))
    const killed = await spawnNode({ failureTimeout: 600, bootstrap: a!.addresses })
    const frozen = await spawnNode({ failureTimeout: 600, bootstrap: a!.addresses })
    cleanup.push(() => {
      killed.child.kill('SIGKILL')
      frozen.child.kill('SIGKILL')
    })
    await waitFor(() => a!.peers().includes(killed.nodeId) && a!.peers().includes(frozen.nodeId), 10_000)
    expect([...(await a!.request(killed.nodeId, '/echo/1', bytes(4)))]).toEqual([4])
    const events = recordPeerEvents(a!)

    let down = nextPeerEvent(a!, 'peer:down', killed.nodeId, 3000)
    let started = performance.now()
    killed.child.kill('SIGKILL')
    await down
    const killMs = performance.now() - started
    expect(killMs).toBeLessThan(1000)

    // SIGSTOP: the process is frozen, its TCP connections stay open, only silence tells.
    down = nextPeerEvent(a!, 'peer:down', frozen.nodeId, 3000)
    started = performance.now()
    frozen.child.kill('SIGSTOP')
    await down
    const frozenMs = performance.now() - started
    expect(frozenMs).toBeGreaterThanOrEqual(400)
    expect(frozenMs).toBeLessThan(1200)
    expect(events.filter((e) => e.type === 'peer:down')).toHaveLength(2)
    expect(a!.peers()).toEqual([])

    // Thawed, the node is redialled (or redials) and comes back up, once.
    const up = nextPeerEvent(a!, 'peer:up', frozen.nodeId, 8000)
    frozen.child.kill('SIGCONT')
    await up
    expect([...(await a!.request(frozen.nodeId, '/echo/1', bytes(5)))]).toEqual([5])
    expect(events.filter((e) => e.type === 'peer:up')).toEqual([{ type: 'peer:up', nodeId: frozen.nodeId }])
    console.log(`down after SIGKILL: ${killMs.toFixed(0)} ms; after SIGSTOP: ${frozenMs.toFixed(0)} ms`)
  })

  it('admits only nodes with the same cluster key', async () => {
    const [a, b] = track(await createTransport({ clusterKey: 'k1' }))
    const [b2] = track(await createTransport({ clusterKey: 'k1', bootstrap: a!.addresses }))
    const [wrong, none] = track(
      await createTransport({ clusterKey: 'k2', bootstrap: a!.addresses }),
      await createTransport({ bootstrap: a!.addresses }),
    )
    void b
    await waitFor(() => a!.peers().includes(b2!.nodeId) && b2!.peers().includes(a!.nodeId))
    const strangers = new Set([wrong!.nodeId, none!.nodeId])
    const seen: string[] = []
    for (const t of [a!, b2!]) t.addEventListener('peer:up', (e) => seen.push(e.detail.nodeId))
    // Give the strangers a full second of redials to get in (they must not).
    const deadline = Date.now() + 1000
    await waitFor(() => Date.now() > deadline, 2000)
    expect(seen.filter((id) => strangers.has(id))).toEqual([])
    expect(a!.peers()).toEqual([b2!.nodeId])
    expect(wrong!.peers()).toEqual([])
    expect(none!.peers()).toEqual([])
    // The handshake with a stranger fails (reset) or never completes (timeout): never an answer.
    const err = await none!.request(a!.nodeId, '/x', bytes(1), { timeout: 1000 }).catch((e: Error) => e)
    expect(['PeerUnreachableError', 'TimeoutError']).toContain((err as Error).name)
  })

  it('survives garbage and oversized stream data, counting what it drops', async () => {
    const [a] = track(await createTransport({ maxMessageBytes: 4096 }))
    a!.handle('/echo/1', (d) => d)
    const { node: raw, multiaddr } = await rawLibp2pNode()
    cleanup.push(() => raw.stop())
    const target = multiaddr(a!.addresses[0]!)
    const open = () => raw.dialProtocol(target, RPC_PROTOCOL)

    // A random libp2p node that connects is not a peer.
    let s = await open()
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(a!.peers()).toEqual([])

    // A frame with a valid length but an unknown type: dropped, stream kept.
    s.send(Uint8Array.of(3, 0xee, 1, 2))
    await waitFor(() => a!.stats().droppedMalformed === 1)
    // A length prefix far over maxMessageBytes: dropped before buffering, stream reset.
    s.send(Uint8Array.of(0x80, 0x80, 0x80, 0x80, 0x80, 0x40))
    await waitFor(() => a!.stats().droppedOversize === 1)
    await waitFor(() => s.status !== 'open')

    // A varint that never ends.
    s = await open()
    s.send(new Uint8Array(12).fill(0xff))
    await waitFor(() => a!.stats().droppedMalformed === 2)

    // A truncated request body and bad UTF-8 in a protocol name.
    s = await open()
    s.send(Uint8Array.of(3, 1, 5, 9))
    s.send(Uint8Array.of(5, 1, 1, 2, 0xff, 0xfe))
    await waitFor(() => a!.stats().droppedMalformed === 4)

    // A publication whose topic runs past the frame, a topic list that is not JSON, and a
    // well-framed publication carrying a broken batch: each dropped and counted, stream kept.
    s.send(Uint8Array.of(3, 6, 9, 1))
    s.send(Uint8Array.of(3, 7, 0x5b, 0x31))
    s.send(Uint8Array.of(4, 6, 1, 0x78, 0))
    await waitFor(() => a!.stats().droppedMalformed === 7)
    expect(a!.stats().delivered).toBe(0)

    // A well-formed request still gets its answer over a raw stream…
    const replies: Uint8Array[] = []
    s.addEventListener('message', (e) => replies.push(e.data.subarray()))
    // (split over two writes, so the frame arrives in two chunks)
    const frame = Uint8Array.of(11, 1, 7, 7, ...new TextEncoder().encode('/echo/1'), 42)
    s.send(frame.subarray(0, 5))
    s.send(frame.subarray(5))
    await waitFor(() => replies.length > 0)
    expect([...replies[0]!]).toEqual([3, 2, 7, 42])

    // …and the node keeps serving real peers.
    const [b] = track(await createTransport({ bootstrap: a!.addresses }))
    await waitFor(() => b!.peers().includes(a!.nodeId))
    expect([...(await b!.request(a!.nodeId, '/echo/1', bytes(1, 2)))]).toEqual([1, 2])
  })

  it('opens another stream to a connected peer whose first one failed, and the peer comes up', async () => {
    const [a] = track(await createTransport({ heartbeatInterval: 100 }))
    // A peer that speaks our protocol (identify tells a so) but resets the first stream a opens
    // to it, as a negotiation that timed out would end; later streams get a heartbeat frame
    // (length 1, frame type 4).
    const { node: raw, multiaddr } = await rawLibp2pNode({ identify: true })
    cleanup.push(() => raw.stop())
    let streams = 0
    await raw.handle(RPC_PROTOCOL, (stream) => {
      if (++streams === 1) stream.abort(new Error('first stream fails'))
      else stream.send(Uint8Array.of(1, 4))
    })
    await raw.dial(multiaddr(a!.addresses[0]!))
    await waitFor(() => a!.peers().includes(raw.peerId.toString()), 5000, 'the peer to come up')
    expect(streams).toBeGreaterThanOrEqual(2)
  })

  it('carries publications up to MAX_PUBLISH_BYTES and refuses larger ones', async () => {
    const [a] = track(await createTransport())
    const [b] = track(await createTransport({ bootstrap: a!.addresses }))
    const sizes: number[] = []
    b!.subscribe('big', (d) => sizes.push(d.length))
    await waitFor(() => {
      if (sizes.length === 0) a!.publish('big', bytes(1))
      return sizes.length > 0
    }, 10_000)
    a!.publish('big', new Uint8Array(MAX_PUBLISH_BYTES))
    await waitFor(() => sizes.includes(MAX_PUBLISH_BYTES), 10_000)
    expect(() => a!.publish('big', new Uint8Array(MAX_PUBLISH_BYTES + 1))).toThrow(MessageTooLargeError)
  })

  it('tunes its own connections: one socket write per message, window updates only at half the window', async () => {
    const [a] = track(await createTransport())
    const [b] = track(await createTransport({ bootstrap: a!.addresses }))
    b!.handle('/echo/1', (d) => d)
    await waitFor(() => a!.peers().includes(b!.nodeId))
    // The canary for a libp2p upgrade: every connection and stream had the expected shape.
    type Tuned = {
      tuning(): {
        connections: number
        streams: number
        skipped: number
        x25519: { kept: number; imported: number }
      }
    }
    for (const t of [a, b] as unknown as Tuned[]) {
      const stats = t.tuning()
      expect(stats.connections).toBeGreaterThan(0)
      expect(stats.streams).toBeGreaterThan(0)
      expect(stats.skipped).toBe(0)
      // Each side of a noise XX handshake makes three exchanges, all with private key objects
      // kept from key generation (none imported again from raw bytes).
      expect(stats.x25519.kept).toBeGreaterThanOrEqual(3)
      expect(stats.x25519.imported).toBe(0)
    }
    // Count what a's socket writes during 200 sequential round trips: one frame per request
    // (untuned libp2p writes a noise length prefix and the ciphertext separately, and answers
    // every response with a window update: ≥ 4 writes per request).
    type Conn = { maConn: { socket: { write: (...args: unknown[]) => boolean } } }
    const internal = a as unknown as { node: { getConnections(): Conn[] } }
    const socket = internal.node.getConnections()[0]!.maConn.socket
    const write = socket.write
    let writes = 0
    socket.write = (...args: unknown[]) => {
      writes++
      return write.apply(socket, args)
    }
    try {
      for (let i = 0; i < 200; i++)
        expect((await a!.request(b!.nodeId, '/echo/1', bytes(i % 256))).length).toBe(1)
    } finally {
      socket.write = write
    }
    expect(writes).toBeGreaterThanOrEqual(200)
    expect(writes).toBeLessThan(230)
  })

  it('sends a direct publication only to the peers that announced the topic, and stops when they unsubscribe', async () => {
    const [a] = track(await createTransport())
    const [b] = track(await createTransport({ bootstrap: a!.addresses }))
    await waitFor(() => a!.peers().includes(b!.nodeId))
    // Count the publication frames a puts on its stream to b (small frames: a 1-byte length
    // prefix, then the frame type; 6 is PUBLISH).
    type Channel = { send(frame: Uint8Array): boolean }
    const internal = a as unknown as { sessions: Map<string, { ready?: Channel }> }
    await waitFor(() => internal.sessions.get(b!.nodeId)?.ready !== undefined)
    const channel = internal.sessions.get(b!.nodeId)!.ready!
    const send = channel.send.bind(channel)
    let publications = 0
    channel.send = (frame) => {
      if (frame[1] === 6) publications++
      return send(frame)
    }
    const settled = () => new Promise<void>((resolve) => setImmediate(resolve))
    // b subscribes to nothing: no publication leaves a.
    for (let i = 0; i < 20; i++) a!.publish('t', bytes(i))
    await settled()
    expect(publications).toBe(0)
    // Once b's announcement arrives, a's publications reach it, from a.
    const got: string[] = []
    const off = b!.subscribe('t', (d, from) => got.push(`${d[0]}:${from === a!.nodeId}`))
    await waitFor(() => {
      a!.publish('t', bytes(7))
      return got.length > 0
    })
    expect(got[0]).toBe('7:true')
    expect(publications).toBeGreaterThan(0)
    // After b unsubscribes (and a hears of it), a sends nothing again.
    off()
    const deadline = Date.now() + 5000
    for (;;) {
      publications = 0
      a!.publish('t', bytes(8))
      await settled()
      if (publications === 0) break
      expect(Date.now(), 'a kept publishing to b after it unsubscribed').toBeLessThan(deadline)
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
    const deliveredBefore = b!.stats().delivered
    for (let i = 0; i < 20; i++) a!.publish('t', bytes(i))
    await settled()
    expect(publications).toBe(0)
    expect(b!.stats().delivered).toBe(deliveredBefore)
  })

  it('a subscription made before a peer connects is announced when the stream to it opens', async () => {
    const [a] = track(await createTransport())
    const got: string[] = []
    a!.subscribe('early', (d, from) => got.push(`${d[0]}:${from}`))
    const [b] = track(await createTransport({ bootstrap: a!.addresses }))
    await waitFor(() => b!.peers().includes(a!.nodeId))
    // Direct publications carry no relay and no repair: only the announcement made when a's
    // stream to b opened lets b's publication through.
    await waitFor(() => {
      b!.publish('early', bytes(5))
      return got.length > 0
    })
    expect(got[0]).toBe(`5:${b!.nodeId}`)
  })

  it('refuses topics that are empty or longer than 512 bytes of UTF-8', async () => {
    const [a] = track(await createTransport())
    expect(() => a!.publish('', bytes(1))).toThrow(TypeError)
    expect(() => a!.subscribe('x'.repeat(513), () => {})).toThrow(/512 bytes/)
    expect(() => a!.publish('é'.repeat(257), bytes(1))).toThrow(/512 bytes/)
    expect(() => a!.publish('é'.repeat(256), bytes(1))).not.toThrow()
  })

  it('refuses bad options with InvalidOptionsError', async () => {
    const bad: TransportInit[] = [
      { failureTimeout: 10 },
      { failureTimeout: 1000, heartbeatInterval: 900 },
      { bootstrap: ['/ip4/127.0.0.1/tcp/1/p2p/not-a-peer-id'] },
      { listen: ['not a multiaddr'] },
      { clusterKey: '' },
      { maxMessageBytes: 10 },
      { requestTimeout: 0 },
      { mdns: 'yes' as unknown as boolean },
      { pubsub: 'flood' as unknown as 'direct' },
      { peerRepairInterval: 50 },
    ]
    for (const init of bad) {
      await expect(createTransport(init), JSON.stringify(init)).rejects.toBeInstanceOf(InvalidOptionsError)
    }
  })

  it('starts with mdns enabled and stops cleanly', async () => {
    const [a] = track(await createTransport({ mdns: true }))
    expect(a!.nodeId).toMatch(/^12D3KooW/)
  })
})
