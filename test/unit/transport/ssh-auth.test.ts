import { execFile, spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { expect } from 'chai'
import { asRsaSha512, loadKey, readOnce } from '../../../src/transport/ssh-auth.js'

const run = promisify(execFile)

describe('ssh-auth', () => {
  let dir: string
  let encrypted: string
  let plain: string
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'deployer-ssh-auth-unit-'))
    encrypted = join(dir, 'encrypted')
    plain = join(dir, 'plain_rsa')
    // One KDF round: ssh2 decrypts in JavaScript, and the default 16 rounds take seconds per attempt.
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-a', '1', '-N', 'right horse', '-f', encrypted])
    await run('ssh-keygen', ['-q', '-t', 'rsa', '-b', '2048', '-N', '', '-f', plain])
  })
  after(() => rm(dir, { recursive: true, force: true }))

  describe('loadKey', () => {
    const cases: Array<[string, NodeJS.ProcessEnv, string | undefined, string]> = [
      ['unlocks with DEPLOYER_SSH_PASSPHRASE', { DEPLOYER_SSH_PASSPHRASE: 'right horse' }, undefined, 'ok'],
      ['asks when the variable is unset', {}, 'right horse', 'ok'],
      ['reports an encrypted key nobody can unlock', {}, undefined, 'encrypted'],
      ['reports a wrong answer', {}, 'wrong', 'wrong-passphrase'],
      ['reports a wrong variable', { DEPLOYER_SSH_PASSPHRASE: 'wrong' }, undefined, 'wrong-passphrase'],
    ]
    for (const [title, env, answer, outcome] of cases) {
      it(title, async () => {
        const asked: string[] = []
        const load = await loadKey(encrypted, {
          env,
          ask: async (file) => {
            asked.push(file)
            return answer
          },
        })
        expect(load.ok ? 'ok' : load.problem.kind).to.equal(outcome)
        // The variable, when set, is the answer: nobody is asked.
        expect(asked).to.deep.equal(env.DEPLOYER_SSH_PASSPHRASE ? [] : [encrypted])
      })
    }

    it('reports a missing file and a public key', async () => {
      const missing = await loadKey(join(dir, 'nope'), { env: {} })
      expect(missing.ok ? 'ok' : missing.problem.kind).to.equal('missing')
      const publicKey = await loadKey(`${plain}.pub`, { env: {} })
      expect(publicKey.ok ? 'ok' : publicKey.problem.kind).to.equal('public')
    })
  })

  it('signs with rsa-sha2-512 through the wrapped key, verifiably', async () => {
    const load = await loadKey(plain, { env: {} })
    if (!load.ok) throw new Error('the key should load')
    const wrapped = asRsaSha512(load.loaded.key)
    expect(wrapped.type).to.equal('rsa-sha2-512')
    expect(wrapped.getPublicSSH().equals(load.loaded.key.getPublicSSH())).to.equal(true)
    const data = Buffer.from('session data')
    const signature = wrapped.sign(data)
    expect(load.loaded.key.verify(data, signature as Buffer, 'sha512')).to.equal(true)
    expect(load.loaded.key.verify(data, signature as Buffer, 'sha256')).to.equal(false)
  })

  it('reads a pipe once and gives every later reader the same bytes', async () => {
    const fifo = join(dir, 'fifo')
    await run('mkfifo', [fifo])
    const writer = spawn('sh', ['-c', 'printf key-material > "$1"', 'sh', fifo], { stdio: 'ignore' })
    const written = new Promise((resolve) => writer.once('exit', resolve))
    const first = await readOnce(fifo)
    await written
    // A second read of the FIFO itself would block forever: nobody writes to it any more.
    const second = await readOnce(fifo)
    expect([first.toString(), second.toString()]).to.deep.equal(['key-material', 'key-material'])
  })
})
