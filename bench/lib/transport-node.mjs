// A transport node in its own process (bench/fixtures/transport-node.mjs), driven over IPC:
// shared by bench/transport.bench.mjs and the mesh section of bench/scale.bench.mjs.
import { fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const FIXTURE = fileURLToPath(new URL('../fixtures/transport-node.mjs', import.meta.url))

/**
 * Forks a transport node with createTransport options `init`; it reports `meshed` once it has
 * `expectedPeers` peers up. `next(type)` resolves with its next message of that type ('ready',
 * 'meshed', or a command's answer); `send` sends it a command.
 */
export function spawnTransportNode(init, expectedPeers = 2) {
  const child = fork(FIXTURE, [JSON.stringify(init), String(expectedPeers)], {
    execArgv: ['--expose-gc'],
    stdio: 'inherit',
  })
  const waiters = []
  const inbox = []
  child.on('message', (msg) => {
    const i = waiters.findIndex((w) => w.type === msg.type)
    if (i >= 0) waiters.splice(i, 1)[0].resolve(msg)
    else inbox.push(msg)
  })
  const next = (type) => {
    const i = inbox.findIndex((m) => m.type === type)
    if (i >= 0) return Promise.resolve(inbox.splice(i, 1)[0])
    return new Promise((resolve) => waiters.push({ type, resolve }))
  }
  return { child, next, send: (msg) => child.send(msg) }
}
