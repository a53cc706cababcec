// biome-ignore-all lint/suspicious/noTemplateCurlyInString: the ${VAR} syntax as deployer.yml writes it
import { expect } from 'chai'
import { parseConfig } from '../../../src/config/load.js'
import type { ReleaseResult } from '../../../src/fleet/release.js'
import { renderReleasePlan } from '../../../src/ui/render.js'

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
