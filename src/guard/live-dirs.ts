import type { Holder } from '../release/prune-plan.js'
import { quote } from '../transport/quote.js'

/**
 * Lists every process on the host that uses something under `releases/`: as its cwd (deleting that
 * directory makes `getcwd` fail and respawned Puma workers crash-loop) or through a mapped file
 * (a shared object or an executable the process may exec again). Processes whose /proc entries this
 * user cannot read are counted, so the caller can say that it could not see them.
 */
export function findLiveDirsCommand(releasesDir: string): string {
  return [
    `root=$(cd ${quote(releasesDir)} 2>/dev/null && pwd -P) || exit 0`,
    'hidden=0',
    'for p in /proc/[0-9]*; do',
    '  pid=${p#/proc/}',
    '  [ "$pid" = "$$" ] && continue',
    '  if ! cwd=$(readlink "$p/cwd" 2>/dev/null); then [ -e "$p" ] && hidden=$((hidden+1)); continue; fi',
    `  cmd=$(tr '\\0\\n\\t' '   ' < "$p/cmdline" 2>/dev/null | head -c 160)`,
    '  case "$cwd" in "$root"/*) printf \'cwd\\t%s\\t%s\\t%s\\n\' "$pid" "$cwd" "$cmd";; esac',
    '  if [ -r "$p/maps" ]; then',
    `    grep -F "$root/" "$p/maps" 2>/dev/null | sed 's/^[^/]*//' | sort -u | while IFS= read -r f; do printf 'map\\t%s\\t%s\\t%s\\n' "$pid" "$f" "$cmd"; done`,
    '  fi',
    'done',
    `printf 'hidden\\t%s\\n' "$hidden"`,
    `printf 'root\\t%s\\n' "$root"`,
  ].join('\n')
}

export interface LiveDirs {
  /** Holders by release number. */
  byRelease: Map<number, Holder[]>
  /** Processes whose cwd could not be read (other users' processes, without root). */
  hidden: number
}

/** Parses findLiveDirsCommand's output, attributing each path to the release directory it lies in. */
export function parseLiveDirs(output: string): LiveDirs {
  const lines = output.split('\n')
  const root = lines.find((line) => line.startsWith('root\t'))?.slice(5)
  const result: LiveDirs = { byRelease: new Map(), hidden: 0 }
  for (const line of lines) {
    const [tag, pidText, path, command] = line.split('\t')
    if (tag === 'hidden') result.hidden = Number(pidText) || 0
    if ((tag !== 'cwd' && tag !== 'map') || !root || path === undefined) continue
    const release = releaseOf(root, path)
    if (release === null) continue
    const holders = result.byRelease.get(release) ?? []
    const pid = Number(pidText)
    // One line per process and release is enough to explain why a release stays.
    if (!holders.some((holder) => holder.pid === pid && holder.via === tag)) {
      holders.push({
        pid,
        via: tag,
        path: path.replace(/ \(deleted\)$/, ''),
        command: (command ?? '').trim(),
      })
    }
    result.byRelease.set(release, holders)
  }
  return result
}

/** `root/12/app/x.rb` → 12; `root/.13.partial/x` → null (a build in progress is protected anyway). */
export function releaseOf(root: string, path: string): number | null {
  if (!path.startsWith(`${root}/`)) return null
  const first = path.slice(root.length + 1).split('/')[0] ?? ''
  const cleaned = first.replace(/ \(deleted\)$/, '')
  return /^\d+$/.test(cleaned) ? Number(cleaned) : null
}
