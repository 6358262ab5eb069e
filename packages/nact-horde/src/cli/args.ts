import { type ParseArgsConfig, parseArgs } from 'node:util'

/** The horde name `node` and `status` use when --name is not given. */
export const DEFAULT_NAME = 'nact-horde'

/** Exit codes of the CLI. */
export const EXIT_OK = 0
/** The command ran and failed (a node unreachable, a port taken, …). */
export const EXIT_FAILURE = 1
/** The command line itself is wrong (unknown command or flag, bad value). */
export const EXIT_USAGE = 2

/** A wrong command line: printed with a pointer to `--help`, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError'
  /** The command whose help to point to ('' for the top level). */
  readonly command: string
  constructor(message: string, command: string) {
    super(message)
    this.command = command
  }
}

type Options = NonNullable<ParseArgsConfig['options']>
/** What `parseArgs` returns for these options, strict and without positionals. */
type Flags<O extends Options> = ReturnType<
  typeof parseArgs<{ args: string[]; options: O; strict: true; allowPositionals: false }>
>['values']

/**
 * `parseArgs` in strict mode, with its errors (unknown flag, missing value, stray argument)
 * turned into a UsageError that says it in plain words.
 */
export function parseFlags<O extends Options>(args: string[], options: O, command: string): Flags<O> {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false }).values
  } catch (err) {
    const e = err as { code?: string; message?: string }
    const message = String(e.message ?? err)
    switch (e.code) {
      case 'ERR_PARSE_ARGS_UNKNOWN_OPTION': {
        const flag = /'([^']+)'/.exec(message)?.[1] ?? message
        throw new UsageError(`unknown option '${flag}'`, command)
      }
      case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL': {
        const arg = /'([^']+)'/.exec(message)?.[1] ?? message
        throw new UsageError(`unexpected argument '${arg}'`, command)
      }
      case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
        throw new UsageError(message.replace(/^Option /, 'option '), command)
      default:
        throw new UsageError(message, command)
    }
  }
}

/** A whole number of milliseconds from a flag's text, within [min, max]. */
export function parseMs(flag: string, text: string | undefined, command: string, min = 1, max = 600_000) {
  if (text === undefined) return undefined
  const n = Number(text)
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(
      `${flag} must be a whole number of milliseconds from ${min} to ${max}, got '${text}'`,
      command,
    )
  }
  return n
}

/** Checks that a flag's value looks like a multiaddr (`/ip4/…`); `withPeer` also needs `/p2p/<node id>`. */
export function checkMultiaddr(flag: string, text: string, command: string, withPeer: boolean): string {
  if (!text.startsWith('/')) {
    throw new UsageError(`${flag} takes a multiaddr such as /ip4/127.0.0.1/tcp/4001, got '${text}'`, command)
  }
  if (withPeer && !/\/p2p\/[^/]+$/.test(text)) {
    throw new UsageError(
      `${flag} needs the node's full address, ending in /p2p/<node id> (as 'nact-horde node' prints it), got '${text}'`,
      command,
    )
  }
  return text
}
