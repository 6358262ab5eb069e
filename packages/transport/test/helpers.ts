import type { Transport } from '@nact-horde/transport'

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
