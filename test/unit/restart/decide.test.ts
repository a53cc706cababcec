import { expect } from 'chai'
import type { RestartKind } from '../../../src/config/types.js'
import {
  decideRestart,
  type RestartChoice,
  type RestartInputs,
  type ServerFacts,
} from '../../../src/restart/decide.js'
import type { Fingerprints } from '../../../src/restart/fingerprints.js'

const base: Fingerprints = {
  pumaConfig: 'cfg1',
  binds: ['tcp://127.0.0.1:9292'],
  ruby: '3.1.2',
  puma: null,
  dependencies: 'lock1',
  environment: null,
  code: 'code1',
}
const server: ServerFacts = {
  running: true,
  mode: 'cluster',
  workers: 2,
  preload: false,
  pruneBundler: false,
  directoryIsCurrent: true,
  nextDirectoryIsCurrent: true,
  runningRuby: '3.1.2',
  runningPuma: '5.6.5',
  skipUsr2: false,
}

function decide(change: {
  next?: Partial<Fingerprints>
  running?: Partial<Fingerprints> | null
  server?: Partial<ServerFacts>
  requested?: RestartKind
  hasEnvFiles?: boolean
  hasPumaEnvFiles?: boolean
}) {
  const inputs: RestartInputs = {
    requested: change.requested ?? 'auto',
    running: change.running === null ? null : { ...base, ...change.running },
    next: { ...base, code: 'code2', ...change.next },
    server: { ...server, ...change.server },
    currentPath: '/srv/shop/current',
    hasEnvFiles: change.hasEnvFiles ?? false,
    hasPumaEnvFiles: change.hasPumaEnvFiles ?? false,
  }
  return decideRestart(inputs)
}

describe('decideRestart', () => {
  const table: { name: string; change: Parameters<typeof decide>[0]; kind: RestartChoice; reason: RegExp }[] =
    [
      // Rule 3: phased.
      { name: 'code only → phased', change: {}, kind: 'phased', reason: /only the app code changed/ },
      {
        name: 'nothing changed → phased, recycling workers',
        change: { next: { code: 'code1' } },
        kind: 'phased',
        reason: /nothing changed/,
      },
      {
        name: 'lockfile with prune_bundler → phased',
        change: { next: { dependencies: 'lock2' }, server: { pruneBundler: true } },
        kind: 'phased',
        reason: /prune_bundler lets new workers/,
      },
      // Rule 2: hot.
      {
        name: 'puma.rb changed → hot',
        change: { next: { pumaConfig: 'cfg2' } },
        kind: 'hot',
        reason: /Puma config changed/,
      },
      {
        name: 'lockfile without prune_bundler → hot',
        change: { next: { dependencies: 'lock2' } },
        kind: 'hot',
        reason: /lockfiles changed and without prune_bundler/,
      },
      {
        name: 'Puma version change → hot, never phased',
        change: { next: { puma: '6.6.1' } },
        kind: 'hot',
        reason: /Puma changes from 5.6.5 to 6.6.1/,
      },
      {
        name: 'single mode → hot',
        change: { server: { mode: 'single' } },
        kind: 'hot',
        reason: /single mode/,
      },
      {
        name: 'effective preload → hot',
        change: { server: { preload: true } },
        kind: 'hot',
        reason: /preload_app!/,
      },
      {
        name: 'unknown running release → hot (config assumed changed)',
        change: { running: null },
        kind: 'hot',
        reason: /running release is unknown/,
      },
      // Rule 1: full.
      {
        name: 'directory not the current path → full',
        change: { server: { directoryIsCurrent: false, nextDirectoryIsCurrent: false } },
        kind: 'full',
        reason: /would re-enter the old release/,
      },
      {
        name: '.ruby-version change → full',
        change: { next: { ruby: '3.2.0' } },
        kind: 'full',
        reason: /Ruby changes from 3.1.2 to 3.2.0/,
      },
      {
        name: 'declared Ruby change while the running Ruby is unknown → full',
        change: { next: { ruby: '3.2.0' }, server: { runningRuby: null } },
        kind: 'full',
        reason: /declared Ruby changes/,
      },
      {
        name: 'environment files changed → full',
        change: { next: { environment: 'env2' }, running: { environment: 'env1' }, hasEnvFiles: true },
        kind: 'full',
        reason: /environment files changed/,
      },
      {
        name: 'env files puma.rb loads itself changed → hot (USR2 re-runs puma.rb)',
        change: {
          next: { pumaEnvironment: 'e2' },
          running: { pumaEnvironment: 'e1' },
          hasPumaEnvFiles: true,
        },
        kind: 'hot',
        reason: /env files puma.rb loads itself changed/,
      },
      {
        name: 'env files puma.rb loads itself unchanged → phased',
        change: {
          next: { pumaEnvironment: 'e1' },
          running: { pumaEnvironment: 'e1' },
          hasPumaEnvFiles: true,
        },
        kind: 'phased',
        reason: /only the app code changed/,
      },
      {
        name: 'environment unknown with env files configured → full',
        change: { running: null, hasEnvFiles: true },
        kind: 'full',
        reason: /environment files changed/,
      },
      {
        name: 'bind change → full',
        change: { next: { binds: ['tcp://0.0.0.0:9292'] } },
        kind: 'full',
        reason: /binds change/,
      },
      {
        // Both configs without a bind, each read by its own Puma: 8.0's default is [::] (puma/puma#3847).
        name: 'an upgrade to Puma 8 that moves the default bind from 0.0.0.0 to [::] → full, not hot',
        change: {
          running: { binds: ['tcp://0.0.0.0:9292'], puma: '7.2.1' },
          next: { binds: ['tcp://[::]:9292'], puma: '8.0.2' },
          server: { runningPuma: '7.2.1' },
        },
        kind: 'full',
        reason: /binds change from tcp:\/\/0\.0\.0\.0:9292 to tcp:\/\/\[::\]:9292/,
      },
      {
        name: 'Puma change under prune_bundler → full',
        change: { next: { puma: '6.6.1' }, server: { pruneBundler: true } },
        kind: 'full',
        reason: /prune_bundler keeps the old Puma/,
      },
      {
        name: 'hot needed but PUMA_SKIP_SIGUSR2 set → full',
        change: { next: { pumaConfig: 'cfg2' }, server: { skipUsr2: true } },
        kind: 'full',
        reason: /PUMA_SKIP_SIGUSR2/,
      },
      {
        name: 'Puma not running → start',
        change: { server: { running: false } },
        kind: 'start',
        reason: /not running/,
      },
      {
        name: 'a running Ruby that satisfies a shorter declared version → not full',
        change: { next: { ruby: '3.1' }, running: { ruby: '3.1' } },
        kind: 'phased',
        reason: /only the app code/,
      },
    ]
  for (const row of table) {
    it(row.name, () => {
      const decision = decide(row.change)
      expect(decision.kind).to.equal(row.kind)
      expect(decision.reasons.join('\n')).to.match(row.reason)
    })
  }

  it('warns how to fix a config without `directory`', () => {
    const decision = decide({ server: { directoryIsCurrent: false, nextDirectoryIsCurrent: false } })
    expect(decision.warnings.join('\n')).to.contain('directory "/srv/shop/current"')
  })

  it('takes an override and warns when it is unsafe: USR1 after a Puma version change', () => {
    const decision = decide({ next: { puma: '6.6.1' }, requested: 'phased' })
    expect(decision.kind).to.equal('phased')
    expect(decision.auto).to.equal('hot')
    expect(decision.warnings.join('\n')).to.match(/mixing old and new Puma/)
  })

  it('takes a stronger override without a warning', () => {
    const decision = decide({ requested: 'full' })
    expect(decision).to.include({ kind: 'full', auto: 'phased' })
    expect(decision.warnings).to.deep.equal([])
  })

  it('warns that --restart none leaves the old release serving', () => {
    const decision = decide({ requested: 'none' })
    expect(decision.kind).to.equal('none')
    expect(decision.warnings.join('\n')).to.match(/will not serve until Puma restarts/)
  })

  it('warns that a single worker gets no phased restart without a gap', () => {
    expect(decide({ server: { workers: 1 } }).warnings.join('\n')).to.match(/one worker/)
  })
})
