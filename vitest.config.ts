import { defineConfig } from 'vitest/config'

// One project per package. Tests import the packages by name, resolved through the
// workspace links to their built `dist/` (npm test builds first), so the tests exercise
// exactly what users install. Tests that run nodes as separate OS processes form their own
// project, run after the others (groupOrder) so they do not compete for the two cores.
const pkg = (
  name: string,
  dir: string,
  opts: { include?: string[]; exclude?: string[]; group?: number } = {},
) => ({
  test: {
    name,
    root: `packages/${dir}`,
    include: opts.include ?? ['test/**/*.test.ts'],
    exclude: opts.exclude ?? [],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    sequence: { groupOrder: opts.group ?? 0 },
  },
})

const processTests = ['test/process-*.test.ts', 'test/cli.test.ts', 'test/demo.test.ts']
// 100k messages through 10k refs with heap readings: run alone, after the rest, so that other
// files competing for the 2 cores neither time out its batches nor disturb its heap figures.
const heavyTests = ['test/routing-memory.test.ts']
// Needs root and network namespaces: run by `npm run test:network` (vitest.network.config.ts).
const networkTests = 'test/network/**'

export default defineConfig({
  test: {
    projects: [
      pkg('@nact-horde/crdt', 'crdt'),
      pkg('@nact-horde/transport', 'transport'),
      pkg('nact-horde', 'nact-horde', { exclude: [...processTests, ...heavyTests, networkTests] }),
      pkg('nact-horde:processes', 'nact-horde', { include: processTests, group: 1 }),
      pkg('nact-horde:heavy', 'nact-horde', { include: heavyTests, group: 2 }),
    ],
    reporters: ['default', './scripts/summary-reporter.ts'],
  },
})
