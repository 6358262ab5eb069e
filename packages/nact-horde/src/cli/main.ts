import { EXIT_OK, EXIT_USAGE, UsageError } from './args.js'
import type { Io } from './io.js'
import { NODE_HELP, nodeCommand } from './node-command.js'
import { STATUS_HELP, statusCommand } from './status-command.js'

export const MAIN_HELP = `Usage: nact-horde <command> [options]

A distributed dynamic supervisor for nact, from the command line.

Commands:
  node      start a horde node (runs the example behaviours counter and echo)
  status    print a running node's view of its horde: members, status, children
  help      show this help, or a command's: nact-horde help node

Run 'nact-horde <command> --help' for a command's options.

Exit codes: 0 success, 1 failure (e.g. a node unreachable), 2 wrong command line.
`

const COMMANDS: Record<string, { run: (args: string[], io: Io) => Promise<number>; help: string }> = {
  node: { run: nodeCommand, help: NODE_HELP },
  status: { run: statusCommand, help: STATUS_HELP },
}

/** Runs the CLI on `argv` (without node and the script) and resolves with the exit code. */
export async function runCli(argv: string[], io: Io): Promise<number> {
  const [command, ...rest] = argv
  try {
    if (command === undefined || command === '--help' || command === '-h') {
      io.out(MAIN_HELP)
      return command === undefined ? EXIT_USAGE : EXIT_OK
    }
    if (command === 'help') {
      const topic = rest[0]
      if (topic === undefined) io.out(MAIN_HELP)
      else if (COMMANDS[topic] !== undefined) io.out(COMMANDS[topic].help)
      else throw new UsageError(`unknown command '${topic}'`, '')
      return EXIT_OK
    }
    const cmd = COMMANDS[command]
    if (cmd === undefined) {
      throw new UsageError(
        command.startsWith('-') ? `a command comes first, got '${command}'` : `unknown command '${command}'`,
        '',
      )
    }
    return await cmd.run(rest, io)
  } catch (err) {
    if (!(err instanceof UsageError)) throw err
    const help = err.command === '' ? 'nact-horde --help' : `nact-horde ${err.command} --help`
    io.err(`nact-horde: ${err.message}\nSee '${help}'.`)
    return EXIT_USAGE
  }
}
