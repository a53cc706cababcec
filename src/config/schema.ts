/**
 * deployer.yml's schema: the keys of each section, the values each may take, the one table of defaults,
 * and the readers that turn the file into a DeployConfig.
 */
import path from 'node:path'
import { isMap, isScalar, isSeq } from 'yaml'
import { readHosts, readProxyJump } from './hosts.js'
import type {
  DeployConfig,
  ExplicitSshSetting,
  HealthSettings,
  HostKeyPolicy,
  InstallSettings,
  RestartKind,
  ServerSettings,
  SharedSettings,
  SshClientKind,
  SshSettings,
  Strategy,
} from './types.js'
import {
  APP_PATTERN,
  hostPath,
  isHttpUrl,
  readDeployTo,
  readLocalPath,
  readRelativePaths,
  relativePath,
  USER_PATTERN,
} from './value-rules.js'
import {
  type Ctx,
  deref,
  describe,
  type Entry,
  type Field,
  isNull,
  offsetOf,
  optional,
  optionalSection,
  readDuration,
  readEnum,
  readInteger,
  readMap,
  readText,
  report,
  required,
  show,
} from './yaml-reader.js'

const TOP_KEYS = [
  'app',
  'source',
  'exclude',
  'deploy_to',
  'keep_releases',
  'hosts',
  'strategy',
  'concurrency',
  'batch',
  'canary_then',
  'on_failure',
  'ssh',
  'shared',
  'install',
  'server',
  'health',
] as const
const SSH_KEYS = [
  'user',
  'identity',
  'known_hosts',
  'host_key',
  'connect_timeout',
  'client',
  'config',
  'proxy_jump',
] as const
const SHARED_KEYS = ['files', 'dirs'] as const
const INSTALL_KEYS = ['command', 'lockfiles', 'vendor', 'check', 'timeout'] as const
const SERVER_KEYS = [
  'kind',
  'config',
  'pidfile',
  'control_url',
  'control_token',
  'restart',
  'start',
  'full_restart',
  'env_files',
  'restart_timeout',
] as const
const ENV_FILE_KEYS = ['path', 'loaded_by'] as const
const ENV_LOADERS = ['process_manager', 'puma'] as const
const HEALTH_KEYS = ['url', 'expect', 'timeout'] as const
/** Sections whose keys are sometimes written at the top level by mistake (`known_hosts:` instead of under `ssh:`). */
const SECTION_KEYS: Record<string, readonly string[]> = {
  ssh: SSH_KEYS,
  shared: SHARED_KEYS,
  install: INSTALL_KEYS,
  server: SERVER_KEYS,
  health: HEALTH_KEYS,
}

const STRATEGIES = ['parallel', 'rolling', 'canary'] as const satisfies readonly Strategy[]
const ON_FAILURE = ['rollback', 'stop'] as const
const CANARY_THEN = ['parallel', 'rolling'] as const
const HOST_KEY_POLICIES = ['strict', 'accept-new'] as const satisfies readonly HostKeyPolicy[]
const SSH_CLIENTS = ['builtin', 'openssh'] as const satisfies readonly SshClientKind[]
const RESTARTS = ['auto', 'phased', 'hot', 'full', 'none'] as const satisfies readonly RestartKind[]
const SERVER_KINDS = ['puma'] as const

/**
 * Every default deployer.yml leaves to deployer, in one table (the README's config reference lists the
 * same values). Defaults that depend on the host or the run (a restart deadline from the last restart,
 * install.timeout's 15 minutes) live with the code that computes them.
 */
export const DEFAULTS = {
  exclude: ['.git', 'log', 'tmp', 'node_modules'],
  keepReleases: 5,
  strategy: 'parallel',
  concurrency: 10,
  batch: 1,
  canaryThen: 'parallel',
  onFailure: 'rollback',
  port: 22,
  ssh: {
    /** Relative to the home directory. */
    knownHosts: '.ssh/known_hosts',
    hostKey: 'strict',
    connectTimeout: 10,
    /** Read ~/.ssh/config. */
    config: true,
  },
  shared: { files: [], dirs: [] },
  install: { lockfiles: ['Gemfile.lock'] },
  server: {
    kind: 'puma',
    config: 'config/puma.rb',
    pidfile: 'shared/tmp/pids/puma.pid',
    restart: 'auto',
    envFiles: [],
  },
  health: { timeout: 60 },
} as const

/** The whole file as a DeployConfig, every default filled in; problems go to `ctx`. */
export function readConfig(ctx: Ctx, file: string): DeployConfig {
  const root: Entry = { node: ctx.doc.contents, path: '', offset: offsetOf(ctx.doc.contents, 0) }
  if (isNull(root.node)) {
    report(ctx, root, 'the file is empty: it needs at least app, deploy_to and hosts')
  }
  const fields = isNull(root.node) ? undefined : readMap(ctx, root, TOP_KEYS, SECTION_KEYS)

  const appText = readText(ctx, required(ctx, fields, 'app', root))
  if (appText && !APP_PATTERN.test(appText.value)) {
    report(
      ctx,
      appText,
      `${show(appText)} must start with a letter or digit and hold only letters, digits, ., _ and -`,
    )
  }

  const sourceText = readText(ctx, optional(fields, 'source'))
  const source = sourceText ? readLocalPath(ctx, sourceText) : ctx.configDir

  const deployTo = readDeployTo(ctx, required(ctx, fields, 'deploy_to', root))
  const ssh = readSsh(ctx, optional(fields, 'ssh'))

  return {
    file,
    app: appText?.value ?? '',
    source,
    exclude: readRelativePaths(ctx, optional(fields, 'exclude')) ?? [...DEFAULTS.exclude],
    deployTo: deployTo ?? '',
    keepReleases: readInteger(ctx, optional(fields, 'keep_releases'), 1) ?? DEFAULTS.keepReleases,
    hosts: readHosts(ctx, required(ctx, fields, 'hosts', root), {
      deployTo,
      ssh: ssh.settings,
      user: ssh.user,
      port: DEFAULTS.port,
    }),
    strategy: readEnum(ctx, optional(fields, 'strategy'), STRATEGIES) ?? DEFAULTS.strategy,
    concurrency: readInteger(ctx, optional(fields, 'concurrency'), 1) ?? DEFAULTS.concurrency,
    batch: readInteger(ctx, optional(fields, 'batch'), 1) ?? DEFAULTS.batch,
    canaryThen: readEnum(ctx, optional(fields, 'canary_then'), CANARY_THEN) ?? DEFAULTS.canaryThen,
    onFailure: readEnum(ctx, optional(fields, 'on_failure'), ON_FAILURE) ?? DEFAULTS.onFailure,
    ssh: ssh.settings,
    shared: readShared(ctx, optional(fields, 'shared')),
    ...optionalSection('install', readInstall(ctx, optional(fields, 'install'))),
    ...optionalSection('server', readServer(ctx, optional(fields, 'server'))),
    ...optionalSection('health', readHealth(ctx, optional(fields, 'health'))),
  }
}

function readSsh(ctx: Ctx, field: Field | undefined): { settings: SshSettings; user?: string } {
  const fields = field ? readMap(ctx, field, SSH_KEYS) : undefined
  const identity = readText(ctx, optional(fields, 'identity'))
  const knownHosts = readText(ctx, optional(fields, 'known_hosts'))
  const user = readText(ctx, optional(fields, 'user'))
  if (user && !USER_PATTERN.test(user.value)) report(ctx, user, `${show(user)} is not a valid user name`)
  const hostKey = readEnum(ctx, optional(fields, 'host_key'), HOST_KEY_POLICIES)
  const connectTimeout = readDuration(ctx, optional(fields, 'connect_timeout'))
  const proxyJump = readProxyJump(ctx, optional(fields, 'proxy_jump'))
  const explicit: ExplicitSshSetting[] = []
  if (identity) explicit.push('identity')
  if (knownHosts) explicit.push('knownHosts')
  if (hostKey) explicit.push('hostKey')
  if (connectTimeout !== undefined) explicit.push('connectTimeout')
  return {
    settings: {
      ...(identity ? { identity: readLocalPath(ctx, identity) } : {}),
      knownHosts: knownHosts
        ? readLocalPath(ctx, knownHosts)
        : path.join(ctx.homeDir, DEFAULTS.ssh.knownHosts),
      hostKey: hostKey ?? DEFAULTS.ssh.hostKey,
      connectTimeout: connectTimeout ?? DEFAULTS.ssh.connectTimeout,
      config: readSshConfigChoice(ctx, optional(fields, 'config')),
      ...(proxyJump ? { proxyJump } : {}),
      ...optionalSection('client', readEnum(ctx, optional(fields, 'client'), SSH_CLIENTS)),
      explicit,
    },
    ...(user ? { user: user.value } : {}),
  }
}

/** `ssh.config`: true (the default: ~/.ssh/config), false, or the path of another file. */
function readSshConfigChoice(ctx: Ctx, field: Field | undefined): boolean | string {
  if (!field) return DEFAULTS.ssh.config
  const node = deref(ctx, field.node)
  if (isScalar(node) && typeof node.value === 'boolean') return node.value
  const text = readText(ctx, field)
  return text ? readLocalPath(ctx, text) : DEFAULTS.ssh.config
}

function readShared(ctx: Ctx, field: Field | undefined): SharedSettings {
  const fields = field ? readMap(ctx, field, SHARED_KEYS) : undefined
  return {
    files: readRelativePaths(ctx, optional(fields, 'files')) ?? [...DEFAULTS.shared.files],
    dirs: readRelativePaths(ctx, optional(fields, 'dirs')) ?? [...DEFAULTS.shared.dirs],
  }
}

function readInstall(ctx: Ctx, field: Field | undefined): InstallSettings | undefined {
  if (!field) return undefined
  const fields = readMap(ctx, field, INSTALL_KEYS)
  const command = readText(ctx, required(ctx, fields, 'command', field))
  const vendor = readText(ctx, optional(fields, 'vendor'))
  const vendorPath = vendor ? relativePath(ctx, vendor) : undefined
  const check = readText(ctx, optional(fields, 'check'))
  // The check stands in for the install only over dependencies reused from the previous release.
  if (check && !vendor) report(ctx, check, 'needs install.vendor: only reused dependencies are checked')
  const timeout = readDuration(ctx, optional(fields, 'timeout'))
  return {
    command: command?.value ?? '',
    lockfiles: readRelativePaths(ctx, optional(fields, 'lockfiles')) ?? [...DEFAULTS.install.lockfiles],
    ...(vendorPath ? { vendor: vendorPath } : {}),
    ...(check?.value ? { check: check.value } : {}),
    ...(timeout === undefined ? {} : { timeout }),
    ...(command?.fromEnv ? { commandAsWritten: command.raw } : {}),
    ...(check?.fromEnv ? { checkAsWritten: check.raw } : {}),
  }
}

function readServer(ctx: Ctx, field: Field | undefined): ServerSettings | undefined {
  if (!field) return undefined
  const fields = readMap(ctx, field, SERVER_KEYS)
  const config = readText(ctx, optional(fields, 'config'))
  const pidfile = readText(ctx, optional(fields, 'pidfile'))
  const controlUrl = readText(ctx, optional(fields, 'control_url'))
  if (controlUrl && !/^(unix|tcp|ssl):\/\/./.test(controlUrl.value)) {
    report(
      ctx,
      controlUrl,
      `${show(controlUrl)} must be a Puma control URL: unix://PATH, tcp://HOST:PORT or ssl://…`,
    )
  }
  const controlToken = readText(ctx, optional(fields, 'control_token'))
  const start = readText(ctx, optional(fields, 'start'))
  const fullRestart = readText(ctx, optional(fields, 'full_restart'))
  const envFiles = readEnvFiles(ctx, optional(fields, 'env_files'))
  const restartTimeout = readDuration(ctx, optional(fields, 'restart_timeout'))
  return {
    kind: readEnum(ctx, optional(fields, 'kind'), SERVER_KINDS) ?? DEFAULTS.server.kind,
    config: (config && relativePath(ctx, config)) ?? DEFAULTS.server.config,
    pidfile: (pidfile && hostPath(ctx, pidfile)) ?? DEFAULTS.server.pidfile,
    ...(controlUrl ? { controlUrl: controlUrl.value } : {}),
    ...(controlToken ? { controlToken: controlToken.value } : {}),
    restart: readEnum(ctx, optional(fields, 'restart'), RESTARTS) ?? DEFAULTS.server.restart,
    ...(start ? { start: start.value } : {}),
    ...(fullRestart ? { fullRestart: fullRestart.value } : {}),
    envFiles: (envFiles ?? DEFAULTS.server.envFiles)
      .filter((file) => file.loadedBy === 'process_manager')
      .map((file) => file.path),
    pumaEnvFiles: (envFiles ?? DEFAULTS.server.envFiles)
      .filter((file) => file.loadedBy === 'puma')
      .map((file) => file.path),
    ...(restartTimeout === undefined ? {} : { restartTimeout }),
  }
}

/**
 * `server.env_files`: each a path (the process manager loads it: systemd EnvironmentFile, the start
 * command) or `{ path, loaded_by: puma }` for a file puma.rb loads itself (dotenv), which a hot restart
 * re-reads. A change to the first kind needs a full restart, to the second a hot one.
 */
function readEnvFiles(
  ctx: Ctx,
  field: Field | undefined,
): { path: string; loadedBy: (typeof ENV_LOADERS)[number] }[] | undefined {
  if (!field) return undefined
  const node = deref(ctx, field.node)
  if (!isSeq(node)) {
    report(ctx, field, `must be a list, not ${describe(node)} (write [a, b] or one "- item" per line)`)
    return undefined
  }
  return node.items.map((item, index) => {
    const entry = { node: item, path: `${field.path}[${index}]`, offset: offsetOf(item, field.offset) }
    if (!isMap(deref(ctx, item))) {
      const text = readText(ctx, entry)
      return { path: (text && hostPath(ctx, text)) ?? '', loadedBy: 'process_manager' as const }
    }
    const fields = readMap(ctx, entry, ENV_FILE_KEYS)
    const text = readText(ctx, required(ctx, fields, 'path', entry))
    return {
      path: (text && hostPath(ctx, text)) ?? '',
      loadedBy: readEnum(ctx, optional(fields, 'loaded_by'), ENV_LOADERS) ?? 'process_manager',
    }
  })
}

function readHealth(ctx: Ctx, field: Field | undefined): HealthSettings | undefined {
  if (!field) return undefined
  const fields = readMap(ctx, field, HEALTH_KEYS)
  const url = readText(ctx, required(ctx, fields, 'url', field))
  if (url && !isHttpUrl(url.value)) report(ctx, url, `${show(url)} must be an http:// or https:// URL`)
  const expect = readText(ctx, optional(fields, 'expect'))
  return {
    url: url?.value ?? '',
    ...(url?.fromEnv ? { urlAsWritten: url.raw } : {}),
    ...(expect ? { expect: expect.value } : {}),
    timeout: readDuration(ctx, optional(fields, 'timeout')) ?? DEFAULTS.health.timeout,
  }
}
