import { expect } from 'chai'
import type { CheckConfig, CheckContext, HostFacts } from '../../../src/check/assess-host.js'
import type { PumaFacts } from '../../../src/check/assess-puma.js'
import type { Finding, Severity } from '../../../src/check/findings.js'
import type { RemoteFacts } from '../../../src/check/host-facts.js'
import type { ServerSettings } from '../../../src/config/types.js'
import type { HostState } from '../../../src/release/host-state.js'
import type { MasterFacts, PumaConfigFacts, ServerProbe } from '../../../src/restart/server-probe.js'

/** A healthy host's facts, for tables of cases that each change one thing. */
export const D = '/srv/shop'
export const GIB = 1024 ** 3

export function remoteFacts(change: Partial<RemoteFacts> = {}): RemoteFacts {
  return {
    user: 'deploy',
    danglingLink: false,
    target: D,
    targetIsDir: true,
    targetWritable: true,
    subdirs: [
      { name: 'releases', writable: true },
      { name: 'shared', writable: true },
      { name: '.deployer', writable: true },
    ],
    fs: { availableBytes: 40 * GIB, freeInodes: 2_000_000, totalInodes: 3_000_000, type: 'ext2/ext3' },
    tools: {
      sh: '/usr/bin/sh',
      tar: '/usr/bin/tar',
      cp: '/usr/bin/cp',
      xargs: '/usr/bin/xargs',
      find: '/usr/bin/find',
      bundle: '/usr/local/bin/bundle',
      ruby: '/usr/bin/ruby',
      puma: '/usr/local/bin/puma',
    },
    versions: { tar: 'tar (GNU tar) 1.34', cp: 'cp (GNU coreutils) 9.1' },
    ...change,
  }
}

export function hostState(change: Partial<HostState> = {}): HostState {
  return {
    exists: true,
    realDeployTo: D,
    currentTarget: 'releases/3',
    current: 3,
    currentIsNotLink: false,
    releases: [
      { number: 2, mtime: 1_700_000_000, revision: 'abc1' },
      { number: 3, mtime: 1_700_000_100, revision: 'abc2' },
    ],
    unfinished: [],
    sequence: 3,
    lock: undefined,
    history: [],
    ...change,
  }
}

export function master(change: Partial<MasterFacts> = {}): MasterFacts {
  return {
    pidfile: `${D}/shared/tmp/pids/puma.pid`,
    pid: 4100,
    alive: true,
    isPuma: true,
    running: true,
    settling: false,
    startTime: 123456,
    proctitle: 'puma 5.6.5 (tcp://127.0.0.1:3000) [shop]',
    cwd: `${D}/releases/3`,
    pumaVersion: '5.6.5',
    binds: ['tcp://127.0.0.1:3000'],
    rubyVersion: '3.1.2',
    environReadable: true,
    env: { pwd: `${D}/current`, skipUsr2: false },
    ...change,
  }
}

export const STOPPED: Partial<MasterFacts> = {
  pid: null,
  pidfileError: 'missing',
  alive: false,
  isPuma: false,
  running: false,
  proctitle: undefined,
  cwd: undefined,
  pumaVersion: undefined,
  binds: undefined,
}

export function pumaConfig(change: Partial<PumaConfigFacts> = {}): PumaConfigFacts {
  return {
    dir: 'current',
    file: 'config/puma.rb',
    ok: true,
    envSource: 'master',
    pumaVersion: '5.6.5',
    workers: 2,
    preloadApp: null,
    defaultPreload: false,
    pruneBundler: false,
    directory: `${D}/current`,
    binds: ['tcp://127.0.0.1:3000'],
    pidfile: `${D}/shared/tmp/pids/puma.pid`,
    controlUrl: `unix://${D}/shared/tmp/sockets/pumactl.sock`,
    stateFile: null,
    stdoutRedirect: null,
    workerShutdownTimeout: 30,
    workerBootTimeout: 60,
    forkWorker: null,
    ...change,
  }
}

export function serverProbe(
  change: { master?: Partial<MasterFacts> } & Partial<Omit<ServerProbe, 'master'>> = {},
): ServerProbe {
  const { master: masterChange, ...rest } = change
  return {
    listeningPorts: [],
    master: master(masterChange),
    workers: [
      {
        pid: 4107,
        ppid: 4100,
        index: 0,
        masterPid: 4100,
        cwd: `${D}/releases/3`,
        cmdline: 'puma: cluster worker 0: 4100',
      },
      {
        pid: 4109,
        ppid: 4100,
        index: 1,
        masterPid: 4100,
        cwd: `${D}/releases/3`,
        cmdline: 'puma: cluster worker 1: 4100',
      },
    ],
    stats: {
      mode: 'cluster',
      startedAt: '2026-11-24T17:01:21Z',
      phase: 0,
      workers: 2,
      bootedWorkers: 2,
      oldWorkers: 0,
      workerStatus: [],
    },
    statsError: null,
    configs: [pumaConfig()],
    currentPath: `${D}/releases/3`,
    ...rest,
  }
}

export function pumaFacts(change: Partial<PumaFacts> = {}): PumaFacts {
  const probe = change.probe === undefined ? serverProbe() : change.probe
  return {
    probe,
    config: probe?.configs[0] ?? null,
    configOrigin: 'current',
    realDeployTo: D,
    ...change,
  }
}

export const SERVER: ServerSettings = {
  kind: 'puma',
  config: 'config/puma.rb',
  pidfile: 'shared/tmp/pids/puma.pid',
  controlUrl: `unix://${D}/shared/tmp/sockets/pumactl.sock`,
  controlToken: 'token',
  restart: 'auto',
  start: 'bundle exec puma -C config/puma.rb',
  envFiles: [],
  pumaEnvFiles: [],
}

export const CONFIG: CheckConfig = {
  install: { command: 'bundle install', lockfiles: ['Gemfile.lock'] },
  server: SERVER,
}

export const CONTEXT: CheckContext = {
  now: new Date('2026-11-24T18:00:00Z'),
  machine: 'laptop',
  source: { bytes: 30 * 1024 * 1024, entries: 2_000 },
}

export function hostFacts(change: Partial<HostFacts> = {}): HostFacts {
  return {
    host: 'web1',
    deployTo: D,
    address: 'deploy@web1:22',
    local: false,
    remote: remoteFacts(),
    state: hostState(),
    puma: pumaFacts(),
    ...change,
  }
}

/** What a table row expects to find among a host's findings. */
export interface ExpectedFinding {
  check: string
  severity: Severity
  message: RegExp
}

/** Asserts that `findings` hold the expected one, and that a problem comes with a hint. */
export function expectFinding(findings: readonly Finding[], expected: ExpectedFinding): void {
  const match = findings.find(
    (finding) =>
      finding.check === expected.check &&
      finding.severity === expected.severity &&
      expected.message.test(finding.message),
  )
  expect(match, JSON.stringify(findings, null, 2)).to.not.equal(undefined)
  if (expected.severity === 'warning' || expected.severity === 'blocking')
    expect(match?.hint, 'a problem says what to do').to.be.a('string').and.not.equal('')
}
