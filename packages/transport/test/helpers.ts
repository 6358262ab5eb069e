import { type ChildProcess, fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { Transport, TransportInit } from '@nact-horde/transport'

/** Polls `predicate` until it holds; rejects with `message` after `timeoutMs`. */
export async function waitFor(
  predicate: () => boolean,
  timeoutMs = 5000,
  message = 'condition not met in time',
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`waitFor: ${message} (after ${timeoutMs} ms)`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

/** Resolves with the detail of the next `type` event for `nodeId`, or rejects after `timeoutMs`. */
export function nextPeerEvent(
  t: Transport,
  type: 'peer:up' | 'peer:down',
  nodeId: string,
  timeoutMs = 5000,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      t.removeEventListener(type, listener)
      reject(new Error(`no ${type} for ${nodeId} within ${timeoutMs} ms`))
    }, timeoutMs)
    const listener = (event: CustomEvent<{ nodeId: string }>) => {
      if (event.detail.nodeId !== nodeId) return
      clearTimeout(timer)
      t.removeEventListener(type, listener)
      resolve()
    }
    t.addEventListener(type, listener)
  })
}

/** Records every peer event of a transport, for counting. */
export function recordPeerEvents(t: Transport): Array<{ type: string; nodeId: string }> {
  const events: Array<{ type: string; nodeId: string }> = []
  for (const type of ['peer:up', 'peer:down'] as const) {
    t.addEventListener(type, (event) => events.push({ type, nodeId: event.detail.nodeId }))
  }
  return events
}

export const bytes = (...values: number[]) => Uint8Array.from(values)
export const text = (s: string) => new TextEncoder().encode(s)
export const str = (b: Uint8Array) => new TextDecoder().decode(b)

const NODE_FIXTURE = fileURLToPath(new URL('./fixtures/node.mjs', import.meta.url))

/** A transport running in its own OS process (fixtures/node.mjs). */
export interface NodeProcess {
  child: ChildProcess
  nodeId: string
  /** The peer:up, peer:down and stall events it reported, in order. */
  events: Array<{ event: string; detail: { nodeId?: string; ms?: number } }>
}

/** Forks fixtures/node.mjs with `init` and resolves once its transport runs. */
export function spawnNode(init: TransportInit): Promise<NodeProcess> {
  const child = fork(NODE_FIXTURE, [JSON.stringify(init)], {
    execArgv: [],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  const events: NodeProcess['events'] = []
  return new Promise((resolve, reject) => {
    child.once('error', reject)
    child.once('exit', (code) => reject(new Error(`fixture exited with ${code}`)))
    child.on('message', (msg: { type: string; nodeId: string; event: string; detail: never }) => {
      if (msg.type === 'ready') resolve({ child, nodeId: msg.nodeId, events })
      else if (msg.type === 'event') events.push({ event: msg.event, detail: msg.detail })
    })
  })
}

/**
 * A bare libp2p node (TCP, noise, yamux, identify if asked; no cluster key, not a transport): a stranger that can
 * open streams to a transport and write raw frames. Returns it and `multiaddr` to name targets.
 */
export async function rawLibp2pNode({ identify: withIdentify = false } = {}) {
  const { createLibp2p } = await import('libp2p')
  const { tcp } = await import('@libp2p/tcp')
  const { noise } = await import('@chainsafe/libp2p-noise')
  const { yamux } = await import('@chainsafe/libp2p-yamux')
  const { identify } = await import('@libp2p/identify')
  const { multiaddr } = await import('@multiformats/multiaddr')
  const node = await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionMonitor: { enabled: false },
    // With identify, our transport learns which protocols it speaks.
    services: (withIdentify ? { identify: identify() } : {}) as Record<string, never>,
  })
  return { node, multiaddr }
}
