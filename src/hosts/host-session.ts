/*
 * Over 400 lines on purpose: HostSession is the one door to a host. Every remote operation of every
 * command (lock, inspect, prepare, upload, link, install, publish, flip, record, prune, ask, run) is a
 * method here, each a thin call to a builder in release/remote-commands.ts and its parser, so that
 * what deployer does on a host is listed in one place and nothing else reaches the transport.
 */
import { posix } from 'node:path'
import type { Readable } from 'node:stream'
import type { HostConfig } from '../config/types.js'
import { DeployerError, diskFullError, ExitCode, type ExitCodeValue, RemoteCommandError } from '../errors.js'
import { formatSeconds } from '../format.js'
import { findLiveDirsCommand, type LiveDirs, parseLiveDirs } from '../guard/live-dirs.js'
import {
  inodesError,
  outOfInodes,
  parseSpace,
  type SpaceReading,
  spaceCommand,
} from '../release/disk-space.js'
import type { HistoryEvent } from '../release/history.js'
import { type HostState, parseHostState, parseLockOwner } from '../release/host-state.js'
import { type Layout, layoutFor, partialPath } from '../release/layout.js'
import type { LockOwner } from '../release/lock.js'
import type { ReleaseManifest } from '../release/manifest.js'
import * as remote from '../release/remote-commands.js'
import { describeUnwritten, type UnwrittenEvent } from '../release/unwritten-history.js'
import { quote } from '../transport/quote.js'
import type { ExecOptions, ExecResult, Transport } from '../transport/transport.js'
import type { PreviousEntry } from '../upload/delta-plan.js'

/** Separates the prepare step's own output from the previous manifest it prints. */
const MANIFEST_MARK = '--deployer-manifest--'
/** Separates the manifest from the list of files modified since publishing. */
const MODIFIED_MARK = '--deployer-modified--'
/** Why a hard link to an earlier release can be refused, and what to change for links to work again. */
const LINK_REFUSED_WHY =
  'With fs.protected_hardlinks=1 only a file’s owner (or a user who may read and write it) may link it, and that release belongs to another user: deploying as one user for the whole team keeps repeat releases linked.'

/** How many links the host refused (copying instead), from linkFrom/seedVendor output; null if none. */
function linksRefused(output: string): number | null {
  const line = output.split('\n').find((entry) => entry.startsWith(`${remote.LINKS_COPIED}\t`))
  return line === undefined ? null : Number(line.split('\t')[1]) || 0
}

/** Precedes the error of a history append that failed after the flip. */
const UNWRITTEN_MARK = '--deployer-history-unwritten--'
/** Separates the lock's answer from the state read right after it. */
const STATE_MARK = '--deployer-state--'

function parseManifestFiles(text: string): PreviousEntry[] | null {
  try {
    const manifest = JSON.parse(text) as ReleaseManifest
    return Array.isArray(manifest.files) ? manifest.files : null
  } catch {
    return null
  }
}

export class LockHeldError extends DeployerError {
  readonly owner: LockOwner | null
  constructor(host: string, message: string, hint: string, owner: LockOwner | null) {
    super(message, { exitCode: ExitCode.locked, hint, host })
    this.owner = owner
  }
}

/**
 * One host's side of every operation: runs the pure command builders over the host's transport and
 * turns non-zero exits into typed errors naming the host and the step.
 */
export class HostSession {
  readonly host: HostConfig
  readonly transport: Transport
  readonly layout: Layout
  private lockedState?: HostState
  /** History events that could not be appended in this session (see record). */
  readonly unwrittenHistory: UnwrittenEvent[] = []
  /** What went differently than asked without failing (copies where links were refused), for the report. */
  readonly notes: string[] = []

  constructor(host: HostConfig, transport: Transport) {
    this.host = host
    this.transport = transport
    this.layout = layoutFor(host.deployTo)
  }

  get name(): string {
    return this.host.name
  }

  /** Connects now rather than on the first command, so the handshake overlaps with local work. */
  async connect(): Promise<void> {
    await this.transport.connect?.()
  }

  async inspect(): Promise<HostState> {
    const output = await this.run('reading the state of deploy_to', remote.inspectCommand(this.layout))
    return parseHostState(output)
  }

  /**
   * Takes the lock, or returns the current owner (null when unreadable) when someone else has it. With
   * `readState`, the host's state is read in the same round trip right after the lock is taken (kept
   * for `takeLockedState`): a release saves a round trip it would spend inspecting next.
   */
  async tryLock(
    owner: LockOwner,
    options: { readState?: boolean } = {},
  ): Promise<{ acquired: true } | { acquired: false; holder: LockOwner | null }> {
    const command = options.readState
      ? remote.acquireLockAndInspectCommand(this.layout, owner, STATE_MARK)
      : remote.acquireLockCommand(this.layout, owner)
    const output = await this.run('taking the deploy lock', command, {
      hint: `Check that ${this.layout.deployTo} (or its parent) is writable by the SSH user.`,
    })
    if (output.startsWith('acquired')) {
      const [, state] = output.split(`${STATE_MARK}\n`)
      this.lockedState = state === undefined ? undefined : parseHostState(state)
      return { acquired: true }
    }
    return { acquired: false, holder: parseLockOwner(output.replace(/^held\n/, '')) }
  }

  /** The state read when the lock was taken (once; later reads go to the host). */
  takeLockedState(): HostState | undefined {
    const state = this.lockedState
    this.lockedState = undefined
    return state
  }

  async unlock(owner: LockOwner): Promise<void> {
    await this.run('releasing the deploy lock', remote.releaseLockCommand(this.layout, owner))
  }

  async breakLock(): Promise<void> {
    await this.run('breaking the deploy lock', remote.breakLockCommand(this.layout))
  }

  /**
   * Prepares `.N.partial` and, in the same round trip, reads the manifest of release `from` (what a
   * repeat release compares with). Returns the stale partial releases it removed and that manifest.
   */
  async prepare(
    release: number,
    from: number | null = null,
  ): Promise<{
    removedStale: string[]
    stuck: string[]
    /** Files of release `from` edited, added or removed since it was published (a hotfix on the server). */
    modified: string[]
    previous: PreviousEntry[] | null
  }> {
    const command = [
      remote.prepareCommand(this.layout, release),
      ...(from === null
        ? []
        : [
            `echo ${MANIFEST_MARK}`,
            remote.readManifestCommand(this.layout, from),
            `echo ${MODIFIED_MARK}`,
            remote.modifiedFilesCommand(this.layout, from),
          ]),
    ]
    const output = await this.run(`preparing release ${release}`, command.join('\n'), {
      hint: `Check that ${this.layout.deployTo} is writable by the SSH user and the disk is not full.`,
    })
    const [head = '', rest] = output.split(`${MANIFEST_MARK}\n`)
    const [manifest, modifiedText = ''] = rest === undefined ? [] : rest.split(`${MODIFIED_MARK}\n`)
    const modified = modifiedText.split('\n').filter(Boolean)
    const removedStale = head
      .split('\n')
      .filter((line) => line.startsWith('removed-stale\t'))
      .map((line) => line.slice('removed-stale\t'.length))
    const stuck = head
      .split('\n')
      .filter((line) => line.startsWith('stuck\t'))
      .map((line) => line.slice('stuck\t'.length))
    return {
      removedStale,
      stuck,
      modified,
      previous: manifest === undefined ? null : parseManifestFiles(manifest),
    }
  }

  async upload(release: number, archive: Readable, signal?: AbortSignal): Promise<void> {
    // A source file that changed or could not be read ends the stream early: that, not what the
    // remote tar says of its cut-short input, is what the user must hear.
    let sourceError: DeployerError | undefined
    archive.once('error', (error) => {
      if (error instanceof DeployerError) sourceError = error
    })
    try {
      await this.run(`uploading release ${release}`, remote.extractCommand(this.layout, release), {
        stdin: archive,
        signal,
        hint: 'Check free disk space on the host (`df -h`) and that GNU tar is installed.',
      })
    } catch (error) {
      throw sourceError ?? error
    }
    if (sourceError) throw sourceError
  }

  /** Hard-links unchanged files from release `from` into the partial release. */
  async linkFrom(
    from: number,
    release: number,
    paths: readonly string[],
    signal?: AbortSignal,
  ): Promise<void> {
    if (paths.length === 0) return
    const output = await this.run(
      `reusing unchanged files of release ${from}`,
      remote.linkFromCommand(this.layout, from, release),
      {
        stdin: Buffer.from(`${paths.join('\0')}\0`, 'utf8'),
        signal,
        hint: 'Hard links need releases/ on one filesystem; check free inodes (`df -i`).',
      },
    )
    const refused = linksRefused(output)
    if (refused !== null)
      this.notes.push(
        `copied the ${paths.length} unchanged file${paths.length === 1 ? '' : 's'} of release ${from} instead of hard-linking ${paths.length === 1 ? 'it' : 'them'}: ${refused} link${refused === 1 ? ' was' : 's were'} refused (Operation not permitted). ${LINK_REFUSED_WHY}`,
      )
  }

  /** Seeds `vendor` from release `from` with hard links; true when it did. */
  async seedVendor(from: number, release: number, vendor: string): Promise<boolean> {
    const output = await this.run(
      `reusing ${vendor} of release ${from}`,
      remote.seedVendorCommand(this.layout, from, release, vendor),
    )
    if (linksRefused(output) !== null)
      this.notes.push(
        `copied ${vendor} of release ${from} instead of hard-linking it: linking was refused (Operation not permitted). ${LINK_REFUSED_WHY}`,
      )
    return output.includes('seeded')
  }

  /** Files shared with another release that the install wrote in place (see sharedWritesCommand). */
  async sharedWrites(release: number): Promise<string[]> {
    const output = await this.run(
      'checking what the install wrote',
      remote.sharedWritesCommand(this.layout, release),
    )
    return output.split('\n').filter(Boolean)
  }

  async linkShared(release: number, dirs: readonly string[], files: readonly string[]): Promise<void> {
    if (dirs.length === 0 && files.length === 0) return
    await this.run(
      `linking shared files into release ${release}`,
      remote.linkSharedCommand(this.layout, release, dirs, files),
      {
        hint: `Create missing shared files under ${this.layout.shared} on the host (they hold server-side data such as .env).`,
      },
    )
  }

  /**
   * Runs `command` in the partial release within `timeout` seconds; messages name it as `shown` (see
   * InstallSettings.commandAsWritten).
   */
  async install(
    release: number,
    command: string,
    options: Pick<ExecOptions, 'signal' | 'onOutput'> & { shown?: string; timeout: number },
  ): Promise<void> {
    const shown = options.shown ?? command
    const what = `install (\`${shown}\`) in release ${release}`
    try {
      await this.run(what, remote.installCommand(this.layout, release, command, options.timeout), {
        ...options,
        exitCode: ExitCode.install,
        hint: 'Fix the install (run it by hand in the release directory to see it fail); `current` was not changed.',
      })
    } catch (error) {
      const timedOut =
        error instanceof RemoteCommandError &&
        (remote.INSTALL_TIMED_OUT as readonly (number | null)[]).includes(error.code)
      if (!timedOut) throw error
      throw new RemoteCommandError(this.name, what, error, {
        exitCode: ExitCode.install,
        because: `it did not finish within install.timeout (${formatSeconds(options.timeout)}); it and every process it started in its process group were stopped`,
        hint: 'Find what it waits for (a prompt for input, a server it started in the foreground), or raise install.timeout in deployer.yml. `current` was not changed.',
      })
    }
  }

  /** Runs `install.check` like the install; false when it fails (then the install runs). */
  async check(
    release: number,
    command: string,
    options: { signal?: AbortSignal; timeout: number },
  ): Promise<boolean> {
    const result = await this.transport.exec(
      remote.installCommand(this.layout, release, command, options.timeout),
      { signal: options.signal },
    )
    return result.code === 0
  }

  async discardPartial(release: number): Promise<void> {
    await this.run(
      `removing the partial release ${release}`,
      remote.discardPartialCommand(this.layout, release),
    )
  }

  async publish(release: number): Promise<void> {
    await this.run(`publishing release ${release}`, remote.publishCommand(this.layout, release))
  }

  /**
   * Writes the release's last file, publishes it, flips `current` and records the event in one round
   * trip (each step stops the rest on failure, so a failed publish never flips).
   */
  async publishAndFlip(
    release: number,
    files: { path: string; content: string }[],
    event: HistoryEvent,
  ): Promise<void> {
    const partial = partialPath(this.layout, release)
    const output = await this.run(
      `publishing release ${release} and pointing current at it`,
      [
        // Runs to the end even if the connection drops half way (sshd then sends SIGHUP), so a host
        // never keeps a published release that `current` and the history do not know about.
        "trap '' HUP PIPE",
        'set -e',
        ...files.map((file) => remote.writeFileCommand(posix.join(partial, file.path), file.content)),
        remote.recordPublishedCommand(this.layout, release),
        remote.publishCommand(this.layout, release),
        remote.flipCommand(this.layout, release),
        // Past the flip the release is live: a history that cannot be written (a full disk) is
        // reported with what is live, never as a failed publish (see UnwrittenEvent).
        `if ! unwritten=$( { ${remote.appendHistoryCommand(this.layout, event)}; } 2>&1 ); then printf '%s\\n%s\\n' ${quote(UNWRITTEN_MARK)} "$unwritten"; fi`,
      ].join('\n'),
      { hint: `If ${this.layout.current} is a real directory (not a symlink), move it away first.` },
    )
    const [, unwritten] = output.split(`${UNWRITTEN_MARK}\n`)
    if (unwritten !== undefined) this.unwrittenHistory.push({ event, reason: unwritten.trim() })
  }

  async flip(release: number): Promise<void> {
    await this.run(`pointing current at release ${release}`, remote.flipCommand(this.layout, release), {
      hint: `If ${this.layout.current} is a real directory (not a symlink), move it away first.`,
    })
  }

  /**
   * Appends an event to the history. Every event records a change already made on the host, so a
   * failed append (a full disk) does not throw: it is kept in `unwrittenHistory` for the command to
   * report with what is live. Only a lost connection throws. Returns whether the event was written.
   */
  async record(event: HistoryEvent): Promise<boolean> {
    const result = await this.transport.exec(remote.appendHistoryCommand(this.layout, event))
    if (result.code === 0) return true
    this.unwrittenHistory.push({ event, reason: `${result.stderr}${result.stdout}`.trim() })
    return false
  }

  /** The warning for the events `record` and `publishAndFlip` could not append; null when none. */
  unwrittenHistoryWarning(): string | null {
    if (this.unwrittenHistory.length === 0) return null
    return describeUnwritten(this.layout.deployTo, this.layout.history, this.unwrittenHistory)
  }

  /** Everything this session has to warn about once its command is done: notes, then the history. */
  warnings(): string[] {
    const history = this.unwrittenHistoryWarning()
    return history === null ? [...this.notes] : [...this.notes, history]
  }

  async liveDirs(): Promise<LiveDirs> {
    return parseLiveDirs(
      await this.run('listing processes that use releases', findLiveDirsCommand(this.layout.releases)),
    )
  }

  /**
   * Deletes releases; `stuck` are those renamed to `.N.deleting` but not fully deleted (files another
   * user owns): out of the release namespace, left for someone with the rights.
   */
  /** Files changed since publishing, by release (only releases with a change are listed). */
  async modifiedReleases(releases: readonly number[]): Promise<Map<number, string[]>> {
    const modified = new Map<number, string[]>()
    if (releases.length === 0) return modified
    const script = releases
      .map(
        (release) =>
          `echo ${quote(`${MODIFIED_MARK}${release}`)}\n${remote.modifiedFilesCommand(this.layout, release, 20)}`,
      )
      .join('\n')
    const output = await this.run('comparing releases with what was published', script)
    for (const part of output.split(MODIFIED_MARK).slice(1)) {
      const [number = '', ...paths] = part.split('\n').filter(Boolean)
      if (paths.length > 0) modified.set(Number(number), paths)
    }
    return modified
  }

  async removeReleases(releases: readonly number[]): Promise<{ removed: number[]; stuck: number[] }> {
    if (releases.length === 0) return { removed: [], stuck: [] }
    const output = await this.run(
      `deleting releases ${releases.join(', ')}`,
      remote.removeReleasesCommand(this.layout, releases),
    )
    const tagged = (tag: string) =>
      output
        .split('\n')
        .filter((line) => line.startsWith(`${tag}\t`))
        .map((line) => Number(line.slice(tag.length + 1)))
    return { removed: tagged('removed'), stuck: tagged('stuck') }
  }

  async close(): Promise<void> {
    await this.transport.close()
  }

  /** After ENOSPC: the disk's reading when it is its inodes, not its space, that ran out. */
  private async inodesExhausted(): Promise<SpaceReading | null> {
    try {
      const result = await this.transport.exec(spaceCommand(this.layout.deployTo))
      const reading = parseSpace(result.stdout)
      return outOfInodes(reading) ? reading : null
    } catch {
      return null
    }
  }

  /**
   * Runs a command whose exit status is an answer, not a failure (is this pid alive? does the file
   * exist?): the result as it came, for the caller to read. Only a lost connection throws.
   */
  async ask(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    return this.transport.exec(command, options)
  }

  /** Runs a command and returns its stdout; a non-zero exit becomes a RemoteCommandError. */
  async run(
    what: string,
    command: string,
    options: ExecOptions & { exitCode?: ExitCodeValue; hint?: string } = {},
  ): Promise<string> {
    const result = await this.transport.exec(command, options)
    if (result.code !== 0) {
      const diskFull = diskFullError(`${result.stderr}\n${result.stdout}`)
      const deployTo = this.layout.deployTo
      const inodes = diskFull ? await this.inodesExhausted() : null
      throw new RemoteCommandError(this.name, what, result, {
        exitCode: options.exitCode,
        ...(inodes && diskFull
          ? inodesError(deployTo, inodes, diskFull)
          : diskFull
            ? {
                because: `the disk holding ${deployTo} is full (${diskFull})`,
                hint: `Free space on that disk (\`df -h ${quote(deployTo)}\` on the host; \`deployer prune --keep N\` deletes old releases), then run the command again.`,
              }
            : { hint: options.hint }),
      })
    }
    return result.stdout
  }
}
