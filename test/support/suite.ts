import { rm } from 'node:fs/promises'
import {
  type ConfigOptions,
  DEPLOY_USER,
  makeWorkspace,
  type Workspace,
  writeApp,
  writeConfig,
} from './fixture.js'
import { startSshd, type TestSshd } from './sshd.js'

/** The test sshd of a suite and the workspace of the running test; set by the hooks useSshdWorkspace registers. */
export interface SshdWorkspace {
  readonly sshd: TestSshd
  readonly ws: Workspace
}

/**
 * Registers the hooks an integration suite needs to deploy: one test sshd (logging in as DEPLOY_USER)
 * for the whole suite, and for each test a fresh workspace with the v1 app and a deployer.yml for that
 * sshd, removed afterwards.
 */
export function useSshdWorkspace(options: ConfigOptions = {}): SshdWorkspace {
  const setup = {} as { sshd: TestSshd; ws: Workspace }
  before(async () => {
    setup.sshd = await startSshd({ user: DEPLOY_USER, createUser: true })
  })
  after(async () => {
    await setup.sshd?.stop()
  })
  beforeEach(async () => {
    setup.ws = await makeWorkspace(DEPLOY_USER)
    await writeApp(setup.ws.source, 'v1')
    await writeConfig(setup.ws, setup.sshd, options)
  })
  afterEach(async () => {
    if (setup.ws) await rm(setup.ws.dir, { recursive: true, force: true })
  })
  return setup
}
