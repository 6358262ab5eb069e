// A TCP forwarding proxy that delays every chunk by a fixed time, each way: emulated link
// latency where the kernel has no netem. Run it as its own process (inside a network namespace
// of bench/lib/netns.mjs, see `NetnsNetwork.delayThrough`):
//
//   node delay-proxy.mjs '{"delayMs":50,"routes":[{"port":5001,"host":"10.231.7.1","targetPort":4001}]}'
//
// For each route it listens on 0.0.0.0:<port> and forwards every connection to host:targetPort.
// It prints one JSON line per event on stdout: {"ready":true} once every route listens, and
// {"conn":"<host>:<targetPort>"} for each connection forwarded, so a test can tell that the
// traffic really passed through it. Order is kept: a chunk is written `delayMs` after it was
// read, never before the chunks read earlier. Closing one side closes the other once the
// delayed data has been written.
import { createConnection, createServer } from 'node:net'

const { delayMs, routes } = JSON.parse(process.argv[2] ?? '{}')
if (!Number.isFinite(delayMs) || delayMs < 0 || !Array.isArray(routes) || routes.length === 0) {
  console.error(
    'usage: delay-proxy.mjs \'{"delayMs":50,"routes":[{"port":5001,"host":"…","targetPort":4001}]}\'',
  )
  process.exit(2)
}

const say = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`)

/** Writes what `from` reads into `to`, each chunk `delayMs` late; ends `to` after the last one. */
function pipeDelayed(from, to) {
  let pending = 0
  let ended = false
  const finish = () => {
    if (ended && pending === 0) to.end()
  }
  from.on('data', (chunk) => {
    pending++
    setTimeout(() => {
      pending--
      if (!to.destroyed) to.write(chunk)
      finish()
    }, delayMs)
  })
  from.on('end', () => {
    ended = true
    finish()
  })
}

let listening = 0
for (const { port, host, targetPort } of routes) {
  const server = createServer((client) => {
    const upstream = createConnection({ host, port: targetPort })
    say({ conn: `${host}:${targetPort}` })
    pipeDelayed(client, upstream)
    pipeDelayed(upstream, client)
    const kill = () => {
      client.destroy()
      upstream.destroy()
    }
    client.on('error', kill)
    upstream.on('error', kill)
    client.on('close', () => setTimeout(kill, delayMs))
    upstream.on('close', () => setTimeout(kill, delayMs))
  })
  server.listen(port, '0.0.0.0', () => {
    if (++listening === routes.length) say({ ready: true })
  })
}
// The parent going away must not leave the proxy behind.
process.stdin.on('close', () => process.exit(0))
process.stdin.resume()
