import { posix } from 'node:path'
import { quote } from '../transport/quote.js'
import { type HistoryEvent, serializeEvent } from './history.js'
import {
  assertReleaseNumber,
  currentTarget,
  deletingPath,
  isInside,
  type Layout,
  partialPath,
  releasePath,
} from './layout.js'
import type { LockOwner } from './lock.js'

/*
 * Pure builders of the shell commands deployer runs on a host. Every path and value goes through
 * quote(); commands are POSIX sh (sshd runs them through the user's login shell) with GNU coreutils.
 */

/** Prints one tagged line per fact about the host; parsed by parseHostState. One round trip. */
export function inspectCommand(layout: Layout): string {
  const d = quote(layout.deployTo)
  return [
    `d=${d}`,
    `if [ ! -d "$d" ]; then echo absent; exit 0; fi`,
    `printf 'real\\t%s\\n' "$(cd "$d" && pwd -P)"`,
    `if [ -L "$d/current" ]; then printf 'current\\t%s\\n' "$(readlink "$d/current")"; elif [ -e "$d/current" ]; then echo 'current-not-link'; fi`,
    `if [ -f "$d/.deployer/sequence" ]; then printf 'sequence\\t%s\\n' "$(head -c 32 "$d/.deployer/sequence")"; fi`,
    `if [ -d "$d/.deployer/lock" ]; then printf 'lock\\t%s\\n' "$(head -c 4096 "$d/.deployer/lock/owner.json" 2>/dev/null | base64 | tr -d '\\n')"; fi`,
    // Every entry, dotfiles too, with its type: only a real directory named N is a release. A file `7`,
    // a symlink `8` pointing elsewhere, `tmp` or an editor's `3~` are someone else's (foreign entries).
    `if [ -d "$d/releases" ]; then for e in "$d"/releases/* "$d"/releases/.[!.]* "$d"/releases/..?*; do`,
    `  [ -e "$e" ] || [ -L "$e" ] || continue; n=\${e##*/}`,
    `  if [ -L "$e" ]; then t=symlink; elif [ -d "$e" ]; then t=dir; elif [ -f "$e" ]; then t=file; else t=other; fi`,
    `  case "$t:$n" in`,
    `  dir:*[!0-9]*|dir:0*) case "$n" in .[1-9]*.partial|.[1-9]*.deleting) printf 'other\\t%s\\n' "$n";; *) printf 'foreign\\t%s\\t%s\\n' "$t" "$(printf '%s' "$n" | tr '\\n\\t' '??')";; esac;;`,
    `  dir:*) printf 'release\\t%s\\t%s\\t%s\\n' "$n" "$(stat -c %Y "$e")" "$(head -c 128 "$e/REVISION" 2>/dev/null | head -n 1)";;`,
    `  *) printf 'foreign\\t%s\\t%s\\n' "$t" "$(printf '%s' "$n" | tr '\\n\\t' '??')";;`,
    `  esac`,
    `done; fi`,
    `if [ -f "$d/.deployer/history.jsonl" ]; then tail -n 5000 "$d/.deployer/history.jsonl" | sed 's/^/history\\t/'; fi`,
  ].join('\n')
}

/** Takes the lock with an atomic mkdir; prints `acquired`, or `held` followed by the holder's owner.json. */
export function acquireLockCommand(layout: Layout, owner: LockOwner): string {
  return [
    `mkdir -p ${quote(layout.meta)}`,
    `if mkdir ${quote(layout.lock)} 2>/dev/null; then`,
    `  printf '%s\\n' ${quote(JSON.stringify(owner))} > ${quote(layout.lockOwner)} && echo acquired`,
    `else echo held; cat ${quote(layout.lockOwner)} 2>/dev/null; fi`,
  ].join('\n')
}

/**
 * Takes the lock like acquireLockCommand and, only when this run now holds it, prints `mark` and the
 * host's state (inspectCommand): a release reads what it needs under the lock in the same round trip.
 */
export function acquireLockAndInspectCommand(layout: Layout, owner: LockOwner, mark: string): string {
  return [
    acquireLockCommand(layout, owner),
    `if grep -qF ${quote(owner.token)} ${quote(layout.lockOwner)} 2>/dev/null; then echo ${quote(mark)}`,
    inspectCommand(layout),
    'fi',
  ].join('\n')
}

/** Removes the lock only if this run still owns it, so a run never frees a lock someone else took. */
export function releaseLockCommand(layout: Layout, owner: LockOwner): string {
  return `if grep -qF ${quote(owner.token)} ${quote(layout.lockOwner)} 2>/dev/null; then rm -rf -- ${quote(layout.lock)}; fi`
}

/** Breaks the lock whoever holds it (`deployer unlock`). */
export function breakLockCommand(layout: Layout): string {
  return `rm -rf -- ${quote(guardedPath(layout, layout.lock))}`
}

/**
 * Prepares a host for building release N, under the lock: the directory skeleton, the sequence
 * (so N is never handed out again, even if this run dies), removal of partial and half-deleted releases
 * left by killed runs (nobody else can be building: we hold the lock), and the empty partial directory.
 */
export function prepareCommand(layout: Layout, release: number): string {
  const partial = partialPath(layout, release)
  return [
    'set -e',
    `mkdir -p ${quote(layout.releases)} ${quote(layout.shared)} ${quote(layout.meta)}`,
    `printf '%s\\n' ${release} > ${quote(layout.sequence)}.tmp && mv -f ${quote(layout.sequence)}.tmp ${quote(layout.sequence)}`,
    `for stale in ${quote(layout.releases)}/.[0-9]*.partial ${quote(layout.releases)}/.[0-9]*.deleting; do`,
    // One that cannot be removed (files another user owns) must not block every later release: it is
    // reported and left for someone with the rights to remove it.
    `  if [ -e "$stale" ]; then ${writableDirs('"$stale"')}`,
    `    if rm -rf -- "$stale" 2>/dev/null; then printf 'removed-stale\\t%s\\n' "$stale"; else printf 'stuck\\t%s\\n' "$stale"; fi`,
    '  fi',
    'done',
    `if [ -e ${quote(releasePath(layout, release))} ]; then echo "release ${release} already exists" >&2; exit 3; fi`,
    `mkdir ${quote(partial)}`,
  ].join('\n')
}

/**
 * Makes the directories of a tree writable so `rm -rf` can empty them. Only directories: a file's mode
 * lives in its inode, which a repeat release shares with the release before it (hard links), so a
 * chmod on files would modify another release.
 */
function writableDirs(quotedPath: string): string {
  return `find ${quotedPath} -type d ! -perm -u+w -exec chmod u+w {} + 2>/dev/null || true`
}

/** The manifest of a published release: what a repeat release compares its files with. */
export function readManifestCommand(layout: Layout, release: number): string {
  return `cat ${quote(posix.join(releasePath(layout, release), '.deployer', 'manifest.json'))} 2>/dev/null || true`
}

/** Where a release keeps the identity of each of its files at publish time (see publishedListing). */
export function publishedRecord(dir: string): string {
  return posix.join(dir, '.deployer', 'published.tsv')
}

/**
 * Inode, size, mtime and path of every regular file of a release (deployer's own `.deployer/` aside),
 * sorted. Written beside the manifest right before publishing; compared later, it shows a file edited
 * in place on the server (a hotfix) cheaply, without hashing. ctime is left out: the next release's hard
 * link to a file changes its ctime, so it would flag every reused file.
 */
function publishedListing(dir: string): string {
  return `( cd ${quote(dir)} && find . -type f ! -path './.deployer/*' -printf '%i %s %T@ %P\\n' | LC_ALL=C sort )`
}

/** Records the partial release's files (publishedListing); run right before it is published. */
export function recordPublishedCommand(layout: Layout, release: number): string {
  const partial = partialPath(layout, release)
  return `mkdir -p ${quote(posix.join(partial, '.deployer'))} && ${publishedListing(partial)} > ${quote(publishedRecord(partial))}`
}

/**
 * Prints the path of every file of release N changed, added or removed since it was published (lines
 * that differ from its record), at most `limit`; nothing when it has no record (an older release).
 */
export function modifiedFilesCommand(layout: Layout, release: number, limit = 1000): string {
  const dir = releasePath(layout, release)
  const record = quote(publishedRecord(dir))
  return [
    `if [ -f ${record} ]; then`,
    `  ${publishedListing(dir)} | LC_ALL=C comm -3 ${record} - | sed 's/^\\t//' | cut -d' ' -f4- | LC_ALL=C sort -u | head -n ${limit}`,
    'fi',
  ].join('\n')
}

/**
 * Hard-links the files named on stdin (NUL-separated paths) from release `from` into the partial
 * release, creating their directories. Runs before the tar stream, so directories a later entry makes
 * read-only are still writable here.
 */
export function linkFromCommand(layout: Layout, from: number, release: number): string {
  const partial = quote(partialPath(layout, release))
  return [
    `cd ${quote(releasePath(layout, from))} || exit 1`,
    'list=$(mktemp) && err=$(mktemp) || exit 1',
    `trap 'rm -f "$list" "$err"' EXIT`,
    'cat > "$list"',
    `xargs -0 -r cp -l --parents -t ${partial} -- < "$list" 2> "$err" && exit 0`,
    // fs.protected_hardlinks=1 lets only a file's owner (or who may read and write it) link it: in a team
    // deploying as several users, the previous release is often another user's. Copy instead; any other
    // failure stays one.
    `if grep -v ${LINK_REFUSED} "$err" | grep -q .; then cat "$err" >&2; exit 1; fi`,
    `xargs -0 -r cp -p --remove-destination --parents -t ${partial} -- < "$list" || exit 1`,
    `printf '${LINKS_COPIED}\t%s\n' "$(grep -c ${LINK_REFUSED} "$err")"`,
  ].join('\n')
}

/** What cp says when the kernel refuses a hard link (EPERM). */
const LINK_REFUSED = quote('Operation not permitted')
/** Printed by linkFromCommand and seedVendorCommand when they copied because linking was refused. */
export const LINKS_COPIED = 'copied-instead-of-linking'

/**
 * Seeds the partial release's vendored dependencies (`install.vendor`) with hard links to the previous
 * release's, so the install only adds what is new. Never over something the upload brought.
 */
export function seedVendorCommand(layout: Layout, from: number, release: number, vendor: string): string {
  const source = posix.join(releasePath(layout, from), vendor)
  const target = posix.join(partialPath(layout, release), vendor)
  return [
    `if [ -d ${quote(source)} ] && [ ! -e ${quote(target)} ]; then`,
    `  mkdir -p ${quote(posix.dirname(target))} || exit 1`,
    `  if err=$(cp -al ${quote(source)} ${quote(target)} 2>&1); then echo seeded`,
    // Linking refused (another user's files, see linkFromCommand): a copy still saves the install's time.
    `  elif printf '%s' "$err" | grep -q ${LINK_REFUSED}; then rm -rf -- ${quote(target)} && cp -a ${quote(source)} ${quote(target)} && echo seeded && printf '${LINKS_COPIED}\t0\n'`,
    `  else printf '%s\n' "$err" >&2; exit 1; fi`,
    'fi',
  ].join('\n')
}

/** Where the install's start is marked, to find files it wrote in place afterwards. */
export function installMarker(layout: Layout, release: number): string {
  return posix.join(layout.meta, `install.${assertReleaseNumber(release)}.marker`)
}

/**
 * Inode, size, mtime and path of every hard-linked file, sorted. Compared before and after the install:
 * a size or mtime that moved on a shared inode is a write in place. (Comparing lists, not timestamps with
 * a marker, because timestamps are coarser than a quick install.)
 */
function sharedFilesListing(dir: string): string {
  return `find ${quote(dir)} -type f -links +1 -printf '%i %s %T@ %P\\n' 2>/dev/null | LC_ALL=C sort`
}

/**
 * Lists regular files of the partial release that are hard links shared with another release and
 * changed size or mtime since the install (or check) started: an install that rewrites a file in place
 * instead of replacing it would change the older release too. Removes the marker.
 */
export function sharedWritesCommand(layout: Layout, release: number): string {
  const marker = installMarker(layout, release)
  return [
    `if [ -e ${quote(marker)} ]; then`,
    `  ${sharedFilesListing(partialPath(layout, release))} | LC_ALL=C comm -13 ${quote(marker)} - | cut -d' ' -f4- | head -n 20`,
    `  rm -f ${quote(marker)}`,
    'fi',
  ].join('\n')
}

/** Unpacks the tar stream on stdin into the partial release, keeping modes but not the uploader's uid. */
export function extractCommand(layout: Layout, release: number): string {
  return `tar -x -p --no-same-owner -f - -C ${quote(partialPath(layout, release))}`
}

/**
 * Links `shared.dirs` and `shared.files` into the partial release. Shared entries outlive releases:
 * a dir is created when missing; a file missing in shared/ is seeded from the release's own copy, and
 * with no copy at all the step fails rather than linking to nothing.
 */
export function linkSharedCommand(
  layout: Layout,
  release: number,
  dirs: readonly string[],
  files: readonly string[],
): string {
  const partial = partialPath(layout, release)
  const lines = ['set -e']
  for (const dir of dirs) {
    const inShared = posix.join(layout.shared, dir)
    const inRelease = posix.join(partial, dir)
    lines.push(
      `mkdir -p ${quote(inShared)} ${quote(posix.dirname(inRelease))}`,
      `rm -rf -- ${quote(inRelease)}`,
      `ln -s ${quote(inShared)} ${quote(inRelease)}`,
    )
  }
  for (const file of files) {
    const inShared = posix.join(layout.shared, file)
    const inRelease = posix.join(partial, file)
    lines.push(
      `mkdir -p ${quote(posix.dirname(inShared))} ${quote(posix.dirname(inRelease))}`,
      `if [ ! -e ${quote(inShared)} ]; then`,
      `  if [ -f ${quote(inRelease)} ] && [ ! -L ${quote(inRelease)} ]; then cp -p ${quote(inRelease)} ${quote(inShared)}`,
      `  else echo ${quote(`shared file ${inShared} does not exist`)} >&2; exit 4; fi`,
      'fi',
      `rm -rf -- ${quote(inRelease)}`,
      `ln -s ${quote(inShared)} ${quote(inRelease)}`,
    )
  }
  return lines.join('\n')
}

/** The exit status of installCommand when install.timeout ran out (GNU timeout's; 137 if TERM was ignored). */
export const INSTALL_TIMED_OUT = [124, 137] as const

/**
 * Runs the user's install command inside the partial release, telling it where it is. The command is
 * shell by design; it runs in its own shell so its `exit` or `cd` cannot leak, and reaches that shell
 * in the environment rather than its argv (a `${VAR}` in it must not show in `ps`). `timeout` makes it
 * the leader of its own process group and stops that group after `timeoutSeconds`; when it ends, what it
 * left running in the group (`cmd &`) is stopped too, and so is everything when this script is
 * signalled (an aborted run: sshd signals only this shell's group).
 */
export function installCommand(
  layout: Layout,
  release: number,
  command: string,
  timeoutSeconds: number,
): string {
  const partial = partialPath(layout, release)
  const marker = quote(installMarker(layout, release))
  const seconds = Math.max(1, Math.ceil(timeoutSeconds))
  return [
    // Kept when it exists: an install after a failed check is compared with the state before the check.
    `[ -e ${marker} ] || ${sharedFilesListing(partial)} > ${marker}`,
    `cd ${quote(partial)}`,
    `export DEPLOYER_RELEASE=${release} DEPLOYER_RELEASE_PATH=${quote(partial)} DEPLOYER_DEPLOY_TO=${quote(layout.deployTo)}`,
    `DEPLOYER_INSTALL=${quote(command)} timeout -k 10 ${seconds} /bin/sh -c 'c=$DEPLOYER_INSTALL; unset DEPLOYER_INSTALL; eval "$c"' < /dev/null &`,
    'pid=$!',
    `trap 'kill -TERM -$pid $pid 2>/dev/null; exit 143' TERM HUP INT`,
    'wait $pid; status=$?',
    `trap - TERM HUP INT`,
    // dash's kill takes no `--`: a negative pid right after the signal names the group.
    'kill -TERM -$pid 2>/dev/null',
    'exit $status',
  ].join('\n')
}

/** Renames the complete partial release to `releases/N`; refuses to overwrite anything. */
export function publishCommand(layout: Layout, release: number): string {
  const partial = partialPath(layout, release)
  const final = releasePath(layout, release)
  return [
    'set -e',
    `if [ -e ${quote(final)} ]; then echo "release ${release} already exists" >&2; exit 3; fi`,
    `mv -T -- ${quote(partial)} ${quote(final)}`,
  ].join('\n')
}

/**
 * Points `current` at release N atomically: a new symlink under a temporary name, then rename(2) over
 * `current`. Readers see either the old or the new target, never a missing link. `mv -T` refuses to
 * replace a real directory named `current`.
 */
export function flipCommand(layout: Layout, release: number): string {
  assertReleaseNumber(release)
  const temporary = posix.join(layout.deployTo, `.current.${release}.tmp`)
  return [
    'set -e',
    // A real directory: a symlink named N (someone else's) is never made current.
    `test -d ${quote(releasePath(layout, release))} && test ! -L ${quote(releasePath(layout, release))}`,
    `rm -f -- ${quote(temporary)}`,
    `ln -s ${quote(currentTarget(release))} ${quote(temporary)}`,
    `mv -T -f -- ${quote(temporary)} ${quote(layout.current)}`,
  ].join('\n')
}

/**
 * Appends one event to the host's history; a single write of one line, so lines never interleave.
 * After a torn last line (a full disk, a killed run) a newline goes first, so the event starts a line of
 * its own instead of being glued to the torn one and lost with it.
 */
export function appendHistoryCommand(layout: Layout, event: HistoryEvent): string {
  const history = quote(layout.history)
  return [
    `mkdir -p ${quote(layout.meta)}`,
    // In a team's setgid .deployer (several SSH users in one group), the history starts group-writable,
    // so the next user can append to it.
    `{ [ -e ${history} ] || [ ! -g ${quote(layout.meta)} ] || (umask 002 && : > ${history}); }`,
    // Through cat: it names the error (No space left on device) where dash's printf says only "I/O error".
    `{ if [ -s ${history} ] && [ -n "$(tail -c 1 ${history})" ]; then printf '\\n%s\\n' ${quote(serializeEvent(event))}; else printf '%s\\n' ${quote(serializeEvent(event))}; fi; } | cat >> ${history}`,
  ].join(' && ')
}

/** Removes an unpublished partial release (a failed or interrupted build). */
export function discardPartialCommand(layout: Layout, release: number): string {
  const partial = guardedPath(layout, partialPath(layout, release))
  return `if [ -e ${quote(partial)} ]; then ${writableDirs(quote(partial))}; rm -rf -- ${quote(partial)}; fi`
}

/**
 * Deletes published releases: each is first renamed out of the release namespace, so a delete that
 * dies half way leaves `.N.deleting` (cleaned up by the next run), never a broken `releases/N`.
 * `current` is re-checked on the host as the last guard.
 */
export function removeReleasesCommand(layout: Layout, releases: readonly number[]): string {
  const lines = ['set -e']
  for (const release of releases) {
    const final = guardedPath(layout, releasePath(layout, release))
    const deleting = guardedPath(layout, deletingPath(layout, release))
    lines.push(
      `if [ "$(readlink ${quote(layout.current)} 2>/dev/null)" = ${quote(currentTarget(release))} ]; then echo "release ${release} is current" >&2; exit 5; fi`,
      `if [ -d ${quote(final)} ] && [ ! -L ${quote(final)} ]; then mv -T -- ${quote(final)} ${quote(deleting)}; ${writableDirs(quote(deleting))}`,
      // Files another user owns stay: the release is out of the namespace (.N.deleting) and reported.
      `  if rm -rf -- ${quote(deleting)} 2>/dev/null; then printf 'removed\\t%s\\n' ${release}; else printf 'stuck\\t%s\\n' ${release}; fi`,
      'fi',
    )
  }
  return lines.join('\n')
}

/** Every path handed to `rm` passes here: it must lie strictly inside `deploy_to`. */
export function guardedPath(layout: Layout, path: string): string {
  if (!isInside(layout.deployTo, path)) {
    throw new Error(`Refusing to delete ${path}: it is not inside deploy_to ${layout.deployTo}`)
  }
  return path
}

/** Writes `content` to `path` in one step (used for files deployer adds to a release before it is published). */
export function writeFileCommand(path: string, content: string): string {
  return `mkdir -p ${quote(posix.dirname(path))} && printf '%s' ${quote(content)} > ${quote(path)}`
}
