import { defineConfig } from 'vitest/config'

// One project per package. Tests import the packages by name, resolved through the
// workspace links to their built `dist/` (npm test builds first), so the tests exercise
// exactly what users install.
const pkg = (name: string, dir: string) => ({
  test: {
    name,
    root: `packages/${dir}`,
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
})

export default defineConfig({
  test: {
    projects: [
      pkg('@nact-horde/crdt', 'crdt'),
      pkg('@nact-horde/transport', 'transport'),
      pkg('nact-horde', 'nact-horde'),
    ],
    reporters: ['default', './scripts/summary-reporter.ts'],
  },
})
