import type { DeployConfig } from '../config/types.js'
import { count, formatBytes } from '../format.js'
import type { HostState } from '../release/host-state.js'
import { describeHeldLock } from '../release/lock.js'
import { assessPuma, type PumaFacts } from './assess-puma.js'
import { toolFindings } from './assess-tools.js'
import { asSentences, type Finding, sentence } from './findings.js'
import { DEPLOY_SUBDIRS, type RemoteFacts, requiredTools } from './host-facts.js'

/** What `check` read about one host: the assessment's only input besides the config. */
export interface HostFacts {
  host: string
  deployTo: string
  /** How the host is reached: `deploy@web1:22`, or `local`. */
  address: string
  local: boolean
  /** SSH failed; nothing else was read. Messages carry no `Host NAME:` prefix (gatherHost strips it). */
  unreachable?: { kind: 'connection' | 'host-key'; message: string; hint?: string }
  /** The host key was not in known_hosts and `host_key: accept-new` recorded it on this connection. */
  hostKeyRecorded?: boolean
  /** hostFactsCommand's answer; null when it failed (`remoteError` says why). */
  remote: RemoteFacts | null
  remoteError?: string
  /** deploy_to's releases, current and lock, as every command reads them; null when that failed. */
  state: HostState | null
  stateError?: string
  /** Whether the pid holding the lock still runs, when the lock was taken on this machine. */
  lockOwnerAlive?: boolean
  /** Files changed on the server since publishing, by release (a hotfix edited in place). */
  modified?: Map<number, string[]>
  /** Only with a `server:` section. */
  puma?: PumaFacts
}

/** The local source's size, or why it could not be read. */
export type SourceSize = { bytes: number; entries: number } | { error: string }

/** What the assessment needs besides the host's facts. */
export interface CheckContext {
  now: Date
  /** This machine's name, to judge locks it took. */
  machine: string
  source: SourceSize
}

/** The parts of deployer.yml the assessment reads. */
export type CheckConfig = Pick<DeployConfig, 'install' | 'server' | 'health'>

/**
 * A release rewrites about the whole app (less with unchanged files hard-linked), its install adds to it,
 * and logs keep growing: below twice the release plus this margin, a release may fill the disk.
 */
export const DISK_MARGIN_BYTES = 100 * 1024 * 1024
/** The same for inodes: one per file, directory and link of the release. */
export const INODE_MARGIN = 10_000

/**
 * Judges one host from what was read on it: whether a release can run there, and what would defeat a
 * zero-downtime restart. Pure: every fact comes in `facts`, so the rules are tested with tables.
 */
export function assessHost(facts: HostFacts, config: CheckConfig, context: CheckContext): Finding[] {
  if (facts.unreachable) {
    return [
      {
        check: 'ssh',
        severity: 'blocking',
        message: facts.unreachable.message,
        hint: facts.unreachable.hint,
      },
    ]
  }
  const user = facts.remote?.user ?? 'the SSH user'
  const findings: Finding[] = [connectionFinding(facts, user)]
  if (!facts.remote) {
    findings.push({
      check: 'deploy-to',
      severity: 'blocking',
      message: `Could not read deploy_to ${facts.deployTo} and the host's tools: ${facts.remoteError ?? 'no answer'}`,
      hint: 'Run the same SSH command by hand to see why; a release needs a POSIX shell with coreutils.',
    })
  } else {
    findings.push(...deployToFindings(facts.deployTo, facts.remote, user))
    findings.push(...diskFindings(facts.remote, context.source))
  }
  findings.push(...stateFindings(facts, context))
  const pumaRunning = facts.puma?.probe?.master.running ?? false
  if (facts.remote)
    findings.push(...toolFindings(requiredTools(config), facts.remote, user, config, pumaRunning))
  if (config.server && facts.puma) {
    findings.push(
      ...assessPuma(facts.puma, {
        server: config.server,
        health: config.health,
        deployTo: facts.deployTo,
      }),
    )
  }
  return asSentences(findings)
}

function connectionFinding(facts: HostFacts, user: string): Finding {
  if (facts.local) return { check: 'ssh', severity: 'ok', message: 'Runs on this machine (no SSH).' }
  if (facts.hostKeyRecorded) {
    return {
      check: 'ssh',
      severity: 'info',
      message: `Connected to ${facts.address} as ${user}; its host key was not in known_hosts, and host_key: accept-new recorded it without verifying it.`,
      hint: 'Compare the fingerprint now in known_hosts with the host’s own (`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on the host).',
    }
  }
  return {
    check: 'ssh',
    severity: 'ok',
    message: `Connected to ${facts.address} as ${user}; host key verified against known_hosts.`,
  }
}

function deployToFindings(deployTo: string, remote: RemoteFacts, user: string): Finding[] {
  const blocking = (message: string, hint: string): Finding[] => [
    { check: 'deploy-to', severity: 'blocking', message, hint },
  ]
  if (remote.danglingLink) {
    return blocking(
      `deploy_to ${deployTo} is a symlink to nothing.`,
      'Create the directory it points at, or remove the link.',
    )
  }
  if (remote.target !== deployTo) {
    if (!remote.targetIsDir) {
      return blocking(
        `deploy_to ${deployTo} cannot be created: ${remote.target} is not a directory.`,
        'Choose another deploy_to, or move that file away.',
      )
    }
    if (!remote.targetWritable) {
      return blocking(
        `deploy_to ${deployTo} does not exist and ${user} cannot create it: ${remote.target} is not writable by ${user}.`,
        `Create it once as root: \`sudo install -d -o ${user} ${deployTo}\`.`,
      )
    }
    return [
      {
        check: 'deploy-to',
        severity: 'ok',
        message: `deploy_to ${deployTo} does not exist yet; the first release creates it (${remote.target} is writable by ${user}).`,
      },
    ]
  }
  if (!remote.targetIsDir) {
    return blocking(
      `deploy_to ${deployTo} exists but is not a directory.`,
      'Choose another deploy_to, or move that file away.',
    )
  }
  if (!remote.targetWritable) {
    return blocking(
      `deploy_to ${deployTo} is not writable by ${user}.`,
      `Give it to ${user} (\`sudo chown ${user} ${deployTo}\`), or check that its filesystem is not mounted read-only.`,
    )
  }
  const unwritable = remote.subdirs.filter((subdir) => !subdir.writable)
  if (unwritable.length > 0) {
    return unwritable.map((subdir) => ({
      check: 'deploy-to',
      severity: 'blocking' as const,
      message: `${deployTo}/${subdir.name} is not a directory writable by ${user}.`,
      hint: `Give it back to ${user} (\`sudo chown -R ${user} ${deployTo}/${subdir.name}\`): a run as another user, or under sudo, probably created it.`,
    }))
  }
  const known = DEPLOY_SUBDIRS.filter((name) => remote.subdirs.some((subdir) => subdir.name === name))
  return [
    {
      check: 'deploy-to',
      severity: 'ok',
      message: `deploy_to ${deployTo} is writable by ${user}${known.length > 0 ? ` (and so are ${known.join(', ')})` : ''}.`,
    },
  ]
}

function diskFindings(remote: RemoteFacts, source: SourceSize): Finding[] {
  const fs = remote.fs
  if (!fs) {
    return [
      {
        check: 'disk',
        severity: 'warning',
        message: `Could not read the free space of ${remote.target} (\`stat -f\` failed).`,
        hint: 'Check it by hand with `df -h` and `df -i` on the host.',
      },
    ]
  }
  const free = `${formatBytes(fs.availableBytes)} free on the ${fs.type} filesystem of ${remote.target}`
  if ('error' in source) {
    return [
      {
        check: 'disk',
        severity: 'info',
        message: `${free}; the release size is unknown (the source could not be read).`,
      },
    ]
  }
  const findings: Finding[] = []
  const size = formatBytes(source.bytes)
  if (fs.availableBytes < source.bytes) {
    findings.push({
      check: 'disk',
      severity: 'blocking',
      message: `Only ${free}, less than the release (${size}).`,
      hint: 'Free space (old releases with `deployer prune --keep 2`, logs), or grow the filesystem.',
    })
  } else if (fs.availableBytes < 2 * source.bytes + DISK_MARGIN_BYTES) {
    findings.push({
      check: 'disk',
      severity: 'warning',
      message: `Only ${free}: less than twice the release (${size}) plus ${formatBytes(DISK_MARGIN_BYTES)}, which a release with its install can need.`,
      hint: 'Free space (old releases with `deployer prune --keep 2`, logs), or grow the filesystem.',
    })
  } else {
    findings.push({ check: 'disk', severity: 'ok', message: `${free} (the release is ${size}).` })
  }
  // Filesystems without a fixed inode table (btrfs) report 0 inodes: nothing to run out of.
  if (fs.totalInodes > 0) findings.push(inodeFinding(fs.freeInodes, source.entries, remote.target))
  return findings
}

function inodeFinding(freeInodes: number, entries: number, target: string): Finding {
  const free = `${freeInodes} free inodes on the filesystem of ${target}`
  const hint =
    'Delete many small files (old releases with `deployer prune --keep 2`, caches), or grow the filesystem.'
  if (freeInodes < entries)
    return {
      check: 'inodes',
      severity: 'blocking',
      message: `Only ${free}, fewer than the release's ${count(entries, 'entry', 'entries')}.`,
      hint,
    }
  if (freeInodes < 2 * entries + INODE_MARGIN)
    return {
      check: 'inodes',
      severity: 'warning',
      message: `Only ${free}: less than twice the release's ${count(entries, 'entry', 'entries')} plus ${INODE_MARGIN}.`,
      hint,
    }
  return {
    check: 'inodes',
    severity: 'ok',
    message: `${free} (the release has ${count(entries, 'entry', 'entries')}).`,
  }
}

function stateFindings(facts: HostFacts, context: CheckContext): Finding[] {
  if (facts.stateError) {
    return [
      {
        check: 'releases',
        severity: 'warning',
        message: `Could not read the releases in ${facts.deployTo}: ${facts.stateError}`,
        hint: 'A release reads them the same way first; check the permissions inside deploy_to.',
      },
    ]
  }
  const state = facts.state
  if (!state?.exists) return []
  const findings: Finding[] = []
  if (state.currentIsNotLink) {
    findings.push({
      check: 'releases',
      severity: 'blocking',
      message: `${facts.deployTo}/current is not a symlink, so a release cannot point it at the new release.`,
      hint: 'Move it away (for example into releases/), then release again.',
    })
  } else {
    const current = state.current === null ? 'no current release' : `current is release ${state.current}`
    findings.push({
      check: 'releases',
      severity: 'ok',
      message: `${count(state.releases.length, 'release')}, ${current}.`,
    })
  }
  if (state.lock !== undefined) {
    const report = describeHeldLock(
      facts.host,
      facts.deployTo,
      state.lock,
      context.now,
      context.machine,
      facts.lockOwnerAlive,
    )
    findings.push({
      check: 'lock',
      severity: 'info',
      message: withoutHostPrefix(facts.host, report.message),
      hint: report.hint,
    })
  }
  const unfinished = state.unfinished.filter((number) => !state.deleting.includes(number))
  if (state.deleting.length > 0) {
    findings.push({
      check: 'releases',
      severity: 'warning',
      message: `Half-deleted release${state.deleting.length === 1 ? '' : 's'} in ${facts.deployTo}/releases: ${state.deleting.map((number) => `.${number}.deleting`).join(', ')} (files the SSH user may not remove, or a killed prune).`,
      hint: 'Releases go on; remove it as the user owning its files (or root) to free the space.',
    })
  }
  for (const [number, files] of facts.modified ?? []) {
    findings.push({
      check: 'releases',
      severity: 'warning',
      message: `Release ${number} was modified after publishing: ${files.slice(0, 5).join(', ')}${files.length > 5 ? ` and ${files.length - 5} more` : ''}.`,
      hint: 'Published releases are meant to be immutable: put the fix in the source and release it; the next release uploads these files again instead of reusing them.',
    })
  }
  if (state.foreign.length > 0) {
    findings.push({
      check: 'releases',
      severity: 'info',
      message: `Foreign entries in ${facts.deployTo}/releases (not releases, never counted, pruned or rolled back to): ${state.foreign
        .slice(0, 10)
        .map((entry) => `${entry.name} (${entry.type})`)
        .join(', ')}.`,
      hint: 'Move them out of releases/ if nobody needs them.',
    })
  }
  if (unfinished.length > 0) {
    findings.push({
      check: 'releases',
      severity: 'info',
      message: `Unfinished release${unfinished.length === 1 ? '' : 's'} ${unfinished.join(', ')} in ${facts.deployTo}/releases: being built now, or left by a killed run.`,
      hint: 'The next release removes what a killed run left.',
    })
  }
  return findings
}

/** `Host web1: deploy_to ...` → `deploy_to ...`: findings are already listed under their host. */
export function withoutHostPrefix(host: string, message: string): string {
  const prefix = `Host ${host}: `
  const text = message.startsWith(prefix) ? message.slice(prefix.length) : message
  return sentence(text)
}
