/**
 * Every code example in the documentation works as written.
 *
 * Fenced blocks are taken from README.md, packages/*\/README.md and docs/*.md:
 * - ```js blocks are complete programs: each is written to a temporary .mjs file and run with
 *   node (against the built packages, as a user would); it must exit 0.
 * - ```ts blocks are type-checked together with the TypeScript compiler API, with the
 *   repository's compiler settings (tsconfig.base.json) and noEmit. A block may use a free
 *   `horde` (a running Horde): the API fragments in the READMEs do.
 * - A block preceded by `<!-- not-run -->` is skipped (kept for the rare fragment that can
 *   neither run nor compile); other languages (sh, text, diagrams) are not code.
 */
import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import { afterAll, describe, expect, it } from 'vitest'

const root = fileURLToPath(new URL('../../../', import.meta.url))
// Under the package, so that 'nact-horde', 'nact' and the rest resolve through node_modules.
const tmp = fileURLToPath(new URL('./.tmp-docs/', import.meta.url))

interface Block {
  file: string
  line: number
  lang: string
  code: string
}

function markdownFiles(): string[] {
  const files = [join(root, 'README.md')]
  for (const pkg of readdirSync(join(root, 'packages'))) {
    const readme = join(root, 'packages', pkg, 'README.md')
    if (existsSync(readme)) files.push(readme)
  }
  for (const f of readdirSync(join(root, 'docs'))) if (f.endsWith('.md')) files.push(join(root, 'docs', f))
  return files
}

function extract(file: string): Block[] {
  const lines = readFileSync(file, 'utf8').split('\n')
  const out: Block[] = []
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\w*)\s*$/.exec(lines[i]!)
    if (!open) continue
    const start = i
    const body: string[] = []
    for (i++; i < lines.length && !/^```\s*$/.test(lines[i]!); i++) body.push(lines[i]!)
    let prev = start - 1
    while (prev >= 0 && lines[prev]!.trim() === '') prev--
    if (prev >= 0 && lines[prev]!.includes('<!-- not-run -->')) continue
    out.push({
      file: relative(root, file),
      line: start + 1,
      lang: open[1]!.toLowerCase(),
      code: body.join('\n'),
    })
  }
  return out
}

const blocks = markdownFiles().flatMap(extract)
const runnable = blocks.filter((b) => ['js', 'mjs', 'javascript'].includes(b.lang))
const typed = blocks.filter((b) => ['ts', 'typescript'].includes(b.lang))
const slug = (b: Block) => `${b.file.replace(/[^a-z0-9]+/gi, '_')}_${b.line}`

rmSync(tmp, { recursive: true, force: true })
mkdirSync(tmp, { recursive: true })
afterAll(() => rmSync(tmp, { recursive: true, force: true }))

function run(file: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    const env = { ...process.env }
    delete env.CLUSTER_KEY
    delete env.DEBUG
    execFile(process.execPath, [file], { cwd: tmp, env, timeout: 25_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0
      resolve({ code, output: `${stdout}\n${stderr}${err?.killed ? '\n(killed: took over 25 s)' : ''}` })
    })
  })
}

describe('documentation examples', () => {
  it('finds examples to check', () => {
    expect(runnable.length).toBeGreaterThan(5)
    expect(typed.length).toBeGreaterThan(2)
  })

  it('every ```ts block type-checks against the built packages', () => {
    const base = ts.readConfigFile(join(root, 'tsconfig.base.json'), (p) => ts.sys.readFile(p))
    const parsed = ts.convertCompilerOptionsFromJson(base.config.compilerOptions, root)
    const options: ts.CompilerOptions = {
      ...parsed.options,
      noEmit: true,
      composite: false,
      declaration: false,
      declarationMap: false,
      sourceMap: false,
      incremental: false,
    }
    const globals = join(tmp, 'globals.d.ts')
    writeFileSync(globals, "declare global {\n  const horde: import('nact-horde').Horde\n}\nexport {}\n")
    const where = new Map<string, Block>()
    for (const b of typed) {
      const path = join(tmp, `${slug(b)}.mts`)
      writeFileSync(path, `${b.code}\nexport {}\n`)
      where.set(path, b)
    }
    const program = ts.createProgram([globals, ...where.keys()], options)
    const problems = ts.getPreEmitDiagnostics(program).map((d) => {
      const text = ts.flattenDiagnosticMessageText(d.messageText, '\n')
      const b = d.file ? where.get(d.file.fileName) : undefined
      if (!d.file || !b) return `${d.file?.fileName ?? '(global)'}: ${text}`
      const { line } = d.file.getLineAndCharacterOfPosition(d.start ?? 0)
      return `${b.file}:${b.line + 1 + line}: ${text}`
    })
    expect(problems).toEqual([])
  }, 30_000)

  it('every ```js block runs with node and exits 0', async () => {
    const failures: string[] = []
    const queue = [...runnable]
    const worker = async () => {
      for (let b = queue.shift(); b !== undefined; b = queue.shift()) {
        const path = join(tmp, `${slug(b)}.mjs`)
        writeFileSync(path, b.code)
        const { code, output } = await run(path)
        if (code !== 0) failures.push(`${b.file}:${b.line} exited ${code}\n${output.slice(-2000)}`)
      }
    }
    await Promise.all([worker(), worker(), worker()])
    expect(failures).toEqual([])
  }, 60_000)
})
