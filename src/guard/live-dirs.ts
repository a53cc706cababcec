import { quote } from '../transport/quote.js'

/** A process that still uses a release: as its cwd, through a mapped file, or as Puma's first boot dir. */
export interface Holder {
  pid: number
  command: string
  /** `unseen`: a process whose cwd and maps could not be read, so it may use any release. */
  via: 'cwd' | 'map' | 'boot' | 'unseen'
  path: string
}

/**
 * The scan of one pass, run by `sh -c` with the releases root and `/proc/PID` paths as arguments: every
 * process whose cwd or mapped files lie under the root, and every process whose /proc entries this user
 * cannot read (`hidden`, with its uid, user and command line, which /proc shows everyone). Processes it
 * can read are listed as `seen`, so a second, privileged pass can clear what the first could not see.
 */
const SCAN = [
  'root=$1; shift',
  'for p; do',
  '  [ "$p" = "/proc/$$" ] && continue',
  '  pid=${p#/proc/}',
  `  cmd=$({ tr '\\0\\n\\t' '   ' < "$p/cmdline"; } 2>/dev/null | head -c 160)`,
  '  if ! cwd=$(readlink "$p/cwd" 2>/dev/null); then',
  // Its ids come from status, which everyone may read: whether it could enter releases/ at all.
  `    [ -e "$p" ] && printf 'hidden\\t%s\\t%s\\t%s\\t%s\\t%s\\n' "$pid" "$(stat -c '%u:%U' "$p" 2>/dev/null)" \\`,
  `      "$(sed -n 's/^Gid:[[:space:]]*\\([0-9]*\\).*/\\1/p' "$p/status" 2>/dev/null)" "$(sed -n 's/^Groups:[[:space:]]*//p' "$p/status" 2>/dev/null | tr ' ' ',')" "$cmd"`,
  '    continue',
  '  fi',
  `  printf 'seen\\t%s\\n' "$pid"`,
  `  case "$cwd" in "$root"/*) printf 'cwd\\t%s\\t%s\\t%s\\n' "$pid" "$cwd" "$cmd";; esac`,
  '  if [ -r "$p/maps" ]; then',
  `    grep -F "$root/" "$p/maps" 2>/dev/null | sed 's/^[^/]*//' | sort -u | while IFS= read -r f; do printf 'map\\t%s\\t%s\\t%s\\n' "$pid" "$f" "$cmd"; done`,
  '  fi',
  'done',
].join('\n')

/**
 * Lists every process on the host that uses something under `releases/`: as its cwd (deleting that
 * directory makes `getcwd` fail and respawned Puma workers crash-loop) or through a mapped file
 * (a shared object or an executable the process may exec again). Processes of other users (Puma run as
 * `www-data` while deploying as `deploy`) cannot be read without privileges: they are scanned again
 * through `sudo -n` (root where sudo allows it without a password, else `asUser`), and whatever stays
 * hidden is reported, so prune can keep what it cannot prove unused. (`fuser` and `lsof` read the same
 * /proc entries and see no more than this.)
 */
export function findLiveDirsCommand(releasesDir: string, options: { asUser?: string } = {}): string {
  const escalate = [
    'if [ -n "$hidden" ] && command -v sudo >/dev/null 2>&1; then',
    `  if sudo -n true 2>/dev/null; then printf 'escalated\\troot\\n'; sudo -n sh -c "$scan" sh "$root" $hidden`,
    ...(options.asUser
      ? [
          `  elif sudo -n -u ${quote(options.asUser)} true 2>/dev/null; then printf 'escalated\\t%s\\n' ${quote(options.asUser)}`,
          `    sudo -n -u ${quote(options.asUser)} sh -c "$scan" sh "$root" $hidden`,
        ]
      : []),
    '  fi',
    'fi',
  ]
  return [
    `root=$(cd ${quote(releasesDir)} 2>/dev/null && pwd -P) || exit 0`,
    `scan=${quote(SCAN)}`,
    'self=$(sh -c "$scan" sh "$root" /proc/[0-9]*)',
    `printf '%s\\n' "$self" | grep -v '^seen'`,
    `hidden=$(printf '%s\\n' "$self" | awk -F'\\t' '$1 == "hidden" { print "/proc/" $2 }')`,
    ...escalate,
    // Mode and owner of releases/ and each directory above it: who may search its way in.
    `d=$root; while :; do printf 'dir\\t%s\\n' "$(stat -c '%a %u %g' "$d")"; [ "$d" = / ] && break; d=$(dirname "$d"); done`,
    `printf 'root\\t%s\\n' "$root"`,
  ].join('\n')
}

/** A process whose cwd and maps could not be read, with what /proc shows everyone about it. */
export interface HiddenProcess {
  pid: number
  uid: number
  user: string
  /** Its primary and supplementary groups (from /proc/PID/status). */
  gids?: number[]
  command: string
}

/** A directory on the way to releases/ (releases/ included): its permission bits and owner. */
export interface PathDir {
  mode: number
  uid: number
  gid: number
}

export interface LiveDirs {
  /** Holders by release number. */
  byRelease: Map<number, Holder[]>
  /** How many processes could not be inspected (other users' processes, without root). */
  hidden: number
  /** Those processes. */
  unseen: HiddenProcess[]
  /** releases/ and every directory above it. */
  path: PathDir[]
  /** Whose rights a second pass over them used (`root` or `server.user`), when sudo allowed it. */
  escalated?: string
}

/** Parses findLiveDirsCommand's output, attributing each path to the release directory it lies in. */
export function parseLiveDirs(output: string): LiveDirs {
  const lines = output.split('\n')
  const root = lines.find((line) => line.startsWith('root\t'))?.slice(5)
  const result: LiveDirs = { byRelease: new Map(), hidden: 0, unseen: [], path: [] }
  const hidden = new Map<number, HiddenProcess>()
  const seen = new Set<number>()
  for (const line of lines) {
    const [tag, pidText, path, command] = line.split('\t')
    const pid = Number(pidText)
    if (tag === 'escalated') result.escalated = pidText
    if (tag === 'seen') seen.add(pid)
    if (tag === 'dir') {
      const [mode, uid, gid] = (pidText ?? '').split(' ')
      result.path.push({ mode: Number.parseInt(mode ?? '', 8), uid: Number(uid), gid: Number(gid) })
    }
    if (tag === 'hidden' && Number.isSafeInteger(pid)) {
      const [, , ids, gid, groups, cmd] = line.split('\t')
      const [uid, user] = (ids ?? '').split(':')
      const gids = [gid, ...(groups ?? '').split(',')].filter(Boolean).map(Number)
      hidden.set(pid, { pid, uid: Number(uid || -1), user: user ?? '', gids, command: (cmd ?? '').trim() })
    }
    if ((tag !== 'cwd' && tag !== 'map') || !root || path === undefined) continue
    seen.add(pid)
    const release = releaseOf(root, path)
    if (release === null) continue
    const holders = result.byRelease.get(release) ?? []
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
  result.unseen = [...hidden.values()].filter((process) => !seen.has(process.pid))
  result.hidden = result.unseen.length
  return result
}

/**
 * The hidden processes that may use a release, so that nothing can be proven unused while they run.
 * Left out: kernel threads (no command line, no cwd of their own), sshd's session processes, processes
 * that may not search their way into releases/ (canSearch), and root's daemons whose command line
 * does not name deploy_to (sshd, cron, journald: a host deploying as a normal user always has them,
 * and blocking on them would make prune a no-op there). Any other user's process counts.
 */
export function mayUseReleases(
  unseen: readonly HiddenProcess[],
  deployTo: readonly (string | null)[],
  path: readonly PathDir[] = [],
): HiddenProcess[] {
  const paths = deployTo.filter((path): path is string => Boolean(path))
  return unseen.filter((process) => {
    if (process.command === '') return false
    // sshd's per-connection processes (`sshd: deploy@notty`) are not dumpable, so /proc hides them even
    // from their own user; they run in / and exec nothing from a release.
    if (/^sshd: \S+/.test(process.command)) return false
    if (process.uid !== 0) return canSearch(path, process)
    return paths.some((path) => process.command.includes(path))
  })
}

/**
 * Whether a (non-root) process may search every directory down to releases/: without that it cannot
 * have made one its cwd (unless it got there before the permissions changed, or through an ACL, which
 * `stat` does not show: then it counts). Unknown ids or no path: it may.
 */
export function canSearch(path: readonly PathDir[], process: Pick<HiddenProcess, 'uid' | 'gids'>): boolean {
  if (path.length === 0 || !process.gids) return true
  return path.every((dir) => {
    if (!Number.isSafeInteger(dir.mode)) return true
    if (dir.uid === process.uid) return (dir.mode & 0o100) !== 0
    if (process.gids?.includes(dir.gid)) return (dir.mode & 0o010) !== 0
    return (dir.mode & 0o001) !== 0
  })
}

/** `root/12/app/x.rb` → 12; `root/.13.partial/x` → null (a build in progress is protected anyway). */
export function releaseOf(root: string, path: string): number | null {
  if (!path.startsWith(`${root}/`)) return null
  const first = path.slice(root.length + 1).split('/')[0] ?? ''
  const cleaned = first.replace(/ \(deleted\)$/, '')
  return /^\d+$/.test(cleaned) ? Number(cleaned) : null
}
