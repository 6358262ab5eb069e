import { describe, expect, it } from 'vitest'
import { decodeFrame, encodePeerFrames, FRAME_PEERS, PEERS_PER_FRAME } from '../src/codec.js'

const peers = (n: number) =>
  Array.from({ length: n }, (_, i) => ({ id: `peer-${i}`, addrs: [`/ip4/127.0.0.1/tcp/${10_000 + i}`] }))

/** A frame's body: past its varint length prefix. */
const body = (f: Uint8Array) => {
  let i = 0
  while ((f[i]! & 0x80) !== 0) i++
  return f.subarray(i + 1)
}

/** The peers a receiver reads from `frames`: as onFrame does, no more than PEERS_PER_FRAME of each. */
const read = (frames: Uint8Array[]) =>
  frames.flatMap((f) => {
    const frame = decodeFrame(body(f))
    if (frame.type !== FRAME_PEERS) throw new Error(`not a peers frame: ${frame.type}`)
    return frame.peers.slice(0, PEERS_PER_FRAME)
  })

describe('peer-exchange frames', () => {
  it('split a list longer than a receiver reads into frames it reads whole', () => {
    const list = peers(2 * PEERS_PER_FRAME + 88)
    const frames = encodePeerFrames(list)
    expect(frames).toHaveLength(3)
    expect(read(frames)).toEqual(list)
  })

  it("keep each frame within the receiver's message size, a peer too large for one going alone", () => {
    const list = peers(100)
    const frames = encodePeerFrames(list, 1024)
    // Several peers a frame, each frame as full as the limit allows.
    expect(frames.length).toBeGreaterThan(1)
    expect(frames.length).toBeLessThan(list.length / 10)
    for (const f of frames) expect(body(f).length).toBeLessThanOrEqual(1 + 1024)
    for (const f of frames.slice(0, -1)) expect(body(f).length).toBeGreaterThan(1024 - 60)
    expect(read(frames)).toEqual(list)
    const big = {
      id: 'big',
      addrs: Array.from({ length: 16 }, (_, i) => `/dns4/${'x'.repeat(80)}.example/tcp/${i}`),
    }
    const mixed = [...peers(3), big, ...peers(2)]
    const parts = encodePeerFrames(mixed, 1024)
    expect(read(parts)).toEqual(mixed)
    expect(parts.map((f) => read([f]).map((p) => p.id))).toContainEqual(['big'])
  })

  it('send a short list as one frame, and nothing for none', () => {
    expect(read(encodePeerFrames(peers(5)))).toEqual(peers(5))
    expect(encodePeerFrames(peers(PEERS_PER_FRAME))).toHaveLength(1)
    expect(encodePeerFrames([])).toHaveLength(0)
  })
})
