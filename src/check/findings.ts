import { ExitCode, type ExitCodeValue } from '../errors.js'

/**
 * How much a finding matters for the next release:
 * - `blocking`: a release would fail, or would leave the host serving the wrong code or nothing;
 * - `warning`: a release works, but not as it should (a restart with downtime, a check it cannot make);
 * - `info`: worth knowing, nothing to fix;
 * - `ok`: checked and fine.
 */
export type Severity = 'ok' | 'info' | 'warning' | 'blocking'

/** One checked fact about one host. */
export interface Finding {
  /** What was checked, stable for scripts: `ssh`, `deploy-to`, `disk`, `tool`, `puma-preload`, ... */
  check: string
  severity: Severity
  /** A full sentence naming the value it is about. */
  message: string
  /** What to do about it; absent on `ok`. */
  hint?: string
}

/** One host's report. */
export interface HostCheck {
  host: string
  deployTo: string
  /** The worst severity among the findings. */
  status: Severity
  /** False when SSH failed (connection or host key): nothing else could be checked. */
  reachable: boolean
  /** Set when unreachable: ExitCode.connection or ExitCode.hostKey. */
  exitCode?: ExitCodeValue
  findings: Finding[]
}

const RANK: Record<Severity, number> = { ok: 0, info: 1, warning: 2, blocking: 3 }

/** The worst of `findings`' severities (`ok` for none). */
export function worstSeverity(findings: readonly Pick<Finding, 'severity'>[]): Severity {
  return findings.reduce<Severity>(
    (worst, finding) => (RANK[finding.severity] > RANK[worst] ? finding.severity : worst),
    'ok',
  )
}

/**
 * The exit code of `deployer check`: a host key refused anywhere wins (it may be an attack), then a host
 * that could not be reached, then any blocking finding; 0 when every host can take a release.
 */
export function checkExitCode(hosts: readonly HostCheck[]): ExitCodeValue {
  if (hosts.some((host) => host.exitCode === ExitCode.hostKey)) return ExitCode.hostKey
  if (hosts.some((host) => !host.reachable)) return ExitCode.connection
  if (hosts.some((host) => host.status === 'blocking')) return ExitCode.failure
  return ExitCode.ok
}

/**
 * A message as a sentence: a leading lowercase word is capitalised (`the source's config/puma.rb ...`),
 * a leading name is not (`deploy_to /srv/shop ...`, `/srv/shop is locked ...`).
 */
export function sentence(text: string): string {
  return /^[a-z]+(\s|$)/.test(text) ? text.charAt(0).toUpperCase() + text.slice(1) : text
}

/** `findings` with every message made a sentence. */
export function asSentences(findings: readonly Finding[]): Finding[] {
  return findings.map((finding) => ({ ...finding, message: sentence(finding.message) }))
}
