import { createHash } from 'node:crypto'
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { dirname, join } from 'node:path'

/**
 * Content hashes of the source tree remembered between runs, keyed by what any write changes (size,
 * mtime, ctime, inode), like git's index: a repeat release hashes only the files that changed, the
 * rest costs one lstat. A damaged or missing cache only means hashing everything again.
 */
export class HashCache {
  private readonly file: string
  private readonly known: Map<string, string>
  private readonly seen = new Map<string, string>()

  private constructor(file: string, known: Map<string, string>) {
    this.file = file
    this.known = known
  }

  /** The cache for `root`, under `$XDG_CACHE_HOME/deployer` (or `~/.cache/deployer`). */
  static async open(root: string, env: NodeJS.ProcessEnv = process.env): Promise<HashCache> {
    const base = env.XDG_CACHE_HOME || join(homedir(), '.cache')
    const file = join(
      base,
      'deployer',
      `hashes-${createHash('sha256').update(root).digest('hex').slice(0, 16)}.json`,
    )
    let known = new Map<string, string>()
    try {
      known = new Map(Object.entries(JSON.parse(await readFile(file, 'utf8')) as Record<string, string>))
    } catch {
      // First run, or a cache from an older format: start empty.
    }
    return new HashCache(file, known)
  }

  /** The remembered hash for a file whose identity has not changed, else undefined. */
  lookup(path: string, identity: string): string | undefined {
    const entry = this.known.get(path)
    if (!entry) return undefined
    const [storedIdentity, hash] = entry.split(' ')
    return storedIdentity === identity ? hash : undefined
  }

  remember(path: string, identity: string, hash: string): void {
    this.seen.set(path, `${identity} ${hash}`)
  }

  /** Writes what this scan saw (files that are gone are forgotten); failures are not fatal. */
  async save(): Promise<void> {
    try {
      await mkdir(dirname(this.file), { recursive: true })
      const temporary = `${this.file}.${process.pid}.tmp`
      await writeFile(temporary, JSON.stringify(Object.fromEntries(this.seen)))
      await rename(temporary, this.file)
    } catch {
      // A read-only home only costs the next run its speed.
    }
  }
}

/** What identifies a file's content without reading it: any write changes size, mtime or ctime. */
export function fileIdentity(stat: { size: number; mtimeMs: number; ctimeMs: number; ino: number }): string {
  return `${stat.size}:${stat.mtimeMs}:${stat.ctimeMs}:${stat.ino}`
}
