import { expect } from 'chai'
import { parseConfig } from '../../../src/config/load.js'
import { planWaves } from '../../../src/fleet/waves.js'
import {
  type PlanInput,
  planRelease as planWith,
  reuseFrom,
  waveIndices,
} from '../../../src/plan/release-plan.js'

/** planRelease with the waves fleet/ would pass for the config. */
const planRelease = (input: Omit<PlanInput, 'waves'>) =>
  planWith({ ...input, waves: planWaves(input.hosts.length, input.config) })

import type { HostState } from '../../../src/release/host-state.js'

function state(current: number | null, releases: number[], extra: Partial<HostState> = {}): HostState {
  return {
    exists: true,
    realDeployTo: '/srv/shop',
    currentTarget: current === null ? null : `releases/${current}`,
    current,
    currentIsNotLink: false,
    releases: releases.map((number) => ({ number, revision: 'r', mtime: 0 })),
    unfinished: [],
    deleting: [],
    foreign: [],
    sequence: null,
    lock: undefined,
    history: [],
    ...extra,
  }
}

function config(extra = '') {
  return parseConfig(
    `app: shop\ndeploy_to: /srv/shop\nhosts: [deploy@web1, deploy@web2, deploy@web3]\nkeep_releases: 2\n${extra}`,
    '/app/deployer.yml',
    { USER: 'me' },
    '/home/me',
  )
}

describe('planRelease', () => {
  const hosts = ['web1', 'web2', 'web3'].map((name) => ({
    name,
    deployTo: '/srv/shop',
    state: state(3, [1, 2, 3]),
  }))

  it('lists the steps each host runs, in order, by what the config asks for', () => {
    const cases: { extra: string; steps: string[] }[] = [
      { extra: '', steps: ['prepare', 'upload', 'link', 'publish'] },
      {
        extra: 'install: { command: "bundle install" }\n',
        steps: ['prepare', 'upload', 'link', 'install', 'publish'],
      },
      {
        extra:
          'install: { command: "bundle install" }\nserver: { start: "bundle exec puma -C config/puma.rb" }\n',
        steps: ['prepare', 'upload', 'link', 'install', 'probe', 'publish', 'restart'],
      },
    ]
    for (const { extra, steps } of cases) {
      const plan = planRelease({ config: config(extra), release: 4, revision: 'abc', hosts })
      expect(plan.hosts.map((host) => host.steps)).to.deep.equal([steps, steps, steps], extra)
    }
  })

  it('names the waves by host and maps them back to the sessions', () => {
    const plan = planRelease({
      config: config('strategy: canary\n'),
      release: 4,
      revision: 'abc',
      hosts,
    })
    expect(plan.waves).to.deep.equal([['web1'], ['web2', 'web3']])
    expect(waveIndices(plan, ['web1', 'web2', 'web3'])).to.deep.equal([[0], [1, 2]])
  })

  it('says what prune removes once the release is live, keeping keep_releases good ones', () => {
    const plan = planRelease({ config: config(), release: 4, revision: 'abc', hosts })
    expect(plan.hosts[0]?.prune).to.deep.equal([1, 2])
    const fresh = planRelease({
      config: config(),
      release: 1,
      revision: 'abc',
      hosts: [{ name: 'web1', deployTo: '/srv/shop', state: state(null, []) }],
    })
    expect(fresh.hosts[0]).to.include({ current: null, reuseFrom: null })
    expect(fresh.hosts[0]?.prune).to.deep.equal([])
  })

  it('leaves the restart to the probe unless a dry run predicted it', () => {
    const server = 'server: { start: "bundle exec puma -C config/puma.rb" }\n'
    const decision = {
      kind: 'phased' as const,
      auto: 'phased' as const,
      reasons: ['only code changed'],
      warnings: [],
    }
    const plan = planRelease({
      config: config(server),
      release: 4,
      revision: 'abc',
      hosts: hosts.slice(0, 2),
      predicted: [decision, null],
    })
    expect(plan.hosts.map((host) => host.restart)).to.deep.equal([
      { when: 'predicted', decision },
      { when: 'after-upload' },
    ])
    expect(
      planRelease({ config: config(), release: 4, revision: 'abc', hosts }).hosts[0],
    ).to.not.have.property('restart')
  })
})

describe('reuseFrom', () => {
  it('reuses the live release, else the newest published one, else nothing', () => {
    expect(reuseFrom(state(2, [1, 2, 3]))).to.equal(2)
    expect(reuseFrom(state(9, [1, 2, 3]))).to.equal(3)
    expect(reuseFrom(state(null, []))).to.equal(null)
  })
})
