/**
 * The node's stable identity: a libp2p private key kept in a file, so the node id survives
 * restarts. The file holds the key in libp2p's protobuf encoding (the bytes of
 * `privateKeyToProtobuf`, the same format as go-libp2p's key files), binary, mode 0600.
 *
 * @module
 * @internal
 */
import { link, open, readFile, unlink } from 'node:fs/promises'
import { dirname } from 'node:path'
import type { PrivateKey } from '@libp2p/interface'
import { IdentityError } from './errors.js'

/** The subset of @libp2p/crypto used here (loaded lazily, after the polyfill). */
export interface KeyCodec {
  generateKeyPair(type: 'Ed25519'): Promise<PrivateKey>
  privateKeyToProtobuf(key: PrivateKey): Uint8Array
  privateKeyFromProtobuf(bytes: Uint8Array): PrivateKey
}

const code = (err: unknown) => (err as NodeJS.ErrnoException)?.code

/**
 * Reads the key in `path`, or creates one there (Ed25519, mode 0600) when the file does not
 * exist. Two nodes started at once on the same path get the same key.
 *
 * @throws {IdentityError} when the folder is missing, the file cannot be read or written, or it is not a key
 */
export async function loadIdentity(path: string, codec: KeyCodec): Promise<PrivateKey> {
  let bytes: Uint8Array
  try {
    bytes = await readFile(path)
  } catch (err) {
    if (code(err) !== 'ENOENT') throw unreadable(path, err)
    return create(path, codec)
  }
  return decode(path, bytes, codec)
}

async function create(path: string, codec: KeyCodec): Promise<PrivateKey> {
  const key = await codec.generateKeyPair('Ed25519')
  // Written whole to a temporary file, then linked into place: a crash never leaves a
  // half-written key, and of two nodes starting at once on the same path one key wins.
  const tmp = `${path}.${process.pid}.${Date.now()}.tmp`
  try {
    const file = await open(tmp, 'wx', 0o600)
    try {
      await file.writeFile(codec.privateKeyToProtobuf(key))
      await file.sync()
    } finally {
      await file.close()
    }
    await link(tmp, path)
  } catch (err) {
    if (code(err) === 'EEXIST') return decode(path, await readFile(path), codec)
    if (code(err) === 'ENOENT') {
      throw new IdentityError(
        path,
        `cannot create the identity file ${path}: its folder ${dirname(path)} does not exist — create it (and, in a container, mount a volume there so the id survives restarts)`,
      )
    }
    throw new IdentityError(
      path,
      `cannot create the identity file ${path} (${code(err) ?? (err as Error)?.message}): make its folder writable by this process`,
    )
  } finally {
    await unlink(tmp).catch(() => {})
  }
  return key
}

function decode(path: string, bytes: Uint8Array, codec: KeyCodec): PrivateKey {
  try {
    return codec.privateKeyFromProtobuf(bytes)
  } catch (err) {
    throw new IdentityError(
      path,
      `${path} is not a libp2p private key (${(err as Error)?.message}): restore the right file, or delete it to start with a new key (and so a new node id)`,
    )
  }
}

function unreadable(path: string, err: unknown): IdentityError {
  const why = code(err) ?? (err as Error)?.message
  const hint =
    why === 'EISDIR'
      ? 'give the path of a file, not of a folder'
      : why === 'EACCES'
        ? 'make it readable by the user this node runs as'
        : 'check the path and its permissions'
  return new IdentityError(path, `cannot read the identity file ${path} (${why}): ${hint}`)
}
