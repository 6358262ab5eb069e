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

/** The lowest Node major package.json's `engines` allows (">=22" → 22). */
function supportedMajor() {
  const pkg = JSON.parse(readFileSync(fileURLToPath(new URL('../../package.json', import.meta.url)), 'utf8'))
  const m = /^>=\s*(\d+)/.exec(pkg.engines?.node ?? '')
  if (m === null) throw new Error(`package.json engines.node is "${pkg.engines?.node}": expected ">=<major>"`)
  return Number(m[1])
}

/**
 * Replaces (or appends) the section `name` of bench/RESULTS.md with `markdown` — unless this
 * Node is older than package.json's `engines` allows: figures of a runtime no user runs the
 * packages on are printed, not recorded (a message says so and how to run it). Node 22 and
 * 24 run V8 with its mid-tier compiler (Maglev) on, and the figures differ from Node 20's by
 * more than the targets' margins: on this project's 2-core machine a start at 3 nodes cost
 * half as much CPU on 24, one at 24 nodes as much or more (bench/RESULTS.md, scale-cpu).
 */
export function recordSection(name, markdown) {
  const major = Number(process.versions.node.split('.')[0])
  const min = supportedMajor()
  if (major < min) {
    console.error(
      `\n[results] section ${name} not recorded: Node ${process.version} is below package.json engines (>= ${min}). ` +
        'Run it on a supported Node, e.g. `npm run build && npx -y node@24 bench/run.mjs`.',
    )
    return
  }
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
