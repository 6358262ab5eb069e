import { networkInterfaces } from 'node:os'

/** The interfaces of this host as `os.networkInterfaces()` lists them. */
export type Interfaces = ReturnType<typeof networkInterfaces>

const LOOPBACK = /^\/(ip4\/127\.|ip6\/::1\/)/
const WILDCARD = /^\/(ip4)\/0\.0\.0\.0\/tcp\/|^\/(ip6)\/::\/tcp\//

/** Whether a multiaddr is on a loopback interface (reachable from this machine only). */
export function isLoopback(addr: string): boolean {
  return LOOPBACK.test(addr)
}

/**
 * The addresses another machine can use to reach this node: its non-loopback addresses,
 * plus, for a wildcard listen (`/ip4/0.0.0.0/…`, `/ip6/::/…`), each non-loopback address of
 * this host's interfaces at the port it listens on. Empty when it listens on loopback only.
 */
export function reachableAddresses(
  addresses: string[],
  listen: string[],
  nodeId: string,
  interfaces: Interfaces = networkInterfaces(),
): string[] {
  const out = new Set(addresses.filter((a) => !isLoopback(a)))
  for (const l of listen) {
    const m = WILDCARD.exec(l)
    if (m === null) continue
    const family = m[1] === 'ip4' ? 'IPv4' : 'IPv6'
    const proto = m[1] ?? m[2]
    // The port it really got (the listen address may say tcp/0): from the actual addresses.
    const port = addresses.map((a) => new RegExp(`^/${proto}/[^/]+/tcp/(\\d+)`).exec(a)?.[1]).find(Boolean)
    if (port === undefined) continue
    for (const list of Object.values(interfaces)) {
      for (const i of list ?? []) {
        if (i.internal || i.family !== family || i.address.startsWith('fe80:')) continue
        out.add(`/${proto}/${i.address}/tcp/${port}/p2p/${nodeId}`)
      }
    }
  }
  return [...out]
}
