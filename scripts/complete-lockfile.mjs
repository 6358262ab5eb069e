// The npm registry this project's machines reach serves only the Linux builds of packages that
// ship one binary package per platform (@biomejs/cli-*, @turbo/*). npm then leaves the other
// platforms' optional dependencies out of package-lock.json, and `npm ci` refuses the lock as
// out of sync. This script adds the missing entries — optional, with the os/cpu/libc their
// names state — so `npm ci` skips them as foreign platforms instead of failing. Run it after
// every `npm install` that rewrites the lock: `node scripts/complete-lockfile.mjs`.
import { readFileSync, writeFileSync } from 'node:fs'

const path = new URL('../package-lock.json', import.meta.url)
const lock = JSON.parse(readFileSync(path, 'utf8'))

function platformOf(name) {
  const n = name.toLowerCase()
  const os = ['darwin', 'win32', 'windows', 'android', 'linux', 'freebsd'].find((o) => n.includes(o))
  const cpu = n.includes('arm64') ? 'arm64' : n.includes('x64') || /-64$/.test(n) ? 'x64' : undefined
  if (os === undefined || cpu === undefined) return undefined
  const out = { os: [os === 'windows' ? 'win32' : os], cpu: [cpu] }
  if (n.includes('musl')) out.libc = ['musl']
  return out
}

let added = 0
for (const [key, pkg] of Object.entries(lock.packages)) {
  for (const [dep, version] of Object.entries(pkg.optionalDependencies ?? {})) {
    const depKey = `node_modules/${dep}`
    if (lock.packages[depKey] !== undefined || lock.packages[`${key}/${depKey}`] !== undefined) continue
    const platform = platformOf(dep)
    if (platform === undefined) continue
    lock.packages[depKey] = { version, dev: pkg.dev ?? undefined, optional: true, ...platform }
    added++
  }
}
lock.packages = Object.fromEntries(
  Object.entries(lock.packages).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a < b ? -1 : 1)),
)
writeFileSync(path, `${JSON.stringify(lock, null, 2)}\n`)
console.log(`complete-lockfile: added ${added} foreign-platform optional entries`)
