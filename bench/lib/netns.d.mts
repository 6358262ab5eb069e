// Types of netns.mjs, for the TypeScript tests that use it (test/network/*.test.ts).

/** Why network namespaces cannot be used here, or undefined when they can. */
export declare function netnsUnavailable(): string | undefined
/** Deletes the namespaces left behind by runs whose process is gone; returns their names. */
export declare function sweepStale(): string[]

/** A network of node namespaces on one bridge (see netns.mjs). */
export declare class NetnsNetwork {
  constructor(n: number)
  readonly runId: string
  readonly subnet: number
  readonly bridgeNs: string
  readonly nodes: { ns: string; address: string }[]
  readonly destroyed: boolean
  create(): this
  ns(i: number): string
  address(i: number): string
  listen(i: number): string[]
  /** Node `i` falls silent both ways (DROP, no reset). */
  isolate(i: number): void
  /** The link between `i` and `j` is cut both ways. */
  cut(i: number, j: number): void
  /** Node `i` drops every packet from node `j`. */
  dropFrom(i: number, j: number): void
  /** Every node drops each packet arriving from the bridge with `probability` (iptables statistic match). */
  lose(probability: number): void
  /** Packets arrived from the bridge and dropped by the loss rules, summed over the nodes. */
  lossCounts(): { arrived: number; dropped: number }
  /** Writes /etc/netns/<ns>/hosts for node `i`: name → address. */
  hosts(i: number, entries: Record<string, string>): void
  /** What `name` resolves to inside node `i`'s namespace. */
  resolve(i: number, name: string): string[]
  /** Routes node-to-node TCP on `port` through a delay proxy run in node `proxy`'s namespace. */
  delayThrough(
    proxy: number,
    options: { delayMs: number; port: number; portBase?: number },
  ): Promise<{ connections: Map<string, number> }>
  heal(): void
  rules(): string[]
  destroy(): void
}

/** Creates a network of `n` node namespaces. */
export declare function createNetwork(n: number): NetnsNetwork
