// Shared by every benchmark: prints a figure table and records it in bench/RESULTS.md,
// each benchmark owning one section between markers so runs of different benchmarks
// never overwrite each other's figures.
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { cpus, totalmem } from 'node:os'
import { fileURLToPath } from 'node:url'

const RESULTS = fileURLToPath(new URL('../RESULTS.md', import.meta.url))

/** One line naming the machine and the date, for the top of each section. */
export function machine() {
  const cpu = cpus()[0]?.model?.trim() ?? 'unknown CPU'
  const gib = Math.round(totalmem() / 2 ** 30)
  return `${cpus().length} × ${cpu}, ${gib} GiB, Node ${process.version}, ${process.platform}; ${new Date().toISOString().slice(0, 10)}`
}

/** Renders rows (arrays of cells) as a Markdown table under a header row. */
export function table(header, rows) {
  const line = (cells) => `| ${cells.join(' | ')} |`
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n')
}

/** Replaces (or appends) the section `name` of bench/RESULTS.md with `markdown`. */
export function recordSection(name, markdown) {
  const start = `<!-- ${name}:start -->`
  const end = `<!-- ${name}:end -->`
  const block = `${start}\n${markdown.trim()}\n${end}`
  let text = existsSync(RESULTS)
    ? readFileSync(RESULTS, 'utf8')
    : '# Benchmark results\n\nEach section is written by the benchmark named in it (`npm run bench` runs them all).\n'
  const i = text.indexOf(start)
  const j = text.indexOf(end)
  text =
    i >= 0 && j > i
      ? text.slice(0, i) + block + text.slice(j + end.length)
      : `${text.trimEnd()}\n\n${block}\n`
  writeFileSync(RESULTS, text)
}
