import createDebug from 'debug'
import type { LogFn } from './options.js'

/** The debug namespace of this package: `DEBUG=horde:transport* node app.mjs` shows its logs. */
export const DEBUG_NAMESPACE = 'horde:transport'

/** A logger under `horde:transport[:suffix]`, silent unless enabled with DEBUG. */
export function defaultLog(suffix?: string): LogFn {
  return createDebug(suffix === undefined ? DEBUG_NAMESPACE : `${DEBUG_NAMESPACE}:${suffix}`)
}
