// Wire format of the request/response protocol and of gossip batches.
//
// A stream carries frames: varint(length) ‖ body, body = type byte ‖ fields.
//   REQUEST   1 ‖ varint id ‖ varint protocolLength ‖ protocol (utf8) ‖ data
//   RESPONSE  2 ‖ varint id ‖ data
//   ERROR     3 ‖ varint id ‖ code byte ‖ message (utf8)
//   HEARTBEAT 4
//   PEERS     5 ‖ JSON [{ id, addrs }] (utf8)   — peer exchange, to mesh faster
//   PUBLISH   6 ‖ varint topicLength ‖ topic (utf8) ‖ batch   — a publication, straight to a subscriber
//   TOPICS    7 ‖ JSON [topic] (utf8)   — every topic the sender subscribes to (replaces the last list)
// A gossip message carries a batch: varint count ‖ (varint length ‖ payload)*.
import { Uint8ArrayList } from 'uint8arraylist'

export const FRAME_REQUEST = 1
export const FRAME_RESPONSE = 2
export const FRAME_ERROR = 3
export const FRAME_HEARTBEAT = 4
export const FRAME_PEERS = 5
export const FRAME_PUBLISH = 6
export const FRAME_TOPICS = 7

/** Longest topic name, in UTF-8 bytes (a publication frame must fit the frame overhead). */
export const MAX_TOPIC_BYTES = 512
/** Most topics one peer may announce (a longer list is refused as malformed). */
export const MAX_TOPICS = 4096

export const ERROR_REMOTE = 1
export const ERROR_NO_HANDLER = 2
export const ERROR_TOO_LARGE = 3

/** Room for the frame header and protocol name on top of the payload limit. */
export const FRAME_OVERHEAD = 1024

export type Frame =
  | { type: typeof FRAME_REQUEST; id: number; protocol: string; data: Uint8Array }
  | { type: typeof FRAME_RESPONSE; id: number; data: Uint8Array }
  | { type: typeof FRAME_ERROR; id: number; code: number; message: string }
  | { type: typeof FRAME_HEARTBEAT }
  | { type: typeof FRAME_PEERS; peers: Array<{ id: string; addrs: string[] }> }
  | { type: typeof FRAME_PUBLISH; topic: string; batch: Uint8Array }
  | { type: typeof FRAME_TOPICS; topics: string[] }

/** Bytes that cannot be decoded: the stream is out of sync or the peer is hostile. */
export class MalformedError extends Error {
  override name = 'MalformedError'
}

/** A frame or batch declares a length above the limit. */
export class OversizeError extends Error {
  override name = 'OversizeError'
}

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

export function varintLength(n: number): number {
  let len = 1
  while (n >= 0x80) {
    n = Math.floor(n / 128)
    len++
  }
  return len
}

export function writeVarint(buf: Uint8Array, offset: number, n: number): number {
  while (n >= 0x80) {
    buf[offset++] = (n % 128) | 0x80
    n = Math.floor(n / 128)
  }
  buf[offset++] = n
  return offset
}

/**
 * Reads a varint at `offset` of `get(i)`; returns [value, next offset], or undefined when
 * more bytes are needed. Throws MalformedError past 8 bytes (> 2^53).
 */
export function readVarint(
  get: (i: number) => number,
  length: number,
  offset: number,
): [number, number] | undefined {
  let value = 0
  let scale = 1
  for (let i = 0; i < 8; i++) {
    if (offset + i >= length) return undefined
    const byte = get(offset + i)
    value += (byte & 0x7f) * scale
    if ((byte & 0x80) === 0) return [value, offset + i + 1]
    scale *= 128
  }
  throw new MalformedError('varint longer than 8 bytes')
}

function frameBuffer(bodyLength: number): [Uint8Array, number] {
  const buf = new Uint8Array(varintLength(bodyLength) + bodyLength)
  return [buf, writeVarint(buf, 0, bodyLength)]
}

// Protocol names repeat: encode each once (bounded, so hostile input cannot grow it).
const protocolBytes = new Map<string, Uint8Array>()

function encodeProtocol(protocol: string): Uint8Array {
  let bytes = protocolBytes.get(protocol)
  if (bytes === undefined) {
    bytes = encoder.encode(protocol)
    if (protocolBytes.size < 1024) protocolBytes.set(protocol, bytes)
  }
  return bytes
}

export function encodeRequest(id: number, protocol: string, data: Uint8Array): Uint8Array {
  const proto = encodeProtocol(protocol)
  const [buf, start] = frameBuffer(
    1 + varintLength(id) + varintLength(proto.length) + proto.length + data.length,
  )
  buf[start] = FRAME_REQUEST
  let o = writeVarint(buf, start + 1, id)
  o = writeVarint(buf, o, proto.length)
  buf.set(proto, o)
  buf.set(data, o + proto.length)
  return buf
}

export function encodeResponse(id: number, data: Uint8Array): Uint8Array {
  const [buf, start] = frameBuffer(1 + varintLength(id) + data.length)
  buf[start] = FRAME_RESPONSE
  buf.set(data, writeVarint(buf, start + 1, id))
  return buf
}

export function encodeError(id: number, code: number, message: string): Uint8Array {
  const text = encoder.encode(message.slice(0, 4096))
  const [buf, start] = frameBuffer(2 + varintLength(id) + text.length)
  buf[start] = FRAME_ERROR
  const o = writeVarint(buf, start + 1, id)
  buf[o] = code
  buf.set(text, o + 1)
  return buf
}

export const HEARTBEAT_FRAME = Uint8Array.of(1, FRAME_HEARTBEAT)

/** Most peers one peer-exchange frame names (a receiver reads no more of a longer list). */
export const PEERS_PER_FRAME = 256
/** Most addresses of one peer a peer-exchange frame gives (a receiver reads no more of them). */
export const ADDRS_PER_PEER = 16

/**
 * A list of peers of any length as peer-exchange frames, none naming more than
 * {@link PEERS_PER_FRAME} peers (a receiver reads no more of a frame) or listing more than
 * `maxBytes` bytes of peers (pass maxMessageBytes: a receiver refuses a frame over its
 * maxMessageBytes plus FRAME_OVERHEAD; a single peer over `maxBytes` goes alone). None for an
 * empty list.
 */
export function encodePeerFrames(
  peers: Array<{ id: string; addrs: string[] }>,
  maxBytes = Number.POSITIVE_INFINITY,
): Uint8Array[] {
  const frames: Uint8Array[] = []
  let part: string[] = []
  let bytes = 2 // the list's brackets
  for (const p of peers) {
    const json = JSON.stringify(p)
    const size = encoder.encode(json).length + 1
    if (part.length > 0 && (part.length === PEERS_PER_FRAME || bytes + size > maxBytes)) {
      frames.push(peersFrame(`[${part.join(',')}]`))
      part = []
      bytes = 2
    }
    part.push(json)
    bytes += size
  }
  if (part.length > 0) frames.push(peersFrame(`[${part.join(',')}]`))
  return frames
}

export function encodePeers(peers: Array<{ id: string; addrs: string[] }>): Uint8Array {
  return peersFrame(JSON.stringify(peers))
}

/** A peer-exchange frame of a JSON list of peers. */
function peersFrame(json: string): Uint8Array {
  const text = encoder.encode(json)
  const [buf, start] = frameBuffer(1 + text.length)
  buf[start] = FRAME_PEERS
  buf.set(text, start + 1)
  return buf
}

export function encodePublish(topic: string, batch: Uint8Array): Uint8Array {
  const name = encodeProtocol(topic)
  const [buf, start] = frameBuffer(1 + varintLength(name.length) + name.length + batch.length)
  buf[start] = FRAME_PUBLISH
  const o = writeVarint(buf, start + 1, name.length)
  buf.set(name, o)
  buf.set(batch, o + name.length)
  return buf
}

export function encodeTopics(topics: string[]): Uint8Array {
  const text = encoder.encode(JSON.stringify(topics))
  const [buf, start] = frameBuffer(1 + text.length)
  buf[start] = FRAME_TOPICS
  buf.set(text, start + 1)
  return buf
}

/** Bytes of `text` in UTF-8. */
export function utf8Length(text: string): number {
  return encoder.encode(text).length
}

/** Decodes one frame body (without its length prefix). Throws MalformedError. */
export function decodeFrame(body: Uint8Array): Frame {
  const get = (i: number) => body[i]!
  const type = body[0]
  switch (type) {
    case FRAME_REQUEST: {
      const id = readVarint(get, body.length, 1)
      if (id === undefined) break
      const pl = readVarint(get, body.length, id[1])
      if (pl === undefined || pl[1] + pl[0] > body.length) break
      const protocol = decoder.decode(body.subarray(pl[1], pl[1] + pl[0]))
      return { type, id: id[0], protocol, data: body.subarray(pl[1] + pl[0]) }
    }
    case FRAME_RESPONSE: {
      const id = readVarint(get, body.length, 1)
      if (id === undefined) break
      return { type, id: id[0], data: body.subarray(id[1]) }
    }
    case FRAME_ERROR: {
      const id = readVarint(get, body.length, 1)
      if (id === undefined || id[1] >= body.length) break
      return { type, id: id[0], code: body[id[1]]!, message: decoder.decode(body.subarray(id[1] + 1)) }
    }
    case FRAME_HEARTBEAT:
      if (body.length === 1) return { type }
      break
    case FRAME_PEERS: {
      const peers: unknown = JSON.parse(decoder.decode(body.subarray(1)))
      if (
        Array.isArray(peers) &&
        peers.every(
          (p) =>
            typeof p?.id === 'string' &&
            Array.isArray(p.addrs) &&
            p.addrs.every((a: unknown) => typeof a === 'string'),
        )
      ) {
        return { type, peers: peers as Array<{ id: string; addrs: string[] }> }
      }
      break
    }
    case FRAME_PUBLISH: {
      const tl = readVarint(get, body.length, 1)
      if (tl === undefined || tl[0] > MAX_TOPIC_BYTES || tl[1] + tl[0] >= body.length) break
      const topic = decoder.decode(body.subarray(tl[1], tl[1] + tl[0]))
      return { type, topic, batch: body.subarray(tl[1] + tl[0]) }
    }
    case FRAME_TOPICS: {
      const topics: unknown = JSON.parse(decoder.decode(body.subarray(1)))
      if (
        Array.isArray(topics) &&
        topics.length <= MAX_TOPICS &&
        topics.every((t) => typeof t === 'string' && t.length <= MAX_TOPIC_BYTES)
      ) {
        return { type, topics: topics as string[] }
      }
      break
    }
  }
  throw new MalformedError(`undecodable frame of type ${String(type)} and ${body.length} bytes`)
}

/**
 * Splits a byte stream into frame bodies. `push` returns the complete bodies; it throws
 * OversizeError when a length prefix exceeds `maxFrame` (before buffering the body), and
 * MalformedError on a bad prefix. After a throw the stream cannot be resynchronised.
 */
export class FrameDecoder {
  private readonly buffer = new Uint8ArrayList()
  constructor(private readonly maxFrame: number) {}

  push(chunk: Uint8Array | Uint8ArrayList): Uint8Array[] {
    this.buffer.append(chunk)
    const out: Uint8Array[] = []
    const get = (i: number) => this.buffer.get(i)
    for (;;) {
      const prefix = readVarint(get, this.buffer.length, 0)
      if (prefix === undefined) return out
      const [length, start] = prefix
      if (length > this.maxFrame) throw new OversizeError(`frame of ${length} bytes exceeds ${this.maxFrame}`)
      if (length === 0) throw new MalformedError('empty frame')
      if (this.buffer.length < start + length) return out
      out.push(this.buffer.subarray(start, start + length))
      this.buffer.consume(start + length)
    }
  }
}

/** Encodes several payloads as one gossip message. */
export function encodeBatch(payloads: Uint8Array[]): Uint8Array {
  let size = varintLength(payloads.length)
  for (const p of payloads) size += varintLength(p.length) + p.length
  const buf = new Uint8Array(size)
  let o = writeVarint(buf, 0, payloads.length)
  for (const p of payloads) {
    o = writeVarint(buf, o, p.length)
    buf.set(p, o)
    o += p.length
  }
  return buf
}

/** Decodes a gossip batch; throws MalformedError, or OversizeError if a payload exceeds `max`. */
export function decodeBatch(buf: Uint8Array, max: number): Uint8Array[] {
  const get = (i: number) => buf[i]!
  const count = readVarint(get, buf.length, 0)
  if (count === undefined || count[0] === 0) throw new MalformedError('bad batch count')
  let o = count[1]
  const out: Uint8Array[] = []
  for (let i = 0; i < count[0]; i++) {
    const len = readVarint(get, buf.length, o)
    if (len === undefined || len[1] + len[0] > buf.length) throw new MalformedError('truncated batch')
    if (len[0] > max) throw new OversizeError(`payload of ${len[0]} bytes exceeds ${max}`)
    out.push(buf.subarray(len[1], len[1] + len[0]))
    o = len[1] + len[0]
  }
  if (o !== buf.length) throw new MalformedError('trailing bytes after batch')
  return out
}

/** A copy as a plain Uint8Array (Buffer#slice would return a view, not a copy). */
export function copyBytes(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(data.length)
  out.set(data)
  return out
}
