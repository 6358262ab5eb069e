// Global setup of the network suite: refuse to run (fail, never pass silently) where network
// namespaces cannot be made, and sweep namespaces an earlier run left behind.
import { netnsUnavailable, sweepStale } from '../../../../bench/lib/netns.mjs'

export default function setup(): void {
  const why = netnsUnavailable()
  if (why !== undefined) {
    throw new Error(
      `npm run test:network needs Linux network namespaces and iptables as root, and cannot run here: ${why}. ` +
        'Run it as root (CI does: .ci/run installs iptables), e.g. `sudo npm run test:network`; ' +
        'plain `npm test` needs neither.',
    )
  }
  const swept = sweepStale()
  if (swept.length > 0) console.log(`[network] removed ${swept.length} namespaces left by an earlier run`)
}
