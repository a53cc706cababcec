import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { LocalTree } from '../upload/local-tree.js'

/**
 * What a release is made of, in the parts that decide how Puma must restart (shared/DESIGN.md,
 * "The restart decision"). Stored with each release so the next deploy compares against the release the
 * running server really loaded, not against a guess.
 */
export interface Fingerprints {
  /** SHA-256 of the Puma config file; null when the release has none. */
  pumaConfig: string | null
  /** The bind strings the config evaluates to on the host (filled in there); null when unknown. */
  binds: string[] | null
  /** The Ruby the release asks for (.ruby-version, .tool-versions, the lockfile's RUBY VERSION). */
  ruby: string | null
  /** The Puma version locked in Gemfile.lock; null when the app does not bundle Puma. */
  puma: string | null
  /** SHA-256 over the lockfiles; null when there are none. */
  dependencies: string | null
  /** SHA-256 over `server.env_files` as they are on the host (filled in there); null without env files. */
  environment: string | null
  /**
   * SHA-256 over the env files puma.rb loads itself (`loaded_by: puma`), filled in on the host; null or
   * absent without them. A hot restart re-runs puma.rb, so a change here needs no full restart.
   */
  pumaEnvironment?: string | null
  /** The content hash of the whole tree: any change at all. */
  code: string
}

export interface LocalFingerprintInput {
  tree: LocalTree
  pumaConfig: string
  lockfiles: readonly string[]
}

/** Fingerprints computed from the local source tree; `binds` and `environment` are completed on each host. */
export async function fingerprintTree(input: LocalFingerprintInput): Promise<Fingerprints> {
  const { tree } = input
  const hashes = new Map(
    tree.entries.filter((entry) => entry.type === 'file').map((entry) => [entry.path, entry.sha256]),
  )
  const read = async (path: string): Promise<string | null> =>
    hashes.has(path) ? readFile(join(tree.root, path), 'utf8').catch(() => null) : null
  const lockfileHashes = input.lockfiles
    .filter((path) => hashes.has(path))
    .map((path) => `${path}\0${hashes.get(path)}`)
  const gemfileLock = await read('Gemfile.lock')
  return {
    pumaConfig: hashes.get(input.pumaConfig) ?? null,
    binds: null,
    ruby: declaredRuby(await read('.ruby-version'), await read('.tool-versions'), gemfileLock),
    puma: gemfileLock ? lockedGemVersion(gemfileLock, 'puma') : null,
    dependencies: lockfileHashes.length > 0 ? sha256(lockfileHashes.join('\n')) : null,
    environment: null,
    code: tree.contentHash,
  }
}

/**
 * The Ruby a release asks for, in the order version managers read it. `ruby-3.1.2`, `3.1.2p20` and
 * `3.1.2` all become `3.1.2`.
 */
export function declaredRuby(
  rubyVersion: string | null,
  toolVersions: string | null,
  gemfileLock: string | null,
): string | null {
  const fromRubyVersion = rubyVersion?.split('\n')[0]?.trim()
  if (fromRubyVersion) return normaliseRuby(fromRubyVersion)
  const toolLine = toolVersions?.split('\n').find((line) => /^\s*ruby\s+\S/.test(line))
  if (toolLine) return normaliseRuby(toolLine.trim().split(/\s+/)[1] ?? '')
  const lockMatch = gemfileLock ? /^RUBY VERSION\n\s+ruby\s+(\S+)/m.exec(gemfileLock) : null
  return lockMatch?.[1] ? normaliseRuby(lockMatch[1]) : null
}

function normaliseRuby(text: string): string | null {
  const cleaned = text
    .replace(/^ruby-/, '')
    .replace(/p\d+$/, '')
    .trim()
  return cleaned || null
}

/** The version of `gem` in a Gemfile.lock's GEM specs (the four-space-indented `name (version)` lines). */
export function lockedGemVersion(gemfileLock: string, gem: string): string | null {
  const escaped = gem.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  const match = new RegExp(`^ {4}${escaped} \\(([^)\\s]+)\\)$`, 'm').exec(gemfileLock)
  return match?.[1] ?? null
}

/** True when a running Ruby satisfies the declared one (`3.1` accepts `3.1.2`). */
export function rubyMatches(declared: string, running: string): boolean {
  return running === declared || running.startsWith(`${declared}.`)
}

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex')
}
