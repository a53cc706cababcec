// biome-ignore-all lint/suspicious/noTemplateCurlyInString: the ${VAR} syntax as deployer.yml writes it
import { expect } from 'chai'
import { parseConfig } from '../../../src/config/load.js'
import { DeployerError } from '../../../src/errors.js'
import type { ReleaseResult } from '../../../src/fleet/release.js'
import { renderReleasePlan, renderReleaseResult } from '../../../src/ui/render.js'

describe('renderReleasePlan', () => {
  it('shows the install command as written when the environment filled in a secret', () => {
    const config = parseConfig(
      'app: shop\ndeploy_to: /srv/shop\nhosts: [deploy@web1]\ninstall: { command: "fetch --token ${TOKEN}" }\n',
      '/app/deployer.yml',
      { USER: 'me', TOKEN: 's3cret' },
      '/home/me',
    )
    const plan: ReleaseResult = {
      app: 'shop',
      release: 2,
      revision: 'abc',
      dryRun: true,
      files: 1,
      bytes: 1,
      hosts: [],
    }
    const text = renderReleasePlan(config, plan)
    expect(text).to.contain('install: fetch --token ${TOKEN}')
    expect(text).to.not.contain('s3cret')
  })
})

describe('renderReleaseResult', () => {
  const host = {
    host: 'web1',
    deployTo: '/srv/shop',
    status: 'released' as const,
    previous: null,
    release: 2,
    removedStale: [],
    pruned: [],
    timings: {},
  }
  const result: ReleaseResult = {
    app: 'shop',
    release: 2,
    revision: 'abc',
    dryRun: false,
    files: 1,
    bytes: 1,
    hosts: [host],
  }

  it('sums up a release live on every host', () => {
    expect(renderReleaseResult(result)).to.contain('Released 2 (abc) to 1 host(s).')
  })

  it('does not claim success when the run ended with an error', () => {
    const failed = { ...result, error: new DeployerError('Release 2 failed verification.', { exitCode: 9 }) }
    expect(renderReleaseResult(failed)).to.not.contain('Released 2')
  })
})
