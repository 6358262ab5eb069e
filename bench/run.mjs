// Runs every benchmark in bench/ one after another, each in its own process so that
// one's heap does not skew another's figures. `node bench/run.mjs crdt` runs only those
// whose file name contains "crdt"; further arguments go to each benchmark run, e.g.
// `node bench/run.mjs scale join failover` (sections of bench/scale.bench.mjs) or
// `SCALE_QUICK=1 node bench/run.mjs scale` (its smoke run, under 2 minutes).
import { spawnSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const dir = fileURLToPath(new URL('.', import.meta.url))
const filter = process.argv[2] ?? ''
const args = process.argv.slice(3)
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.bench.mjs') && f.includes(filter))
  .sort()
let failed = 0
for (const f of files) {
  console.log(`\n=== ${f} ===`)
  const r = spawnSync(process.execPath, ['--expose-gc', f, ...args], { cwd: dir, stdio: 'inherit' })
  if (r.status !== 0) failed++
}
process.exit(failed > 0 ? 1 : 0)
