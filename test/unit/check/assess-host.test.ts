import { expect } from 'chai'
import {
  assessHost,
  type CheckConfig,
  type CheckContext,
  DISK_MARGIN_BYTES,
  type HostFacts,
  withoutHostPrefix,
} from '../../../src/check/assess-host.js'
import type { Severity } from '../../../src/check/findings.js'
import { formatBytes as formatSize } from '../../../src/format.js'
import {
  CONFIG,
  CONTEXT,
  expectFinding,
  GIB,
  hostFacts,
  hostState,
  pumaFacts,
  remoteFacts,
  STOPPED,
  serverProbe,
} from './fixtures.js'

const MIB = 1024 * 1024
const withoutTool = (name: string) => {
  const tools = { ...remoteFacts().tools }
  delete tools[name]
  return remoteFacts({ tools })
}

describe('assessHost', () => {
  it('finds nothing to fix on a healthy host', () => {
    const findings = assessHost(hostFacts(), CONFIG, CONTEXT)
    const problems = findings.filter((finding) => finding.severity !== 'ok')
    expect(problems, JSON.stringify(problems, null, 2)).to.deep.equal([])
    expect(findings.map((finding) => finding.check)).to.include.members([
      'ssh',
      'deploy-to',
      'disk',
      'inodes',
      'tool',
      'releases',
      'puma',
    ])
  })

  const table: {
    name: string
    facts?: Partial<HostFacts>
    config?: Partial<CheckConfig>
    context?: Partial<CheckContext>
    check: string
    severity: Severity
    message: RegExp
  }[] = [
    // SSH
    {
      name: 'an unreachable host is one blocking finding with the transport’s hint',
      facts: {
        unreachable: { kind: 'connection', message: 'Nothing is listening on web1:22.', hint: 'Check sshd.' },
      },
      check: 'ssh',
      severity: 'blocking',
      message: /^Nothing is listening on web1:22\.$/,
    },
    {
      name: 'a host key recorded by accept-new is info, not verified',
      facts: { hostKeyRecorded: true },
      check: 'ssh',
      severity: 'info',
      message: /accept-new recorded it without verifying/,
    },
    {
      name: 'a verified host key is ok',
      check: 'ssh',
      severity: 'ok',
      message: /^Connected to deploy@web1:22 as deploy; host key verified/,
    },
    {
      name: 'a local host needs no SSH',
      facts: { local: true, address: 'local' },
      check: 'ssh',
      severity: 'ok',
      message: /no SSH/,
    },
    // deploy_to
    {
      name: 'deploy_to not writable blocks, naming the user',
      facts: { remote: remoteFacts({ targetWritable: false }) },
      check: 'deploy-to',
      severity: 'blocking',
      message: /^deploy_to \/srv\/shop is not writable by deploy\.$/,
    },
    {
      name: 'deploy_to that is a file blocks',
      facts: { remote: remoteFacts({ targetIsDir: false }) },
      check: 'deploy-to',
      severity: 'blocking',
      message: /exists but is not a directory/,
    },
    {
      name: 'a missing deploy_to under a writable parent is ok: the first release creates it',
      facts: { remote: remoteFacts({ target: '/srv', subdirs: [] }) },
      check: 'deploy-to',
      severity: 'ok',
      message: /does not exist yet; the first release creates it \(\/srv is writable by deploy\)/,
    },
    {
      name: 'a missing deploy_to under an unwritable parent blocks',
      facts: { remote: remoteFacts({ target: '/srv', targetWritable: false, subdirs: [] }) },
      check: 'deploy-to',
      severity: 'blocking',
      message: /does not exist and deploy cannot create it: \/srv is not writable/,
    },
    {
      name: 'a missing deploy_to under a file blocks',
      facts: { remote: remoteFacts({ target: '/srv', targetIsDir: false, subdirs: [] }) },
      check: 'deploy-to',
      severity: 'blocking',
      message: /cannot be created: \/srv is not a directory/,
    },
    {
      name: 'a dangling deploy_to symlink blocks',
      facts: { remote: remoteFacts({ danglingLink: true, target: '/srv' }) },
      check: 'deploy-to',
      severity: 'blocking',
      message: /symlink to nothing/,
    },
    {
      name: 'releases/ owned by someone else blocks although deploy_to is writable',
      facts: {
        remote: remoteFacts({
          subdirs: [
            { name: 'releases', writable: false },
            { name: 'shared', writable: true },
          ],
        }),
      },
      check: 'deploy-to',
      severity: 'blocking',
      message: /^\/srv\/shop\/releases is not a directory writable by deploy\.$/,
    },
    {
      name: 'facts that could not be read block',
      facts: { remote: null, remoteError: 'exit 127' },
      check: 'deploy-to',
      severity: 'blocking',
      message: /^Could not read deploy_to \/srv\/shop and the host's tools: exit 127$/,
    },
    // Disk and inodes
    {
      name: 'less free space than the release blocks',
      facts: {
        remote: remoteFacts({
          fs: { availableBytes: 20 * MIB, freeInodes: 1e6, totalInodes: 2e6, type: 'xfs' },
        }),
      },
      check: 'disk',
      severity: 'blocking',
      message:
        /^Only 20\.0 MiB free on the xfs filesystem of \/srv\/shop, less than the release \(30\.0 MiB\)\.$/,
    },
    {
      name: 'less than twice the release plus the margin warns',
      facts: {
        remote: remoteFacts({
          fs: {
            availableBytes: 60 * MIB + DISK_MARGIN_BYTES - 1,
            freeInodes: 1e6,
            totalInodes: 2e6,
            type: 'xfs',
          },
        }),
      },
      check: 'disk',
      severity: 'warning',
      message: /less than twice the release \(30\.0 MiB\) plus 100\.0 MiB/,
    },
    {
      name: 'exactly twice the release plus the margin is ok',
      facts: {
        remote: remoteFacts({
          fs: {
            availableBytes: 60 * MIB + DISK_MARGIN_BYTES,
            freeInodes: 1e6,
            totalInodes: 2e6,
            type: 'xfs',
          },
        }),
      },
      check: 'disk',
      severity: 'ok',
      message: /^160\.0 MiB free on the xfs filesystem of \/srv\/shop \(the release is 30\.0 MiB\)\.$/,
    },
    {
      name: 'an unreadable filesystem warns',
      facts: { remote: remoteFacts({ fs: null }) },
      check: 'disk',
      severity: 'warning',
      message: /Could not read the free space of \/srv\/shop/,
    },
    {
      name: 'an unreadable source leaves the release size unknown',
      context: { source: { error: 'The source /app is not a directory.' } },
      check: 'disk',
      severity: 'info',
      message: /the release size is unknown/,
    },
    {
      name: 'fewer free inodes than release entries blocks',
      facts: {
        remote: remoteFacts({
          fs: { availableBytes: 40 * GIB, freeInodes: 1_999, totalInodes: 1e6, type: 'ext4' },
        }),
      },
      check: 'inodes',
      severity: 'blocking',
      message: /^Only 1999 free inodes .* fewer than the release's 2000 entries\.$/,
    },
    {
      name: 'few spare inodes warn',
      facts: {
        remote: remoteFacts({
          fs: { availableBytes: 40 * GIB, freeInodes: 13_999, totalInodes: 1e6, type: 'ext4' },
        }),
      },
      check: 'inodes',
      severity: 'warning',
      message: /less than twice the release's 2000 entries plus 10000/,
    },
    // Tools
    {
      name: 'a missing install program blocks, naming it and the config key',
      facts: { remote: withoutTool('bundle') },
      check: 'tool',
      severity: 'blocking',
      message:
        /^install\.command needs bundle, but the non-interactive SSH shell of deploy does not find it on its PATH\.$/,
    },
    {
      name: 'a missing base tool blocks, saying what it is for',
      facts: { remote: withoutTool('xargs') },
      check: 'tool',
      severity: 'blocking',
      message: /^A release needs xargs, which feeds the unchanged files to cp, but /,
    },
    {
      name: 'a tar that is not GNU tar blocks',
      facts: {
        remote: remoteFacts({
          versions: { tar: 'bsdtar 3.6.2 - libarchive 3.6.2', cp: 'cp (GNU coreutils) 9.1' },
        }),
      },
      check: 'tool',
      severity: 'blocking',
      message: /\/usr\/bin\/tar is not GNU tar \(it says "bsdtar 3\.6\.2/,
    },
    {
      name: 'a cp that is not GNU cp warns',
      facts: { remote: remoteFacts({ versions: { tar: 'tar (GNU tar) 1.34', cp: null } }) },
      check: 'tool',
      severity: 'warning',
      message: /is not GNU cp \(`cp --version` prints nothing\)/,
    },
    {
      name: 'a missing ruby blocks when Puma is not running',
      facts: { remote: withoutTool('ruby'), puma: pumaFacts({ probe: serverProbe({ master: STOPPED }) }) },
      check: 'tool',
      severity: 'blocking',
      message: /^A release needs ruby, which reads Puma’s state and config, and runs the health check, but/,
    },
    {
      name: 'a missing ruby only warns while the running master’s Ruby can stand in',
      facts: { remote: withoutTool('ruby') },
      check: 'tool',
      severity: 'warning',
      message: /through the running master’s own Ruby/,
    },
    {
      name: 'a missing ruby blocks when the health check needs it',
      facts: { remote: withoutTool('ruby') },
      config: { health: { url: 'http://127.0.0.1:3000/up', timeout: 30 } },
      check: 'tool',
      severity: 'blocking',
      message: /^A release needs ruby, /,
    },
    {
      name: 'a missing server.start program blocks when Puma must be started',
      facts: {
        remote: remoteFacts({ tools: { ...remoteFacts().tools, puma: null } }),
        puma: pumaFacts({ probe: serverProbe({ master: STOPPED }) }),
      },
      config: { server: { ...CONFIG.server!, start: 'exec puma -C config/puma.rb' } },
      check: 'tool',
      severity: 'blocking',
      message: /^server\.start needs puma/,
    },
    {
      name: 'a missing server.start program only warns while Puma runs',
      facts: { remote: remoteFacts({ tools: { ...remoteFacts().tools, puma: null } }) },
      config: { server: { ...CONFIG.server!, start: 'exec puma -C config/puma.rb' } },
      check: 'tool',
      severity: 'warning',
      message: /Puma runs now, but a release could not start it/,
    },
    {
      name: 'an install program inside the release is not checked on the host',
      config: { install: { command: 'bin/setup --production', lockfiles: [] } },
      check: 'tool',
      severity: 'info',
      message: /install\.command runs bin\/setup from the release/,
    },
    {
      name: 'an install command starting with a variable is not checked',
      config: { install: { command: '$BUNDLER install', lockfiles: [] } },
      check: 'tool',
      severity: 'info',
      message: /only the shell can resolve/,
    },
    // Releases and lock
    {
      name: 'a current that is not a symlink blocks',
      facts: { state: hostState({ currentIsNotLink: true, currentTarget: null, current: null }) },
      check: 'releases',
      severity: 'blocking',
      message: /\/srv\/shop\/current is not a symlink/,
    },
    {
      name: 'the release count and current are reported',
      check: 'releases',
      severity: 'ok',
      message: /^2 releases, current is release 3\.$/,
    },
    {
      name: 'a lock held by another run is info, naming the owner',
      facts: {
        state: hostState({
          lock: {
            user: 'ci',
            machine: 'runner-7',
            pid: 812,
            token: 't',
            command: 'release',
            startedAt: '2026-11-24T17:58:00Z',
          },
        }),
      },
      check: 'lock',
      severity: 'info',
      message:
        /^\/srv\/shop is locked by ci@runner-7 \(pid 812, deployer release\) since .* \(2 min ago\)\.$/,
    },
    {
      name: 'a lock from this machine whose pid is gone is reported stale',
      facts: {
        lockOwnerAlive: false,
        state: hostState({
          lock: {
            user: 'me',
            machine: 'laptop',
            pid: 9,
            token: 't',
            command: 'prune',
            startedAt: '2026-11-24T17:00:00Z',
          },
        }),
      },
      check: 'lock',
      severity: 'info',
      message: /no longer running: the lock is stale/,
    },
    {
      name: 'unfinished releases are info',
      facts: { state: hostState({ unfinished: [4] }) },
      check: 'releases',
      severity: 'info',
      message: /^Unfinished release 4 in \/srv\/shop\/releases/,
    },
    {
      name: 'unreadable releases warn',
      facts: { state: null, stateError: 'reading the state of deploy_to failed (exit 1).' },
      check: 'releases',
      severity: 'warning',
      message: /Could not read the releases in \/srv\/shop: reading the state/,
    },
  ]

  for (const row of table) {
    it(row.name, () => {
      const findings = assessHost(
        hostFacts(row.facts),
        { ...CONFIG, ...row.config },
        { ...CONTEXT, ...row.context },
      )
      expectFinding(findings, row)
    })
  }

  it('gives every warning and blocking finding a hint', () => {
    const broken = hostFacts({
      remote: remoteFacts({ targetWritable: false, fs: null, tools: { sh: '/bin/sh' } }),
      state: hostState({ currentIsNotLink: true }),
    })
    const problems = assessHost(broken, CONFIG, CONTEXT).filter(
      (finding) => finding.severity === 'warning' || finding.severity === 'blocking',
    )
    expect(problems.length).to.be.greaterThan(4)
    for (const finding of problems) expect(finding.hint, finding.message).to.be.a('string').and.not.equal('')
  })

  it('checks nothing else on an unreachable host', () => {
    const findings = assessHost(
      hostFacts({ unreachable: { kind: 'host-key', message: 'The host key of [web1]:22 has changed.' } }),
      CONFIG,
      CONTEXT,
    )
    expect(findings.map((finding) => finding.check)).to.deep.equal(['ssh'])
  })

  it('leaves Puma out without a server section', () => {
    const findings = assessHost(hostFacts({ puma: undefined }), { install: CONFIG.install }, CONTEXT)
    expect(findings.filter((finding) => finding.check.startsWith('puma'))).to.deep.equal([])
    expect(findings.find((finding) => finding.check === 'tool')?.message).to.not.contain('ruby')
  })
})

describe('withoutHostPrefix', () => {
  const table: [string, string][] = [
    ['Host web1: nothing is listening on web1:22.', 'Nothing is listening on web1:22.'],
    ['Host web1: deploy_to /srv is not writable.', 'deploy_to /srv is not writable.'],
    ['Host web1: /srv/shop is locked.', '/srv/shop is locked.'],
    ['Host web2: left alone.', 'Host web2: left alone.'],
  ]
  for (const [input, output] of table)
    it(`turns "${input}" into "${output}"`, () => {
      expect(withoutHostPrefix('web1', input)).to.equal(output)
    })
})

describe('formatSize', () => {
  const table: [number, string][] = [
    [0, '0 B'],
    [1023, '1023 B'],
    [1024, '1.0 KiB'],
    [30 * 1024 * 1024, '30.0 MiB'],
    [41.7 * GIB, '41.7 GiB'],
  ]
  for (const [bytes, text] of table)
    it(`writes ${bytes} bytes as ${text}`, () => {
      expect(formatSize(bytes)).to.equal(text)
    })
})
