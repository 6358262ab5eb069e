import { defineConfig } from 'vitest/config'

// The real-network suite (`npm run test:network`): horde nodes in Linux network namespaces,
// faults with iptables. It needs root, `ip` and `iptables`, so it is not part of `npm test`
// (vitest.config.ts excludes test/network); without them its global setup fails the run and
// says what is missing. One file at a time: the scenarios time failovers on a shared machine.
export default defineConfig({
  test: {
    name: 'nact-horde:network',
    root: 'packages/nact-horde',
    include: ['test/network/**/*.test.ts'],
    globalSetup: ['test/network/require-netns.ts'],
    fileParallelism: false,
    testTimeout: 90_000,
    hookTimeout: 30_000,
    reporters: ['default'],
  },
})
