import semver from 'semver'
import type { PumaConfigFacts } from './server-probe.js'

/**
 * Whether Puma runs with `preload_app` on, which makes it refuse a phased restart (USR1) and silently
 * hot-restart instead (docs/puma-restarts.md §1.3, F1). The rules differ by version:
 * - an explicit `preload_app!` / `preload_app! false` in the config file always wins;
 * - Puma 7.0+ turns it on by default when `workers > 1` and `prune_bundler` is off (puma/puma#3297);
 * - Puma 5.x/6.x turn it on by default when WEB_CONCURRENCY > 1. That default is computed in
 *   `Configuration#initialize`, before puma.rb loads, so neither `prune_bundler` nor `workers` in puma.rb
 *   changes it (puma/puma#2143, #2476, #3484).
 * Throws when `pumaVersion` holds no version.
 */
export function effectivePreload(
  pumaVersion: string,
  config: Pick<PumaConfigFacts, 'preloadApp' | 'workers' | 'pruneBundler'>,
  masterEnv: { webConcurrency?: string },
): boolean {
  if (config.preloadApp !== null) return config.preloadApp
  const version = semver.coerce(pumaVersion)
  if (!version) throw new Error(`Cannot tell the preload rules of Puma version "${pumaVersion}".`)
  if (version.major >= 7) return (config.workers ?? 0) > 1 && config.pruneBundler !== true
  return webConcurrency(masterEnv.webConcurrency) > 1
}

/** WEB_CONCURRENCY as Puma reads it (`Integer(...)`): surrounding blanks allowed, anything else is 0 here. */
function webConcurrency(value: string | undefined): number {
  if (value === undefined || !/^\s*\d+\s*$/.test(value)) return 0
  return Number(value.trim())
}
