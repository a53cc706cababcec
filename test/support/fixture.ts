import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { chmod, chown, lstat, mkdir, mkdtemp, readdir, readFile, readlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { TestSshd } from './sshd.js'

const run = promisify(execFile)

/** The unprivileged user integration tests deploy as (root's shell files are slow and unrealistic). */
export const DEPLOY_USER = 'deployer-test'

export async function userIds(user: string): Promise<{ uid: number; gid: number }> {
  const [{ stdout: uid }, { stdout: gid }] = await Promise.all([
    run('id', ['-u', user]),
    run('id', ['-g', user]),
  ])
  return { uid: Number(uid.trim()), gid: Number(gid.trim()) }
}

/** Creates a system user without a home (for processes of another user on the host) unless it exists. */
export async function ensureUser(name: string): Promise<{ uid: number; gid: number }> {
  await run('id', ['-u', name]).catch(() => run('useradd', ['-M', '-s', '/bin/sh', name]))
  return userIds(name)
}

/** A scratch directory for one test: the source tree, the config, and a deploy_to owned by the deploy user. */
export interface Workspace {
  dir: string
  source: string
  deployTo: string
  config: string
}

export async function makeWorkspace(owner: string): Promise<Workspace> {
  const dir = await mkdtemp(join(tmpdir(), 'deployer-it-'))
  await chmod(dir, 0o755)
  const deployTo = join(dir, 'srv', 'app')
  await mkdir(deployTo, { recursive: true })
  const { uid, gid } = await userIds(owner)
  await chown(join(dir, 'srv'), uid, gid)
  await chown(deployTo, uid, gid)
  const source = join(dir, 'source')
  await mkdir(source)
  return { dir, source, deployTo, config: join(dir, 'deployer.yml') }
}

/** Writes a small app whose content depends on `version`, with a nested dir, an executable and a link. */
export async function writeApp(source: string, version: string): Promise<void> {
  await mkdir(join(source, 'app'), { recursive: true })
  await mkdir(join(source, 'bin'), { recursive: true })
  await mkdir(join(source, 'log'), { recursive: true })
  await writeFile(join(source, 'config.ru'), `run ->(env) { [200, {}, ["version ${version}"]] }\n`)
  await writeFile(join(source, 'app', 'version.rb'), `VERSION = "${version}"\n`)
  await writeFile(join(source, 'bin', 'start'), '#!/bin/sh\necho start\n')
  await chmod(join(source, 'bin', 'start'), 0o755)
  await writeFile(join(source, 'log', 'dev.log'), 'local noise that must not be uploaded\n')
  const link = join(source, 'version-link.rb')
  await lstat(link).catch(async () => {
    const { symlink } = await import('node:fs/promises')
    await symlink('app/version.rb', link)
  })
}

export interface ConfigOptions {
  install?: string
  shared?: { dirs?: string[]; files?: string[] }
  keep?: number
  hostKey?: 'strict' | 'accept-new'
  knownHosts?: string
  port?: number
  /** `ssh.client`; absent leaves the key out (the built-in client). */
  client?: 'builtin' | 'openssh'
}

/** Writes a deployer.yml that deploys `workspace.source` to the test sshd as the deploy user. */
export async function writeConfig(
  workspace: Workspace,
  sshd: TestSshd,
  options: ConfigOptions = {},
): Promise<void> {
  const lines = [
    'app: itest',
    `source: ${JSON.stringify(workspace.source)}`,
    'exclude: [.git, log, tmp]',
    `deploy_to: ${JSON.stringify(workspace.deployTo)}`,
    `keep_releases: ${options.keep ?? 5}`,
    'hosts:',
    `  - { name: it, ssh: ${JSON.stringify(`${sshd.user}@127.0.0.1:${options.port ?? sshd.port}`)} }`,
    'ssh:',
    `  identity: ${JSON.stringify(sshd.clientKeyPath)}`,
    `  known_hosts: ${JSON.stringify(options.knownHosts ?? sshd.knownHostsPath)}`,
    `  host_key: ${options.hostKey ?? 'strict'}`,
  ]
  if (options.client) lines.push(`  client: ${options.client}`)
  if (options.shared) {
    lines.push(
      'shared:',
      `  dirs: ${JSON.stringify(options.shared.dirs ?? [])}`,
      `  files: ${JSON.stringify(options.shared.files ?? [])}`,
    )
  }
  if (options.install) lines.push('install:', `  command: ${JSON.stringify(options.install)}`)
  await writeFile(workspace.config, `${lines.join('\n')}\n`)
}

/** Every entry below `root` with what identifies it: inode, mode, size, and content hash or link target. */
export async function snapshotTree(root: string): Promise<Map<string, string>> {
  const entries = new Map<string, string>()
  async function walk(relative: string): Promise<void> {
    const absolute = join(root, relative)
    const stat = await lstat(absolute)
    let identity = `ino=${stat.ino} mode=${stat.mode.toString(8)} size=${stat.size} mtime=${stat.mtimeMs}`
    if (stat.isSymbolicLink()) identity += ` -> ${await readlink(absolute)}`
    else if (stat.isFile())
      identity += ` sha256=${createHash('sha256')
        .update(await readFile(absolute))
        .digest('hex')}`
    entries.set(relative || '.', identity)
    if (stat.isDirectory()) {
      for (const name of (await readdir(absolute)).sort()) await walk(relative ? `${relative}/${name}` : name)
    }
  }
  await walk('')
  return entries
}

/** Names in a directory, sorted; empty when it does not exist. */
export async function listDir(path: string): Promise<string[]> {
  return (await readdir(path).catch(() => [])).sort()
}
