/**
 * A small MessagePack writer for the shapes of our own messages, byte-for-byte identical to
 * what msgpackr's `Packr({ useRecords: false })` writes for them (the wire format is pinned
 * by fixtures). It exists because encoding a one-key delta through msgpackr meant building
 * four throw-away arrays first and paying msgpackr's per-call set-up; writing straight into
 * a reused buffer is several times cheaper and allocates only the result.
 *
 * It covers what values commonly hold — ASCII strings, numbers, booleans, null, plain arrays
 * and objects, Uint8Array — and reports anything else (non-ASCII text, exotic objects) with
 * `false`, so the caller falls back to msgpackr for the whole message: the rare cases keep
 * msgpackr's exact behaviour instead of a second implementation of it.
 */
export class MessagePackWriter {
  private buf = new Uint8Array(INITIAL_SIZE)
  private view = new DataView(this.buf.buffer)
  pos = 0

  /** Starts a new message in the reused buffer. */
  reset(): void {
    // A buffer that grew for one huge message (a full state) is not kept for the next ones.
    if (this.buf.length > MAX_KEPT_SIZE) {
      this.buf = new Uint8Array(INITIAL_SIZE)
      this.view = new DataView(this.buf.buffer)
    }
    this.pos = 0
  }

  /** A copy of the bytes written so far, as msgpackr returns them (a Node Buffer). */
  result(): Uint8Array {
    const out = Buffer.allocUnsafe(this.pos)
    out.set(this.buf.subarray(0, this.pos))
    return out
  }

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return
    let size = this.buf.length * 2
    while (size < this.pos + n) size *= 2
    const bigger = new Uint8Array(size)
    bigger.set(this.buf.subarray(0, this.pos))
    this.buf = bigger
    this.view = new DataView(bigger.buffer)
  }

  arrayHeader(length: number): void {
    this.room(5)
    const b = this.buf
    if (length < 0x10) {
      b[this.pos++] = 0x90 | length
    } else if (length < 0x10000) {
      b[this.pos++] = 0xdc
      b[this.pos++] = length >> 8
      b[this.pos++] = length & 0xff
    } else {
      b[this.pos++] = 0xdd
      this.view.setUint32(this.pos, length)
      this.pos += 4
    }
  }

  /** Any number, as msgpackr writes it: the smallest integer form, else a float64. */
  number(v: number): void {
    this.room(9)
    const b = this.buf
    // Same tests, in the same order, as msgpackr: -0 passes the first and is written as 0.
    if (v >>> 0 === v) {
      if (v < 0x80) {
        b[this.pos++] = v
      } else if (v < 0x100) {
        b[this.pos++] = 0xcc
        b[this.pos++] = v
      } else if (v < 0x10000) {
        b[this.pos++] = 0xcd
        b[this.pos++] = v >> 8
        b[this.pos++] = v & 0xff
      } else {
        b[this.pos++] = 0xce
        this.view.setUint32(this.pos, v)
        this.pos += 4
      }
    } else if (v >> 0 === v) {
      if (v >= -0x20) {
        b[this.pos++] = 0x100 + v
      } else if (v >= -0x80) {
        b[this.pos++] = 0xd0
        b[this.pos++] = v + 0x100
      } else if (v >= -0x8000) {
        b[this.pos++] = 0xd1
        this.view.setInt16(this.pos, v)
        this.pos += 2
      } else {
        b[this.pos++] = 0xd2
        this.view.setInt32(this.pos, v)
        this.pos += 4
      }
    } else {
      b[this.pos++] = 0xcb
      this.view.setFloat64(this.pos, v)
      this.pos += 8
    }
  }

  /** Writes an ASCII string and returns true; false when it is not ASCII (abandon the message). */
  string(s: string): boolean {
    const n = s.length
    this.room(n + 5)
    const b = this.buf
    const header = n < 0x20 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : 5
    let p = this.pos + header
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i)
      // msgpackr encodes non-ASCII text two different ways depending on length (its own
      // loop below 64 characters, Buffer#utf8Write above), which differ on lone surrogates.
      if (c >= 0x80) return false
      b[p++] = c
    }
    p = this.pos
    if (header === 1) {
      b[p] = 0xa0 | n
    } else if (header === 2) {
      b[p] = 0xd9
      b[p + 1] = n
    } else if (header === 3) {
      b[p] = 0xda
      b[p + 1] = n >> 8
      b[p + 2] = n & 0xff
    } else {
      b[p] = 0xdb
      this.view.setUint32(p + 1, n)
    }
    this.pos += header + n
    return true
  }

  bytes(v: Uint8Array): void {
    const n = v.length
    this.room(n + 5)
    const b = this.buf
    if (n < 0x100) {
      b[this.pos++] = 0xc4
      b[this.pos++] = n
    } else if (n < 0x10000) {
      b[this.pos++] = 0xc5
      b[this.pos++] = n >> 8
      b[this.pos++] = n & 0xff
    } else {
      b[this.pos++] = 0xc6
      this.view.setUint32(this.pos, n)
      this.pos += 4
    }
    b.set(v, this.pos)
    this.pos += n
  }

  /** Writes a map value; false when it holds something only msgpackr should encode. */
  value(v: unknown): boolean {
    switch (typeof v) {
      case 'number':
        this.number(v)
        return true
      case 'string':
        return this.string(v)
      case 'boolean':
        this.room(1)
        this.buf[this.pos++] = v ? 0xc3 : 0xc2
        return true
      case 'object': {
        if (v === null) {
          this.room(1)
          this.buf[this.pos++] = 0xc0
          return true
        }
        // msgpackr picks the encoding by constructor: exactly these three are handled here.
        const ctor = v.constructor
        if (ctor === Object) return this.object(v as Record<string, unknown>)
        if (ctor === Array) {
          const a = v as unknown[]
          this.arrayHeader(a.length)
          for (let i = 0; i < a.length; i++) if (!this.value(a[i])) return false
          return true
        }
        if (ctor === Uint8Array) {
          this.bytes(v as Uint8Array)
          return true
        }
        return false
      }
      default:
        return false
    }
  }

  /**
   * A plain object as msgpackr writes it with `useRecords: false`: always a map16 header,
   * then the enumerable own keys in for-in order (the size is patched in afterwards).
   */
  private object(o: Record<string, unknown>): boolean {
    this.room(3)
    const at = this.pos
    this.buf[at] = 0xde
    this.pos += 3
    // msgpackr's own test: an object whose hasOwnProperty was shadowed by data lists every key.
    const all = typeof o.hasOwnProperty !== 'function'
    let size = 0
    for (const k in o) {
      if (all || Object.hasOwn(o, k)) {
        if (!this.string(k) || !this.value(o[k])) return false
        size++
      }
    }
    // msgpackr throws on bigger objects; let it.
    if (size > 0xffff) return false
    this.buf[at + 1] = size >> 8
    this.buf[at + 2] = size & 0xff
    return true
  }
}

const INITIAL_SIZE = 8192
const MAX_KEPT_SIZE = 1 << 20
