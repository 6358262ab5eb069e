/**
 * Per-connection tuning of the libp2p objects of the transport's own node. Three habits of
 * libp2p 3's JavaScript stack cost more than the work itself for small, chatty messages
 * (measured with a CPU profile of request/response between two processes on loopback):
 *
 * - the TCP connection writes each chunk of an outgoing list with its own `socket.write`,
 *   and noise hands it two per frame (a 2-byte length, then the ciphertext): two syscalls
 *   and two TCP segments for every message;
 * - yamux answers every data frame with a window update (another frame, two more writes),
 *   where Go's and Rust's yamux wait until half the receive window is used;
 * - noise's length decoder throws a new `RangeError` (with a stack trace) each time its
 *   buffer runs dry, i.e. after every message it decodes, and catches it to stop.
 *
 * Each is changed on the instances of this node's connections and streams only — never on
 * a prototype, so other libp2p nodes in the process are untouched — and only when the
 * object has the shape this was written against; otherwise it is left alone (and counted),
 * so a libp2p upgrade can make it slower but not wrong. The bytes on the wire are the ones
 * libp2p would send, minus the early window updates, which the yamux spec leaves to the
 * receiver.
 *
 * @module
 * @internal
 */

/** How many connections and streams were tuned, and how many had an unexpected shape. */
export interface TuningStats {
  /** Connections whose socket writes are coalesced and whose noise decoder is quiet. */
  connections: number
  /** Our request streams whose window updates wait for half the window. */
  streams: number
  /** Objects left as they were because their shape was not the expected one. */
  skipped: number
}

type SendResult = { sentBytes: number; canSendMore: boolean }
type Chunks = Uint8Array | { byteLength: number; subarray(): Uint8Array }

interface TcpConnection {
  socket: { write(data: Uint8Array): boolean }
  sendData(data: Chunks): SendResult
}

interface ByteList {
  byteLength: number
  append(data: unknown): void
  sublist(start: number, end: number): { byteLength: number }
  consume(bytes: number): void
}

interface LengthDecoder {
  buffer: ByteList
  maxBufferSize: number
  maxDataLength: number
  lengthDecoder: (data: ByteList) => number
  encodingLength: (value: number) => number
  decode(data: unknown): Iterable<{ byteLength: number }>
}

interface YamuxStreamLike {
  state: number
  recvWindow: number
  recvWindowCapacity: number
  sendWindowUpdate(): void
}

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null

function isTcpConnection(x: unknown): x is TcpConnection {
  return (
    isObject(x) &&
    typeof x.sendData === 'function' &&
    isObject(x.socket) &&
    typeof (x.socket as { write?: unknown }).write === 'function'
  )
}

function isLengthDecoder(x: unknown): x is LengthDecoder {
  return (
    isObject(x) &&
    isObject(x.buffer) &&
    ['append', 'sublist', 'consume'].every(
      (m) => typeof (x.buffer as Record<string, unknown>)[m] === 'function',
    ) &&
    typeof x.maxBufferSize === 'number' &&
    typeof x.maxDataLength === 'number' &&
    typeof x.decode === 'function' &&
    typeof x.lengthDecoder === 'function' &&
    typeof x.encodingLength === 'function' &&
    (x.encodingLength as (v: number) => number)(0) === 2
  )
}

function isYamuxStream(x: unknown): x is YamuxStreamLike {
  return (
    isObject(x) &&
    typeof x.sendWindowUpdate === 'function' &&
    typeof x.state === 'number' &&
    typeof x.recvWindow === 'number' &&
    typeof x.recvWindowCapacity === 'number'
  )
}

/** Tunes the connections and streams of one libp2p node. */
export class Tuner {
  readonly stats: TuningStats = { connections: 0, streams: 0, skipped: 0 }

  /** @param established yamux's `StreamState.Established` */
  constructor(private readonly established: number) {}

  /** Coalesces the socket writes and quiets the noise decoder of a new connection. */
  connection(connection: unknown): void {
    if (!isObject(connection)) return
    const raw = connection.maConn
    const encrypted = isObject(connection.muxer) ? connection.muxer.maConn : undefined
    const decoder = isObject(encrypted) ? encrypted.decoder : undefined
    if (!isTcpConnection(raw) || !isLengthDecoder(decoder)) {
      this.stats.skipped++
      return
    }
    const socket = raw.socket
    // One write for the whole list: libp2p reports the bytes accepted when a write returns
    // false (the socket buffers them), exactly as here.
    raw.sendData = (data: Chunks): SendResult => {
      const bytes = data instanceof Uint8Array ? data : data.subarray()
      return { sentBytes: bytes.byteLength, canSendMore: socket.write(bytes) }
    }
    // noise's frames are a 2-byte length and the ciphertext. libp2p's decoder asks for the
    // length even when fewer than 2 bytes are left — every time its buffer runs dry — and
    // learns it from the RangeError that throws. This one looks before it asks; otherwise it
    // is the same loop, limits and all (noise turns any error here into an aborted connection).
    decoder.decode = function* (this: LengthDecoder, data: unknown) {
      const buffer = this.buffer
      buffer.append(data)
      if (buffer.byteLength > this.maxBufferSize) {
        throw new RangeError(`Buffer length limit exceeded - ${buffer.byteLength}/${this.maxBufferSize}`)
      }
      while (buffer.byteLength >= 2) {
        const length = this.lengthDecoder(buffer)
        if (length < 0 || length > this.maxDataLength) throw new RangeError('Invalid message length')
        if (buffer.byteLength < 2 + length) break
        const frame = buffer.sublist(2, 2 + length)
        buffer.consume(2 + length)
        if (frame.byteLength > 0) yield frame
      }
    }
    this.stats.connections++
  }

  /** Makes one of our streams send window updates only when half its receive window is used. */
  stream(stream: unknown): void {
    if (!isYamuxStream(stream)) {
      this.stats.skipped++
      return
    }
    const established = this.established
    const update = stream.sendWindowUpdate
    stream.sendWindowUpdate = function (this: YamuxStreamLike) {
      if (this.state === established && this.recvWindowCapacity * 2 > this.recvWindow) return
      update.call(this)
    }
    this.stats.streams++
  }
}
