import { Command, Flags } from '@oclif/core'
import { loadConfig, selectHosts } from '../config/load.js'
import type { DeployConfig } from '../config/types.js'
import { DeployerError, ExitCode } from '../errors.js'
import type { Reporter } from '../progress.js'
import { ListrReporter } from '../ui/listr-reporter.js'
import { PlainReporter } from '../ui/plain-reporter.js'

/** An error as `--json` output carries it, whether the run threw it or ended with it. */
export function errorJson(error: DeployerError): {
  message: string
  hint?: string
  exitCode: number
  host?: string
} {
  return { message: error.message, hint: error.hint, exitCode: error.exitCode, host: error.host }
}

/**
 * What every deployer command shares: the common flags, config loading with the `--host` filter,
 * progress on stderr, SIGINT/SIGTERM turned into an abort, and errors rendered with their hint and
 * exit code (also under `--json`, where oclif would otherwise exit 1).
 */
export abstract class DeployerCommand extends Command {
  static override baseFlags = {
    config: Flags.string({
      char: 'c',
      description: 'path to deployer.yml',
      default: 'deployer.yml',
      helpGroup: 'GLOBAL',
    }),
    host: Flags.string({ description: 'only this host (repeatable)', multiple: true, helpGroup: 'GLOBAL' }),
    json: Flags.boolean({
      description: 'print a machine-readable result on stdout (progress stays on stderr)',
      helpGroup: 'GLOBAL',
    }),
  }

  /** `--json` was given: set by loadDeployConfig, or by a command that loads no config (init). */
  protected json = false
  private signalCleanup?: () => void
  private reporter?: Reporter

  /** Loads deployer.yml and narrows it to the `--host` selection. */
  protected async loadDeployConfig(flags: {
    config: string
    host?: string[]
    json: boolean
  }): Promise<DeployConfig> {
    this.json = flags.json
    const config = await loadConfig(flags.config)
    return flags.host && flags.host.length > 0
      ? { ...config, hosts: selectHosts(config, flags.host) }
      : config
  }

  /**
   * listr2 tasks on a terminal; plain lines in CI, in a pipe and under `--json` (whose stdout is the
   * result only, while progress still goes to stderr).
   */
  protected reporterFor(config: DeployConfig): Reporter {
    const names = config.hosts.map((host) => host.name)
    const terminal = process.stderr.isTTY && !this.json && !process.env.CI && process.env.TERM !== 'dumb'
    this.reporter = terminal ? new ListrReporter(names) : new PlainReporter(names)
    return this.reporter
  }

  /** Lets the progress display draw its last frame before anything else is printed. */
  private async closeReporter(): Promise<void> {
    const reporter = this.reporter
    this.reporter = undefined
    await reporter?.close?.()
  }

  /**
   * An AbortSignal fired by the first SIGINT or SIGTERM, so the run can stop its steps, discard what it
   * had not published and free its locks. A second signal quits at once.
   */
  protected trapSignals(): AbortSignal {
    const controller = new AbortController()
    const onSignal = (signal: NodeJS.Signals) => {
      if (controller.signal.aborted) {
        process.stderr.write(`${signal} again: quitting without cleaning up; the next run cleans up.\n`)
        process.exit(ExitCode.interrupted)
      }
      process.stderr.write(`${signal}: stopping and cleaning up (send it again to quit at once)…\n`)
      controller.abort(signal)
    }
    process.on('SIGINT', onSignal)
    process.on('SIGTERM', onSignal)
    this.signalCleanup = () => {
      process.off('SIGINT', onSignal)
      process.off('SIGTERM', onSignal)
    }
    return controller.signal
  }

  /** Prints `value` as JSON on stdout under `--json`, otherwise the human text on stdout. */
  protected async output(value: unknown, text: () => string): Promise<void> {
    await this.closeReporter()
    if (this.json) process.stdout.write(`${JSON.stringify(value, null, 2)}\n`)
    else {
      const rendered = text()
      if (rendered) process.stdout.write(`${rendered}\n`)
    }
  }

  /** Ends the command with `error`'s exit code, after the result (if any) was printed. */
  protected fail(error: DeployerError): void {
    this.renderError(error)
    process.exitCode = error.exitCode
  }

  protected override async catch(error: Error & { exitCode?: number }): Promise<unknown> {
    await this.closeReporter()
    if (!(error instanceof DeployerError)) {
      // oclif's own errors (unknown flag, missing argument) already read well and carry exit code 2.
      if ((error as { oclif?: unknown }).oclif) return super.catch(error)
      const wrapped = new DeployerError(error.message || String(error), {
        exitCode: ExitCode.failure,
        hint: 'This looks like a bug in deployer; run again with DEBUG=deployer* for the stack trace.',
        cause: error,
      })
      this.debugStack(error)
      this.fail(wrapped)
      return undefined
    }
    this.debugStack(error)
    if (this.json) {
      process.stdout.write(`${JSON.stringify({ ok: false, error: errorJson(error) }, null, 2)}\n`)
    }
    this.fail(error)
    return undefined
  }

  protected override async finally(error: Error | undefined): Promise<unknown> {
    await this.closeReporter()
    this.signalCleanup?.()
    return super.finally(error)
  }

  private renderError(error: DeployerError): void {
    process.stderr.write(`Error: ${error.message}\n`)
    if (error.hint) process.stderr.write(`Hint: ${error.hint}\n`)
  }

  private debugStack(error: Error): void {
    if (/deployer/.test(process.env.DEBUG ?? '')) process.stderr.write(`${error.stack ?? error}\n`)
  }
}
