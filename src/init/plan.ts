import { DeployerError, ExitCode } from '../errors.js'
import { type InitSettings, unitName } from './settings.js'

/** One file `deployer init` writes: which template, and where it goes. */
export interface InitFile {
  /** Path under the package's templates/ directory. */
  template: string
  /** Path relative to the target directory, POSIX separators. */
  path: string
}

/**
 * What happens to one file: `create` a new file, `overwrite` an existing one (only with --force), or
 * `refuse` because it exists and --force was not given.
 */
export type WriteStatus = 'create' | 'overwrite' | 'refuse'

export interface PlannedWrite extends InitFile {
  status: WriteStatus
}

/** The files the settings ask for: deployer.yml always, the others per part. */
export function initFiles(settings: InitSettings): InitFile[] {
  const unit = unitName(settings.app)
  const files: InitFile[] = [{ template: 'deployer.yml', path: settings.config }]
  if (settings.parts.includes('puma')) files.push({ template: 'puma.rb', path: 'config/puma.rb' })
  if (settings.parts.includes('systemd')) {
    files.push(
      { template: 'systemd/puma.service', path: `config/systemd/${unit}.service` },
      { template: 'systemd/puma.socket', path: `config/systemd/${unit}.socket` },
    )
  }
  if (settings.parts.includes('github-actions')) {
    files.push({ template: 'github/deploy.yml', path: '.github/workflows/deploy.yml' })
  }
  return files
}

/**
 * Decides each file's fate from the paths that already exist. Nothing is written unless every file may
 * be: a run that refuses one file refuses all, so it loses nothing.
 */
export function planWrites(
  files: readonly InitFile[],
  existing: ReadonlySet<string>,
  force: boolean,
): PlannedWrite[] {
  return files.map((file) => ({
    ...file,
    status: !existing.has(file.path) ? 'create' : force ? 'overwrite' : 'refuse',
  }))
}

/** The error for a plan that refuses files; undefined when every file may be written. */
export function refusalError(plan: readonly PlannedWrite[], dir: string): DeployerError | undefined {
  const refused = plan.filter((file) => file.status === 'refuse').map((file) => file.path)
  if (refused.length === 0) return undefined
  const files = refused.length === 1 ? `a file that exists` : `${refused.length} files that exist`
  return new DeployerError(
    `deployer init would overwrite ${files} in ${dir}: ${refused.join(', ')}. Nothing was written.`,
    {
      exitCode: ExitCode.usage,
      hint: 'Pass --force to overwrite them, or move them away first; --dry-run lists what would be written.',
    },
  )
}

/** What the user does after init, in order; commands are written out in full. */
export function nextSteps(settings: InitSettings): string[] {
  const unit = unitName(settings.app)
  const envFile = `/etc/${settings.app}/env`
  const configFlag = settings.config === 'deployer.yml' ? '' : ` --config ${settings.config}`
  const steps: string[] = []
  steps.push(
    settings.exampleHosts
      ? `Edit ${settings.config}: replace the example hosts under hosts: with your servers.`
      : `Review ${settings.config}: hosts, shared files, install and server settings.`,
  )
  steps.push(
    `Choose a control token for Puma: put PUMA_CONTROL_TOKEN=<token> in ${envFile} on every host (readable by ${settings.user} only), and export the same PUMA_CONTROL_TOKEN wherever deployer runs.`,
  )
  if (!settings.parts.includes('puma')) {
    steps.push(
      `Check that the app's config/puma.rb sets directory "${settings.deployTo}/current" and the pidfile and control URL in ${settings.config}, or run deployer init --puma.`,
    )
  }
  if (settings.parts.includes('systemd')) {
    steps.push(
      `Copy config/systemd/${unit}.service and ${unit}.socket to /etc/systemd/system/ on every host and run sudo systemctl daemon-reload && sudo systemctl enable ${unit}.socket ${unit}.service there. deployer starts and restarts Puma through them: let ${settings.user} run sudo systemctl start and restart ${unit}.service without a password.`,
    )
  }
  if (settings.parts.includes('github-actions')) {
    const owner = settings.action.startsWith('OWNER/')
      ? ' Replace OWNER in its uses: line with the owner of the deployer action.'
      : ''
    steps.push(
      `In the GitHub repository, add the secrets DEPLOY_SSH_KEY, DEPLOY_KNOWN_HOSTS and PUMA_CONTROL_TOKEN used by .github/workflows/deploy.yml.${owner}`,
    )
  }
  steps.push(
    `Run deployer check${configFlag} to test SSH, deploy_to and Puma on every host without changing anything.`,
  )
  steps.push(`Run deployer release${configFlag} for the first release.`)
  return steps
}
