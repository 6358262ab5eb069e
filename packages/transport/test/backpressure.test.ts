import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const FIXTURE = fileURLToPath(new URL('./fixtures/backpressure.mjs', import.meta.url))

describe('libp2p transport under backpressure', () => {
  it('keeps the event loop running through repeated drain cycles of one stream (no microtask spin)', async () => {
    // In a separate process: a regression spins the event loop, which no in-process timeout can stop.
    const result = await new Promise<{ code: number | null; out: string }>((resolve) => {
      execFile(process.execPath, [FIXTURE], { timeout: 45_000 }, (err, stdout) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, out: stdout }),
      )
    })
    expect(result.code, `fixture output: ${result.out}`).toBe(0)
    expect(JSON.parse(result.out.trim())).toMatchObject({ ok: true })
  }, 60_000)
})
