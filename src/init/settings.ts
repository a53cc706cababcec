import path from 'node:path'
import { stringify } from 'yaml'
import { APP_PATTERN, deployToProblem, parseHostSpec, USER_PATTERN } from '../config/load.js'
import { DeployerError, ExitCode } from '../errors.js'

/** What `deployer init` can write besides deployer.yml, which it always writes. */
export type InitPart = 'puma' | 'systemd' | 'github-actions'

/** Every part, in the order files are listed. */
export const INIT_PARTS: readonly InitPart[] = ['puma', 'systemd', 'github-actions']

/** When the package names no GitHub repository, the workflow names a placeholder the user replaces. */
export const DEFAULT_ACTION = 'OWNER/deployer@v1'

/** package.json's fields that say where deployer's own GitHub Action lives. */
export interface PackageRef {
  version?: string
  repository?: string | { url?: string }
}

/**
 * The action `init --github-actions` writes when --action is not given: the repository package.json
 * names, at the tag of the running version (`deployer-cli/deployer@v0.1.0`), so the workflow is pinned
 * to the deployer that wrote it. Undefined when the repository is not on GitHub or there is no version.
 */
export function defaultActionRef(pkg: PackageRef): string | undefined {
  const url = typeof pkg.repository === 'string' ? pkg.repository : pkg.repository?.url
  if (!url || !pkg.version) return undefined
  // github:owner/repo, owner/repo (npm's shorthands), https://github.com/owner/repo(.git), git@github.com:owner/repo.git
  const match =
    /^(?:github:)?([A-Za-z0-9_.-]+)\/([A-Za-z0-9_.-]+)$/.exec(url) ??
    /^(?:git\+)?(?:https?|ssh|git):\/\/(?:[^@/]+@)?github\.com\/([A-Za-z0-9_.-]+)\/([A-Za-z0-9_.-]+?)(?:\.git)?\/?$/.exec(
      url,
    ) ??
    /^git@github\.com:([A-Za-z0-9_.-]+)\/([A-Za-z0-9_.-]+?)(?:\.git)?$/.exec(url)
  if (!match) return undefined
  return `${match[1]}/${match[2]}@v${pkg.version}`
}

/** The flags of `deployer init`, before defaults and validation. */
export interface InitRequest {
  /** The target directory's base name: the default app name. */
  dirName: string
  app?: string
  deployTo?: string
  /** `--host`, as written: user@host[:port], [ipv6]:port or local. */
  hosts: readonly string[]
  user?: string
  port: number
  action?: string
  /** Where deployer.yml goes, relative to the target directory. */
  config: string
  parts: readonly InitPart[]
}

/** Validated settings with every default filled in: all the templates and the next steps are made from these. */
export interface InitSettings {
  app: string
  deployTo: string
  hosts: string[]
  /** No `--host` was given: `hosts` are examples the user must replace. */
  exampleHosts: boolean
  /** The user deployer logs in as (ssh.user) and Puma runs as (the unit's User=). */
  user: string
  /** Puma's TCP port on 127.0.0.1, shared by puma.rb, the socket unit and the health URL. */
  port: number
  /** The GitHub Action the workflow uses (`owner/repo@ref`). */
  action: string
  /** deployer.yml's path relative to the target directory, POSIX separators. */
  config: string
  parts: InitPart[]
}

/*
 * Values are written as they are into YAML, Ruby strings and systemd units, so each is limited to characters
 * that mean nothing special in any of them: no quotes, #, %, $, \, spaces or :<space>. Paths outside that
 * set are rare on servers; such a user edits the written files instead.
 */
const SAFE_PATH = /^[A-Za-z0-9/._-]+$/
const SAFE_CONFIG = /^[A-Za-z0-9_.][A-Za-z0-9/._-]*$/
// owner/repo[/path]@ref, or a local action (./path) in the same repository.
const ACTION_PATTERN =
  /^(?:\.\/[A-Za-z0-9/._-]*|[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+(?:\/[A-Za-z0-9/._-]+)?@[A-Za-z0-9/._-]+)$/

/**
 * Fills in defaults (app from the directory name, deploy_to /srv/APP, example hosts, the user of the first
 * host or `deploy`) and checks every value. Throws one usage DeployerError listing every problem.
 */
export function resolveInitSettings(request: InitRequest): InitSettings {
  const problems: string[] = []
  const app = request.app ?? defaultAppName(request.dirName)
  if (!APP_PATTERN.test(app)) {
    problems.push(
      `--app ${JSON.stringify(app)} must start with a letter or digit and hold only letters, digits, ., _ and -.`,
    )
  }

  const deployTo = request.deployTo ?? `/srv/${app}`
  const deployToIssue =
    deployToProblem(deployTo) ??
    (SAFE_PATH.test(deployTo) ? undefined : 'may hold only letters, digits, /, ., _ and - here')
  if (deployToIssue) problems.push(`--deploy-to ${JSON.stringify(deployTo)} ${deployToIssue}.`)

  let firstUser: string | undefined
  for (const host of request.hosts) {
    const parsed = parseHostSpec(host)
    if (!parsed.ok) problems.push(`--host ${JSON.stringify(host)} ${parsed.problem}.`)
    else if (firstUser === undefined && parsed.spec.kind === 'ssh') firstUser = parsed.spec.user
  }

  const user = request.user ?? firstUser ?? 'deploy'
  if (!USER_PATTERN.test(user)) problems.push(`--user ${JSON.stringify(user)} is not a valid user name.`)

  if (!Number.isInteger(request.port) || request.port < 1 || request.port > 65535) {
    problems.push(`--port ${request.port} must be a whole number from 1 to 65535.`)
  }

  const action = request.action ?? DEFAULT_ACTION
  if (!ACTION_PATTERN.test(action)) {
    problems.push(`--action ${JSON.stringify(action)} must be owner/repo@ref or ./path.`)
  }

  const configIssue = configPathProblem(request.config)
  if (configIssue) problems.push(`--config ${JSON.stringify(request.config)} ${configIssue}.`)

  if (problems.length > 0) {
    throw new DeployerError(`deployer init cannot use these values:\n  ${problems.join('\n  ')}`, {
      exitCode: ExitCode.usage,
      hint: 'Correct the flags above; `deployer init --help` describes each one.',
    })
  }
  const exampleHosts = request.hosts.length === 0
  return {
    app,
    deployTo,
    hosts: exampleHosts ? [`${user}@web1.example.com`, `${user}@web2.example.com:2222`] : [...request.hosts],
    exampleHosts,
    user,
    port: request.port,
    action,
    config: path.posix.normalize(request.config),
    parts: INIT_PARTS.filter((part) => request.parts.includes(part)),
  }
}

/** The directory's name made into an app name: `My App` -> `my-app`; `app` when nothing is left. */
export function defaultAppName(dirName: string): string {
  const name = dirName
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/^[^a-z0-9]+/, '')
    .replace(/-+$/, '')
  return name === '' ? 'app' : name
}

/** The name systemd knows the units by: `shop-puma.service` and `shop-puma.socket`. */
export function unitName(app: string): string {
  return `${app}-puma`
}

/**
 * The values for the templates' placeholders. Most are the validated settings as they are; `hosts` is a
 * YAML block of list items and `start` a YAML scalar, both quoted by the YAML library where needed.
 */
export function templateValues(settings: InitSettings): Record<string, string> {
  const systemd = settings.parts.includes('systemd')
  const envFile = `/etc/${settings.app}/env`
  // Without systemd, deployer's start command loads the same env file the unit would, so Puma gets
  // PUMA_CONTROL_TOKEN either way. `set -a` exports what the file sets.
  const start = systemd
    ? `sudo systemctl start ${unitName(settings.app)}.service`
    : `set -a; [ ! -r ${envFile} ] || . ${envFile}; set +a; exec bundle exec puma -C config/puma.rb`
  return {
    app: settings.app,
    deploy_to: settings.deployTo,
    user: settings.user,
    port: String(settings.port),
    action: settings.action,
    config: settings.config,
    hosts: settings.hosts.map((host) => `  - ${yamlScalar(host)}`).join('\n'),
    start: yamlScalar(start),
    // full_restart through systemctl only when the unit exists; otherwise the line stays a comment.
    unless_systemd: systemd ? '' : '# ',
  }
}

/** `value` as a one-line YAML scalar that reads back as the same string: plain when that is safe, else quoted. */
export function yamlScalar(value: string): string {
  return stringify(value, { lineWidth: 0 }).trimEnd()
}

function configPathProblem(config: string): string | undefined {
  if (!SAFE_CONFIG.test(config)) return 'may hold only letters, digits, /, ., _ and -, and not start with -'
  if (config.split('/').includes('..')) return 'must stay inside --dir: no .. segments'
  const normal = path.posix.normalize(config)
  if (normal === '.' || normal.endsWith('/')) return 'must name a file'
  return undefined
}
