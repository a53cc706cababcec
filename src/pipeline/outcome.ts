import type { RestartKind, Strategy } from '../config/types.js'
import { DeployerError, ExitCode, type ExitCodeValue, InterruptedError } from '../errors.js'
import type { HostSession } from '../hosts/host-session.js'
import type { TransportFactory } from '../hosts/sessions.js'
import type { ReleasePlan } from '../plan/release-plan.js'
import type { Phase, Reporter } from '../progress.js'
import type { Actor } from '../release/history.js'
import type { RestartDecision } from '../restart/decide.js'
import type { RestartOutcome, RestartPlan } from '../restart/restart-host.js'
import type { Transport } from '../transport/transport.js'

export interface ReleaseOptions {
  dryRun: boolean
  reporter: Reporter
  actor: Actor
  /** Aborted on SIGINT/SIGTERM: in-flight steps stop, nothing unfinished is published. */
  signal?: AbortSignal
  now?: () => Date
  open?: TransportFactory
  /** Runs git for the source's revision. */
  local?: Transport
  /** `--restart`: overrides `server.restart`. */
  restart?: RestartKind
  /** `--strategy`, `--batch`, `--concurrency`, `--on-failure`: override deployer.yml for this run. */
  strategy?: Strategy
  batch?: number
  concurrency?: number
  onFailure?: 'rollback' | 'stop'
}

/** One host's release, built and waiting to be published. */
export interface BuiltRelease {
  plan: RestartPlan | null
  /** releases/N/.deployer/fingerprints.json: the fingerprints and the restart decided for them. */
  fingerprintsFile: string
}

/**
 * released: live on the new release. failed: did not build or go live. discarded: built, then removed
 * because another host failed to build. skipped: built, but its wave never started. rolled-back: went
 * live, then back to its previous release (it failed verification, or `on_failure: rollback`).
 */
export type HostStatus = 'released' | 'failed' | 'discarded' | 'skipped' | 'planned' | 'rolled-back'

/** What happened on one host, for the rendered summary and `--json`. */
export interface HostReleaseOutcome {
  host: string
  deployTo: string
  status: HostStatus
  previous: number | null
  release: number | null
  /** Stale `.N.partial`/`.N.deleting` left by earlier killed runs and removed by this one. */
  removedStale: string[]
  pruned: number[]
  /** What the upload sent and what it reused from the previous release. */
  upload?: {
    from: number | null
    sentBytes: number
    sentEntries: number
    linkedFiles: number
    vendorReused?: boolean
  }
  /** How the release got its dependencies: the install command, or `install.check` over reused ones. */
  install?: { ran: 'install' | 'check'; reason: string }
  /** How Puma was restarted and why; absent without a `server:` section. */
  restart?: RestartDecision & { done?: Omit<RestartOutcome, 'kind'>; recovered?: string }
  error?: { message: string; hint?: string; exitCode: number }
  /** What went differently without changing what is live (copies where links were refused, a history that could not be written). */
  warnings?: string[]
  /** What happened to this host because of another one (not started, rolled back with the fleet). */
  note?: string
  timings: Partial<Record<Phase, number>>
}

export interface ReleaseResult {
  app: string
  release: number
  revision: string
  dryRun: boolean
  files: number
  bytes: number
  /** What the run set out to do, made before anything changed (what `--dry-run` prints). */
  plan?: ReleasePlan
  hosts: HostReleaseOutcome[]
  /** Set when the release did not end as asked on every host; the command exits with its code. */
  error?: DeployerError
}

export function newOutcome(session: HostSession): HostReleaseOutcome {
  return {
    host: session.name,
    deployTo: session.layout.deployTo,
    status: 'failed',
    previous: null,
    release: null,
    removedStale: [],
    pruned: [],
    timings: {},
  }
}

export function summarize(error: unknown): HostReleaseOutcome['error'] {
  if (error instanceof DeployerError)
    return { message: error.message, hint: error.hint, exitCode: error.exitCode }
  return { message: errorMessage(error), exitCode: ExitCode.failure }
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

export function isAbort(error: unknown): boolean {
  return error instanceof Error && (error.name === 'AbortError' || error instanceof InterruptedError)
}

/** An interrupt (SIGINT/SIGTERM) as the typed error the CLI turns into exit 130. */
export function throwIfInterrupted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new InterruptedError(abortReason(signal))
}

export function abortReason(signal: AbortSignal): string {
  return typeof signal.reason === 'string' ? signal.reason : 'a signal'
}

/** A host's recorded error as the typed error a stopped rollout reports. */
export function toDeployerError(outcome: HostReleaseOutcome): DeployerError {
  return new DeployerError(outcome.error?.message ?? `Host ${outcome.host} failed.`, {
    exitCode: (outcome.error?.exitCode ?? ExitCode.failure) as ExitCodeValue,
    hint: outcome.error?.hint,
    host: outcome.host,
  })
}
