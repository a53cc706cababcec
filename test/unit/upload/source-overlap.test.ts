import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect } from 'chai'
import type { HostConfig } from '../../../src/config/types.js'
import { DeployerError, ExitCode } from '../../../src/errors.js'
import { overlap, refuseOverlappingSource } from '../../../src/upload/source-overlap.js'
import { localHost } from '../../support/local-host.js'

describe('overlap', () => {
  const rows: Array<[string, string, ReturnType<typeof overlap>]> = [
    ['/srv/shop', '/srv/shop', 'same'],
    ['/srv/shop/current', '/srv/shop', 'source-in-deploy-to'],
    ['/srv/shop/releases/3', '/srv/shop', 'source-in-deploy-to'],
    ['/home/me/app', '/home/me/app/deploy', 'deploy-to-in-source'],
    ['/srv/shop2', '/srv/shop', null],
    ['/srv/shop', '/srv/shop2', null],
    ['/srv/..shop', '/srv', 'source-in-deploy-to'],
    ['/home/me/app', '/srv/shop', null],
  ]
  for (const [source, deployTo, expected] of rows) {
    it(`${source} and ${deployTo}: ${expected}`, () => expect(overlap(source, deployTo)).to.equal(expected))
  }
})

describe('refuseOverlappingSource', () => {
  let sandbox: string
  const host = (name: string, kind: 'local' | 'ssh', deployTo: string): HostConfig => ({
    ...localHost(deployTo, name),
    kind,
  })

  beforeEach(async () => {
    sandbox = await mkdtemp(join(tmpdir(), 'deployer-overlap-'))
    await mkdir(join(sandbox, 'srv', 'shop', 'releases'), { recursive: true })
    await mkdir(join(sandbox, 'build'))
  })
  afterEach(async () => {
    await rm(sandbox, { recursive: true, force: true })
  })

  const refusal = (source: string, hosts: HostConfig[]) =>
    refuseOverlappingSource(source, hosts).then(
      () => null,
      (error: unknown) => error as DeployerError,
    )

  it('refuses a source inside deploy_to on host local, as a config error naming both', async () => {
    const source = join(sandbox, 'srv', 'shop', 'releases')
    const error = await refusal(source, [host('local', 'local', join(sandbox, 'srv', 'shop'))])
    expect(error).to.be.instanceOf(DeployerError)
    expect(error?.exitCode).to.equal(ExitCode.config)
    expect(error?.message).to.contain(`the source ${source} lies inside deploy_to`)
    expect(error?.hint).to.contain('directory of its own')
  })

  it('refuses a deploy_to inside the source, also one that does not exist yet', async () => {
    const error = await refusal(join(sandbox, 'build'), [
      host('local', 'local', join(sandbox, 'build', 'deploy', 'shop')),
    ])
    expect(error?.message).to.contain('holds deploy_to')
    expect(error?.exitCode).to.equal(ExitCode.config)
  })

  it('sees through a symlink to deploy_to', async () => {
    await symlink(join(sandbox, 'srv', 'shop'), join(sandbox, 'link'))
    const error = await refusal(join(sandbox, 'link', 'releases'), [
      host('local', 'local', join(sandbox, 'srv', 'shop')),
    ])
    expect(error?.message).to.contain('lies inside deploy_to')
  })

  it('leaves SSH hosts and separate directories alone', async () => {
    const deployTo = join(sandbox, 'srv', 'shop')
    expect(await refusal(join(deployTo, 'releases'), [host('web1', 'ssh', deployTo)])).to.equal(null)
    expect(await refusal(join(sandbox, 'build'), [host('local', 'local', deployTo)])).to.equal(null)
  })
})
