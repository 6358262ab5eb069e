/**
 * Actor names for children. nact accepts only names matching NACT_NAME_PATTERN, while child ids
 * are arbitrary strings, and nact refs carry no incarnation: an old ref reaches a new actor of
 * the same name. So a child's actor name is `c.<base64url(utf8 id)>.<serial>`: base64url's
 * alphabet (A-Z a-z 0-9 - _) and '.' all fit nact's pattern, '.' never occurs in base64url so the
 * name splits unambiguously, and `serial` — a number the supervisor never gives twice, over all
 * its children, unlike the per-child incarnation behaviours see — makes each incarnation's name
 * one no older ref points to.
 */

import { LONE_SURROGATE } from '../behaviour.js'

const PREFIX = 'c.'

export function encodeChildName(id: string, serial: number): string {
  if (!Number.isSafeInteger(serial) || serial < 1) {
    throw new RangeError(`serial must be a positive integer, got ${serial}`)
  }
  if (LONE_SURROGATE.test(id)) throw new RangeError('id must be well-formed Unicode (no lone surrogates)')
  return `${PREFIX}${Buffer.from(id, 'utf8').toString('base64url')}.${serial}`
}

/** The inverse of encodeChildName; undefined for a name it did not produce. */
export function decodeChildName(name: string): { id: string; serial: number } | undefined {
  if (!name.startsWith(PREFIX)) return undefined
  const dot = name.lastIndexOf('.')
  if (dot < PREFIX.length - 1) return undefined
  const encoded = name.slice(PREFIX.length, dot)
  const num = name.slice(dot + 1)
  if (!/^[A-Za-z0-9_-]*$/.test(encoded) || !/^[1-9][0-9]*$/.test(num)) return undefined
  const serial = Number(num)
  if (!Number.isSafeInteger(serial)) return undefined
  const bytes = Buffer.from(encoded, 'base64url')
  // Reject non-canonical encodings (and invalid UTF-8), so decode(name) round-trips exactly.
  const id = bytes.toString('utf8')
  if (Buffer.from(id, 'utf8').toString('base64url') !== encoded) return undefined
  return { id, serial }
}

/** The name of a supervisor's parent actor: unique per supervisor instance, valid for nact. */
export function encodeParentName(hordeName: string, unique: string): string {
  return `h.${Buffer.from(hordeName, 'utf8').toString('base64url')}.${Buffer.from(unique, 'utf8').toString('base64url')}`
}
