#!/usr/bin/env node
/**
 * The `nact-horde` command: `nact-horde node` runs a horde node, `nact-horde status` prints a
 * running node's view of its cluster. `nact-horde --help` for the rest.
 */
import { messageOf } from './cli/format.js'
import { processIo } from './cli/io.js'
import { runCli } from './cli/main.js'

let code: number
try {
  code = await runCli(process.argv.slice(2), processIo)
} catch (err) {
  process.stderr.write(`nact-horde: unexpected error: ${(err as Error)?.stack ?? messageOf(err)}\n`)
  code = 1
}
// A stopped node may leave library timers behind; the command is done, so is the process.
process.exit(code)
