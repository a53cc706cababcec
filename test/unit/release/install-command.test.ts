import { spawn } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect } from 'chai'
import { layoutFor, partialPath } from '../../../src/release/layout.js'
import { INSTALL_TIMED_OUT, installCommand } from '../../../src/release/remote-commands.js'
import { waitFor } from '../../support/wait.js'

function sh(script: string): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', script], { stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8')
    })
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stderr }))
  })
}

/** Whether a process with `pid` (read from a file the install wrote) still runs. */
async function alive(pidFile: string): Promise<boolean> {
  const pid = Number((await readFile(pidFile, 'utf8')).trim())
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

describe('installCommand through /bin/sh', function () {
  this.timeout(30_000)
  let dir: string
  const layout = () => layoutFor(join(dir, 'app'))

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'deployer-install-'))
    await mkdir(partialPath(layout(), 3), { recursive: true })
    await mkdir(layout().meta, { recursive: true })
  })
  afterEach(() => rm(dir, { recursive: true, force: true }))

  it('runs the command in the partial release and passes its exit status on', async () => {
    const result = await sh(
      installCommand(layout(), 3, 'test "$DEPLOYER_RELEASE" = 3 && pwd >&2; exit 4', 60),
    )
    expect(result.code).to.equal(4)
    expect(result.stderr.trim()).to.equal(partialPath(layout(), 3))
  })

  it('stops what the command left running in its process group when it ends', async () => {
    const pidFile = join(dir, 'bg.pid')
    const result = await sh(installCommand(layout(), 3, `sleep 300 & echo $! > ${pidFile}`, 60))
    expect(result.code).to.equal(0)
    await waitFor(async () => !(await alive(pidFile)), { what: 'the background sleep to be stopped' })
  })

  it('stops the command and its processes after the timeout, with a status deployer reads as timed out', async () => {
    const pidFile = join(dir, 'bg.pid')
    const result = await sh(installCommand(layout(), 3, `sleep 300 & echo $! > ${pidFile}; sleep 300`, 1))
    expect(INSTALL_TIMED_OUT as readonly (number | null)[]).to.include(result.code)
    await waitFor(async () => !(await alive(pidFile)), { what: 'the background sleep to be stopped' })
  })
})
