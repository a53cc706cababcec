import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { chmod, chown, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer, connect as netConnect } from 'node:net'
import { tmpdir, userInfo } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { HostConfig, SshSettings } from '../../src/config/types.js'
import { waitFor } from './wait.js'

const run = promisify(execFile)

const SSHD = '/usr/sbin/sshd'
const HOSTNAME = '127.0.0.1'
/** sshd re-execs itself and needs its privilege-separation directory; the service unit normally makes it. */
const PRIVSEP_DIR = '/run/sshd'
// Another process can take the free port between our probe and sshd's bind; a few retries cover that.
const BIND_ATTEMPTS = 3

/** Host key types `startSshd` can generate. */
export type HostKeyType = 'ed25519' | 'ecdsa' | 'rsa'

export interface SshdOptions {
  /** The login user; defaults to the user running the tests (root in CI). */
  user?: string
  /** Create `user` with `useradd -m` if it does not exist and unlock it for key logins. Needs root. */
  createUser?: boolean
  /** Host keys to generate, each recorded in `knownHostsPath`. Default: `['ed25519']`. */
  hostKeyTypes?: HostKeyType[]
  /**
   * Authorize this private key (with its `.pub` beside it) instead of generating one: the servers of a
   * test fleet accept the one identity deployer.yml names.
   */
  clientKeyPath?: string
  /** The type of the client key generated when `clientKeyPath` is not given. Default: `ed25519`. */
  clientKeyType?: HostKeyType
  /** Lines appended to sshd_config (`AllowTcpForwarding yes`, `PubkeyAcceptedAlgorithms ...`, a `Match` block). */
  extraConfig?: string[]
  /**
   * Run sshd inside this network namespace (which the test created) with `ip netns exec`, listening on
   * `listenAddress` there: reachable only from inside it (through a jump host), or over a veth pair.
   */
  netns?: string
  /** Where sshd listens. Default: 127.0.0.1 (of its network namespace). */
  listenAddress?: string
  /** Sign every host key with this CA private key (`ssh-keygen -h`) and serve the certificates (HostCertificate). */
  hostCaKeyPath?: string
  /** The login shell `createUser` gives the user (also set on an existing one). Default /bin/bash. */
  shell?: string
  /**
   * sshd_config keywords replacing the defaults below or added to them, e.g. `{ MaxSessions: '1' }` for a
   * server that allows one channel per connection (sshd takes the first value it reads for a keyword).
   */
  settings?: Record<string, string>
}

/** What a HostConfig for the test server may override; `deployTo` has no sensible default. */
export type HostConfigOverrides = Partial<Omit<HostConfig, 'ssh'>> & {
  deployTo: string
  ssh?: Partial<SshSettings>
}

/** A running private sshd on 127.0.0.1 and everything needed to log in to it. */
export interface TestSshd {
  port: number
  hostname: string
  user: string
  /** The temp dir holding config, keys, log and pidfile; removed by `stop()`. */
  dir: string
  /** Private key (unencrypted ed25519) whose public half is authorized for `user`. */
  clientKeyPath: string
  /** A known_hosts file with a `[127.0.0.1]:PORT type key` line for each host key. */
  knownHostsPath: string
  /** The first host key as `type base64`, as in known_hosts. */
  hostPublicKey: string
  /** Where sshd listens (127.0.0.1 unless `listenAddress` said otherwise). */
  listenAddress: string
  /** Every host key as `type base64`, keyed by the generated type. */
  hostPublicKeys: Partial<Record<HostKeyType, string>>
  /** sshd's own log (`-E`), useful when a test fails. */
  logPath: string
  /** The listening sshd's pid (a new one after `restart()`). */
  readonly pid: number
  /** A HostConfig for this server: kind ssh, its user, address, client key and known_hosts, strict host keys. */
  hostConfig(overrides: HostConfigOverrides): HostConfig
  /** Lets another user log in with `clientKeyPath` (create it first, e.g. with `ensureUser`). */
  authorize(user: string): Promise<void>
  /** Stops this sshd (only the process it started, by pid), waits for it to exit and removes `dir`. */
  stop(): Promise<void>
  /**
   * The host goes away: stops the listener and SIGKILLs the sessions it serves, so open connections
   * drop and new ones are refused. Keeps `dir`, so `restart()` can bring it back.
   */
  shutDown(): Promise<void>
  /**
   * Starts this sshd again after `shutDown()`: the same port, keys and config, so known_hosts still
   * matches. Does nothing while it runs.
   */
  restart(): Promise<void>
}

/**
 * Starts a private OpenSSH server on a free port of 127.0.0.1 with keys generated now (nothing committed),
 * and resolves once the port accepts connections.
 */
export async function startSshd(options: SshdOptions = {}): Promise<TestSshd> {
  const user = options.user ?? userInfo().username
  const hostKeyTypes = options.hostKeyTypes ?? ['ed25519']
  const listenAddress = options.listenAddress ?? HOSTNAME
  if (options.createUser) await ensureUser(user, options.shell)

  const dir = await mkdtemp(join(tmpdir(), 'deployer-sshd-'))
  try {
    // sshd reads authorized_keys with the user's rights, so a non-root user must be able to reach it.
    await chmod(dir, 0o755)
    const hostPublicKeys: Partial<Record<HostKeyType, string>> = {}
    const hostKeyPaths: string[] = []
    for (const type of hostKeyTypes) {
      const path = join(dir, `ssh_host_${type}_key`)
      await generateKey(path, type)
      hostKeyPaths.push(path)
      hostPublicKeys[type] = withoutComment(await readFile(`${path}.pub`, 'utf8'))
      if (options.hostCaKeyPath) {
        await run('ssh-keygen', [
          '-q',
          '-s',
          options.hostCaKeyPath,
          '-I',
          `deployer-test-${type}`,
          '-h',
          '-n',
          listenAddress,
          `${path}.pub`,
        ])
      }
    }
    const certificates = options.hostCaKeyPath
      ? hostKeyPaths.map((path) => `HostCertificate ${path}-cert.pub`)
      : []
    const clientKeyType = options.clientKeyType ?? 'ed25519'
    const clientKeyPath = options.clientKeyPath ?? join(dir, `client_${clientKeyType}`)
    if (!options.clientKeyPath) await generateKey(clientKeyPath, clientKeyType)
    const publicKey = await readFile(`${clientKeyPath}.pub`, 'utf8')
    await mkdir(join(dir, 'authorized_keys'), { mode: 0o755 })
    await writeAuthorizedKeys(dir, user, publicKey)
    await mkdir(PRIVSEP_DIR, { recursive: true, mode: 0o755 })

    const server: ServerSetup = {
      dir,
      hostKeyPaths,
      listenAddress,
      extraConfig: [...certificates, ...(options.extraConfig ?? [])],
      ...(options.netns ? { netns: options.netns } : {}),
      ...(options.settings ? { settings: options.settings } : {}),
    }
    const launched = await launch(server)
    const port = launched.port
    let child = launched.child
    const knownHostsPath = join(dir, 'known_hosts')
    const knownHostsLines = Object.values(hostPublicKeys).map((key) => `[${listenAddress}]:${port} ${key}\n`)
    await writeFile(knownHostsPath, knownHostsLines.join(''), { mode: 0o600 })

    let stopped: Promise<void> | undefined
    return {
      port,
      hostname: listenAddress,
      listenAddress,
      user,
      dir,
      clientKeyPath,
      knownHostsPath,
      hostPublicKey: Object.values(hostPublicKeys)[0]!,
      hostPublicKeys,
      logPath: join(dir, 'sshd.log'),
      get pid() {
        return child.pid!
      },
      authorize(other) {
        return writeAuthorizedKeys(dir, other, publicKey)
      },
      hostConfig(overrides) {
        const { ssh, ...rest } = overrides
        return {
          name: `sshd-${port}`,
          kind: 'ssh',
          user,
          hostname: listenAddress,
          port,
          ...rest,
          ssh: {
            identity: clientKeyPath,
            knownHosts: knownHostsPath,
            hostKey: 'strict',
            connectTimeout: 10,
            ...ssh,
          },
        }
      },
      stop() {
        stopped ??= (async () => {
          await stopProcess(child)
          await rm(dir, { recursive: true, force: true })
        })()
        return stopped
      },
      async shutDown() {
        // Sessions outlive the listener's TERM: list them first, then kill them too.
        const sessions = await sessionProcesses({ pid: child.pid! })
        await stopProcess(child)
        for (const pid of sessions) killQuietly(pid)
      },
      async restart() {
        if (child.exitCode === null && child.signalCode === null) return
        child = (await launch(server, port)).child
      },
    }
  } catch (error) {
    await rm(dir, { recursive: true, force: true })
    throw error
  }
}

/** What a test sshd is started from. */
interface ServerSetup {
  dir: string
  hostKeyPaths: string[]
  listenAddress: string
  extraConfig: string[]
  netns?: string
  /** sshd_config keywords replacing the defaults or added to them (SshdOptions.settings). */
  settings?: Record<string, string>
}

/** Starts sshd on `fixedPort`, or on a free port when none is given. */
async function launch(
  server: ServerSetup,
  fixedPort?: number,
): Promise<{ child: ChildProcess; port: number }> {
  const { dir } = server
  const configPath = join(dir, 'sshd_config')
  const logPath = join(dir, 'sshd.log')
  for (let attempt = 1; ; attempt++) {
    const port = fixedPort ?? (await findFreePort())
    await writeFile(configPath, sshdConfig(server, port))
    try {
      await run(SSHD, ['-t', '-f', configPath])
    } catch (error) {
      throw new Error(`sshd -t rejected ${configPath}: ${(error as { stderr?: string }).stderr ?? error}`)
    }
    await writeFile(logPath, '')
    const sshdArgs = [SSHD, '-D', '-f', configPath, '-E', logPath]
    // `ip netns exec` execs sshd itself, so the child's pid is sshd's and stopping it by pid still works.
    const child = server.netns
      ? spawn('ip', ['netns', 'exec', server.netns, ...sshdArgs], { stdio: 'ignore' })
      : spawn(sshdArgs[0]!, sshdArgs.slice(1), { stdio: 'ignore' })
    let exited = false
    child.once('exit', () => {
      exited = true
    })
    // Inside a namespace this process cannot connect; sshd's own log says when it listens.
    const listening = async () =>
      server.netns
        ? (await readFile(logPath, 'utf8')).includes(
            `Server listening on ${server.listenAddress} port ${port}.`,
          )
        : acceptsConnections(port, server.listenAddress)
    await waitFor(async () => exited || (await listening()), {
      what: `sshd to accept connections on ${server.listenAddress}:${port}`,
      timeoutMs: 10_000,
    }).catch(async (error: Error) => {
      await stopProcess(child)
      throw new Error(`${error.message}\nsshd log:\n${await readFile(logPath, 'utf8')}`)
    })
    if (!exited) return { child, port }
    const log = await readFile(logPath, 'utf8')
    if (fixedPort === undefined && attempt < BIND_ATTEMPTS && /Address already in use/.test(log)) continue
    throw new Error(`sshd exited at start (exit ${child.exitCode ?? child.signalCode}); its log:\n${log}`)
  }
}

function sshdConfig(server: ServerSetup, port: number): string {
  const { dir, hostKeyPaths } = server
  const settings = server.settings ?? {}
  const defaults = [
    `Port ${port}`,
    `ListenAddress ${server.listenAddress}`,
    ...hostKeyPaths.map((path) => `HostKey ${path}`),
    `PidFile ${join(dir, 'sshd.pid')}`,
    `AuthorizedKeysFile ${join(dir, 'authorized_keys')}/%u`,
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'UsePAM no',
    // Keys under a temp dir fail the ownership/mode checks sshd applies to home directories.
    'StrictModes no',
    'PermitRootLogin prohibit-password',
    // Tests run many commands at once over one connection (OpenSSH's default is 10).
    'MaxSessions 50',
    'MaxStartups 50:30:100',
    'Subsystem sftp internal-sftp',
    'PrintMotd no',
    'LogLevel VERBOSE',
  ]
  const replaced = new Set(Object.keys(settings).map((key) => key.toLowerCase()))
  return [
    ...defaults.filter((line) => !replaced.has(line.split(' ')[0]!.toLowerCase())),
    ...Object.entries(settings).map(([key, value]) => `${key} ${value}`),
    // Last: a Match block in extraConfig holds every line after it.
    ...server.extraConfig,
    '',
  ].join('\n')
}

async function writeAuthorizedKeys(dir: string, user: string, publicKey: string): Promise<void> {
  const file = join(dir, 'authorized_keys', user)
  await writeFile(file, publicKey, { mode: 0o644 })
  const { uid, gid } = await userIds(user)
  if (uid !== process.getuid?.()) await chown(file, uid, gid)
}

/** Creates `user` with `useradd -m` unless it exists, with `shell` as its login shell, unlocked for key logins. */
export async function ensureUser(user: string, shell = '/bin/bash'): Promise<void> {
  // Parallel test runs create the same users: `id` can miss a user another run is adding right now.
  const created = await run('useradd', ['-m', '-s', shell, user]).then(
    () => true,
    (error: { stderr?: string }) => {
      if (!/already exists/.test(error.stderr ?? '')) throw error
      return false
    },
  )
  // usermod locks /etc/passwd, which parallel test runs also touch: only when the shell differs.
  const current = created ? shell : (await run('getent', ['passwd', user])).stdout.trim().split(':')[6]
  if (current !== shell) await run('usermod', ['-s', shell, user])
  // useradd leaves the password field locked ('!'); with UsePAM no, sshd then refuses even key logins.
  await run('usermod', ['-p', '*', user])
}

async function userIds(user: string): Promise<{ uid: number; gid: number }> {
  const uid = Number((await run('id', ['-u', user])).stdout.trim())
  const gid = Number((await run('id', ['-g', user])).stdout.trim())
  return { uid, gid }
}

async function generateKey(path: string, type: HostKeyType): Promise<void> {
  await run('ssh-keygen', ['-q', '-t', type, '-N', '', '-C', `deployer-test-${type}`, '-f', path])
}

function withoutComment(publicKeyLine: string): string {
  return publicKeyLine.trim().split(/\s+/).slice(0, 2).join(' ')
}

/**
 * The sshd processes serving this server's connections (per-connection monitors and their unprivileged
 * children; not the listener, not the users' commands). SIGKILL on them drops those connections, which is
 * how tests simulate a network failure while touching only processes this sshd started.
 */
export async function sessionProcesses(sshd: Pick<TestSshd, 'pid'>): Promise<number[]> {
  const processes = await listProcesses()
  const sessions: number[] = []
  const parents = [sshd.pid]
  while (parents.length > 0) {
    const parent = parents.pop()!
    for (const candidate of processes) {
      if (candidate.ppid !== parent || candidate.comm !== 'sshd') continue
      sessions.push(candidate.pid)
      parents.push(candidate.pid)
    }
  }
  return sessions
}

async function listProcesses(): Promise<Array<{ pid: number; ppid: number; comm: string }>> {
  const processes: Array<{ pid: number; ppid: number; comm: string }> = []
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue
    // A process can exit between readdir and this read.
    const stat = await readFile(`/proc/${name}/stat`, 'utf8').catch(() => undefined)
    if (!stat) continue
    // "pid (comm) state ppid ...": comm may itself contain spaces and parentheses.
    const commEnd = stat.lastIndexOf(')')
    const comm = stat.slice(stat.indexOf('(') + 1, commEnd)
    const ppid = Number(stat.slice(commEnd + 2).split(' ')[1])
    processes.push({ pid: Number(name), ppid, comm })
  }
  return processes
}

/** A port that was free a moment ago: bind port 0 and let the kernel choose. */
export function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, HOSTNAME, () => {
      const address = server.address()
      const port = typeof address === 'object' && address ? address.port : 0
      server.close(() => resolve(port))
    })
  })
}

function acceptsConnections(port: number, host = HOSTNAME): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = netConnect({ host, port })
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

/** SIGKILL to a pid this module found; it may have exited in the meantime. */
function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL')
  } catch {
    // Already gone.
  }
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  child.kill('SIGTERM')
  const stillRunning = await Promise.race([
    exited.then(() => false),
    new Promise<boolean>((resolve) => setTimeout(() => resolve(true), 5_000).unref()),
  ])
  if (stillRunning) {
    child.kill('SIGKILL')
    await exited
  }
}
