/** Where a command writes and what it reads from its environment (a fake in tests, the process otherwise). */
export interface Io {
  /** A line (or lines) of normal output, to stdout. */
  out(text: string): void
  /** A line of errors or diagnostics, to stderr. */
  err(text: string): void
  env: Record<string, string | undefined>
}

export const processIo: Io = {
  out: (text) => process.stdout.write(`${text}\n`),
  err: (text) => process.stderr.write(`${text}\n`),
  env: process.env,
}
