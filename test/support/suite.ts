import { mkdtemp, realpath, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  type ConfigOptions,
  DEPLOY_USER,
  makeWorkspace,
  type Workspace,
  writeApp,
  writeConfig,
} from './fixture.js'
import { stopPuma } from './puma-app.js'
import { findFreePort, type SshdOptions, startSshd, type TestSshd } from './sshd.js'

/*
 * The mocha hooks integration suites share. Each helper registers its hooks where it is called (a
 * describe block) and returns an object whose getters read what the hooks set up, valid inside tests.
 */

/**
 * One test sshd for the suite, logging in as DEPLOY_USER unless `options` say otherwise; `prepare` runs
 * first (slow one-off work, such as compiling gems, that should not count against the sshd's start).
 */
export function useSshd(
  options: SshdOptions = { user: DEPLOY_USER, createUser: true },
  prepare?: () => Promise<unknown>,
): { readonly sshd: TestSshd } {
  let sshd: TestSshd | undefined
  before(async () => {
    await prepare?.()
    sshd = await startSshd(options)
  })
  after(async () => {
    await sshd?.stop()
  })
  return {
    get sshd() {
      if (!sshd) throw new Error('the suite sshd is not started yet (use it inside a test or hook)')
      return sshd
    },
  }
}

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

/** What a Puma suite's tests work with: the sshd, the workspace and the port Puma is to listen on. */
export interface PumaWorkspace {
  readonly sshd: TestSshd
  readonly ws: Workspace
  readonly port: number
}

export interface PumaWorkspaceOptions {
  /** `each` (the default): a fresh workspace and port per test; `all`: one for the block, whose tests build on each other. */
  scope?: 'each' | 'all'
  /** The sshd to deploy through (an enclosing block's useSshd); without it the helper starts its own. */
  sshd?: () => TestSshd
  /** Runs once the workspace and port exist: write the Puma app and its deployer.yml. */
  setup?: (suite: PumaWorkspace) => Promise<void>
}

/**
 * The hooks of a suite that deploys a Puma app through a real sshd: the sshd (unless given), then per
 * test (or per block) a workspace owned by DEPLOY_USER, a free port and `setup`; afterwards the Puma
 * the test left running is stopped (by the pid in its pidfile) and the workspace removed.
 */
export function usePumaWorkspace(options: PumaWorkspaceOptions = {}): PumaWorkspace {
  const own = options.sshd ? undefined : useSshd()
  const sshdOf = options.sshd ?? (() => (own as { sshd: TestSshd }).sshd)
  let ws: Workspace | undefined
  let port: number | undefined
  const suite: PumaWorkspace = {
    get sshd() {
      return sshdOf()
    },
    get ws() {
      if (!ws) throw new Error('no workspace yet (use it inside a test or hook)')
      return ws
    },
    get port() {
      if (port === undefined) throw new Error('no port yet (use it inside a test or hook)')
      return port
    },
  }
  const setUp = async () => {
    ws = await makeWorkspace(DEPLOY_USER)
    port = await findFreePort()
    await options.setup?.(suite)
  }
  const tearDown = async () => {
    if (!ws) return
    await stopPuma(ws)
    await rm(ws.dir, { recursive: true, force: true })
    ws = undefined
  }
  if (options.scope === 'all') {
    before(setUp)
    after(tearDown)
  } else {
    beforeEach(setUp)
    afterEach(tearDown)
  }
  return suite
}

/**
 * A scratch directory for the suite, with symlinks resolved (/proc shows resolved paths, and tmpdir()
 * may lie behind a symlink), removed after the suite. `dir` is valid inside tests and hooks.
 */
export function useTempDir(prefix: string): { readonly dir: string } {
  let dir: string | undefined
  before(async () => {
    dir = await realpath(await mkdtemp(join(tmpdir(), prefix)))
  })
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true })
  })
  return {
    get dir() {
      if (!dir) throw new Error('no temporary directory yet (use it inside a test or hook)')
      return dir
    },
  }
}
