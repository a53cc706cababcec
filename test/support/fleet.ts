import { chown, mkdir, readdir, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { DEPLOY_USER, makeWorkspace, userIds, type Workspace } from './fixture.js'
import { PUMA_TOKEN, stopPuma } from './puma-app.js'
import { findFreePort, startSshd, type TestSshd } from './sshd.js'

/** One host of a test fleet: its own sshd on 127.0.0.1, deploy_to and Puma port. */
export interface FleetHost {
  name: string
  sshd: TestSshd
  deployTo: string
  port: number
}

/** A fleet of hosts on this machine, deployed with one deployer.yml (`ws.config`). */
export interface TestFleet {
  ws: Workspace
  /** web1, web2, ... in deployer.yml's order. */
  hosts: FleetHost[]
  /** Writes config.ru for `version`; it refuses to boot where the host's shared .env says `break-VERSION`. */
  writeApp(version: string): Promise<void>
  /** Writes a host's shared .env (which the app reads at boot). */
  setEnv(host: FleetHost, text: string): Promise<void>
  /** Where a host's `current` points, e.g. `releases/3`. */
  currentOf(host: FleetHost): Promise<string>
  /** A host's releases/ entries, partial ones included, sorted. */
  releaseDirs(host: FleetHost): Promise<string[]>
  /** Whether a host's `.deployer/lock` exists. */
  lockHeld(host: FleetHost): Promise<boolean>
  /** Stops every Puma and sshd the fleet started (by pid) and removes the workspace. */
  stop(): Promise<void>
}

/**
 * Starts `size` sshd instances sharing one client identity, each host with its own deploy_to and its
 * own Puma settings in shared/config/host.rb (bind, pidfile, control app), and writes the app
 * (cluster, two workers, `queue_requests false`) and a deployer.yml with a relative control_url.
 * Nothing is released yet.
 */
export async function startFleet(size: number): Promise<TestFleet> {
  const ws = await makeWorkspace(DEPLOY_USER)
  const hosts: FleetHost[] = []
  const stop = async () => {
    for (const host of hosts) await stopPuma({ ...ws, deployTo: host.deployTo })
    for (const host of hosts) await host.sshd.stop()
    await rm(ws.dir, { recursive: true, force: true })
  }
  const writeApp = async (version: string) => {
    await writeFile(
      join(ws.source, 'config.ru'),
      [
        `raise "boom: this host cannot run ${version}" if File.read(".env").include?("break-${version}")`,
        'release = File.read("RELEASE").strip rescue "dev"',
        `run ->(env) { [200, { "content-type" => "text/plain" }, ["release=#{release} version=${version} pid=#{Process.pid}\\n"]] }`,
        '',
      ].join('\n'),
    )
  }
  try {
    const { uid, gid } = await userIds(DEPLOY_USER)
    let clientKeyPath: string | undefined
    const knownHosts: string[] = []
    for (let index = 1; index <= size; index++) {
      const sshd = await startSshd({ user: DEPLOY_USER, createUser: true, clientKeyPath })
      clientKeyPath ??= sshd.clientKeyPath
      knownHosts.push(await readFile(sshd.knownHostsPath, 'utf8'))
      const deployTo = join(ws.dir, 'srv', `web${index}`)
      const host: FleetHost = { name: `web${index}`, sshd, deployTo, port: await findFreePort() }
      hosts.push(host)
      await writeHostSettings(host, uid, gid)
    }
    const knownHostsPath = join(ws.dir, 'known_hosts')
    await writeFile(knownHostsPath, knownHosts.join(''))

    await mkdir(join(ws.source, 'config'), { recursive: true })
    await writeFile(
      join(ws.source, 'config', 'puma.rb'),
      [
        'instance_eval(File.read(File.expand_path("host.rb", __dir__)))',
        'workers 2',
        'threads 1, 2',
        'worker_shutdown_timeout 5',
        'worker_check_interval 1',
        'queue_requests false',
        '',
      ].join('\n'),
    )
    await writeApp('v1')
    const lines = [
      'app: fleet',
      `source: ${JSON.stringify(ws.source)}`,
      'deploy_to: /srv/unused',
      'keep_releases: 10',
      'hosts:',
      ...hosts.map(
        (host) =>
          `  - { name: ${host.name}, ssh: ${JSON.stringify(`${DEPLOY_USER}@127.0.0.1:${host.sshd.port}`)}, deploy_to: ${JSON.stringify(host.deployTo)} }`,
      ),
      `concurrency: ${size}`,
      'ssh:',
      `  identity: ${JSON.stringify(clientKeyPath)}`,
      `  known_hosts: ${JSON.stringify(knownHostsPath)}`,
      'shared:',
      '  dirs: [log, tmp/pids, tmp/sockets]',
      '  files: [.env, config/host.rb]',
      'server:',
      '  config: config/puma.rb',
      '  pidfile: shared/tmp/pids/puma.pid',
      '  control_url: unix://shared/tmp/sockets/pumactl.sock',
      '  control_token: ${PUMA_TOKEN}',
      '  start: exec puma -C config/puma.rb',
    ]
    await writeFile(ws.config, `${lines.join('\n')}\n`)
  } catch (error) {
    await stop().catch(() => {})
    throw error
  }
  return {
    ws,
    hosts,
    writeApp,
    setEnv: (host, text) => writeFile(join(host.deployTo, 'shared', '.env'), `${text}\n`),
    currentOf: (host) => readlink(join(host.deployTo, 'current')),
    releaseDirs: async (host) => (await readdir(join(host.deployTo, 'releases'))).sort(),
    lockHeld: (host) =>
      stat(join(host.deployTo, '.deployer', 'lock')).then(
        () => true,
        () => false,
      ),
    stop,
  }
}

/** Each host's own Puma settings live in its shared/ (one deployer.yml serves the whole fleet). */
async function writeHostSettings(host: FleetHost, uid: number, gid: number): Promise<void> {
  const { deployTo } = host
  for (const dir of [deployTo, join(deployTo, 'shared'), join(deployTo, 'shared', 'config')]) {
    await mkdir(dir, { recursive: true })
    await chown(dir, uid, gid)
  }
  const hostRb = [
    `directory ${JSON.stringify(join(deployTo, 'current'))}`,
    `bind "tcp://127.0.0.1:${host.port}"`,
    `pidfile ${JSON.stringify(join(deployTo, 'shared/tmp/pids/puma.pid'))}`,
    `activate_control_app "unix://${join(deployTo, 'shared/tmp/sockets/pumactl.sock')}", { auth_token: ${JSON.stringify(PUMA_TOKEN)} }`,
    `stdout_redirect ${JSON.stringify(join(deployTo, 'shared/log/puma.log'))}, ${JSON.stringify(join(deployTo, 'shared/log/puma.log'))}, true`,
    '',
  ].join('\n')
  for (const [file, text] of [
    ['config/host.rb', hostRb],
    ['.env', 'fine\n'],
  ] as const) {
    await writeFile(join(deployTo, 'shared', file), text)
    await chown(join(deployTo, 'shared', file), uid, gid)
  }
}
