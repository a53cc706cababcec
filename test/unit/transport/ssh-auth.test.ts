import { execFile, spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { expect } from 'chai'
import type { AnyAuthMethod, ParsedKey } from 'ssh2'
import {
  type AuthPlan,
  asRsaSha512,
  createAuthHandler,
  loadKey,
  noAttempts,
  readOnce,
} from '../../../src/transport/ssh-auth.js'

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

  describe('createAuthHandler with user certificates', () => {
    let ca: string
    let certified: string
    let other: string
    before(async () => {
      ca = join(dir, 'ca')
      certified = join(dir, 'certified')
      other = join(dir, 'other')
      await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', ca])
      await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', certified])
      await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', other])
      await run('ssh-keygen', ['-q', '-s', ca, '-I', 'unit', '-n', 'deploy', `${certified}.pub`])
    })

    /** Every method the handler offers, in order, as `type key-type`. */
    async function offers(plan: Partial<AuthPlan>) {
      const attempts = noAttempts()
      const handler = createAuthHandler(
        { user: 'deploy', identityFiles: [], identitiesOnly: false, certificateFiles: [], env: {}, ...plan },
        attempts,
      )
      const offered: string[] = []
      for (let round = 0; round < 10; round++) {
        const method = await new Promise<AnyAuthMethod | false>((resolve) =>
          handler(round === 0 ? null : ['publickey'], null, (next) => resolve(next as AnyAuthMethod | false)),
        )
        if (!method) break
        offered.push(`${method.type} ${((method as { key?: ParsedKey }).key as ParsedKey).type}`)
      }
      return { offered, attempts }
    }

    it('offers KEY-cert.pub before the key itself, as OpenSSH does', async () => {
      const { offered, attempts } = await offers({ identityFiles: [certified] })
      expect(offered).to.deep.equal(['publickey ssh-ed25519-cert-v01@openssh.com', 'publickey ssh-ed25519'])
      expect(attempts.certificates).to.have.length(1)
      expect(attempts.certificates[0]).to.match(new RegExp(`^${certified}-cert.pub \\(ID "unit", CA SHA256:`))
    })

    it('pairs a CertificateFile with the identity it certifies, not with the others', async () => {
      const { offered, attempts } = await offers({
        identityFiles: [other, certified],
        certificateFiles: [`${certified}-cert.pub`],
      })
      expect(offered).to.deep.equal([
        'publickey ssh-ed25519',
        'publickey ssh-ed25519-cert-v01@openssh.com',
        'publickey ssh-ed25519',
      ])
      expect(attempts.skipped).to.deep.equal([])
    })

    it('skips a certificate for another user or out of its validity window, saying why', async () => {
      const forRoot = await offers({ user: 'root', identityFiles: [certified] })
      expect(forRoot.offered).to.deep.equal(['publickey ssh-ed25519'])
      expect(forRoot.attempts.skipped).to.deep.equal([
        {
          path: `${certified}-cert.pub`,
          problem: { kind: 'certificate', message: 'is valid for deploy, not for root' },
        },
      ])
      const expired = join(dir, 'expired')
      await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', expired])
      await run('ssh-keygen', [
        '-q',
        '-s',
        ca,
        '-I',
        'old',
        '-V',
        '20200101000000Z:20210101000000Z',
        `${expired}.pub`,
      ])
      const late = await offers({ identityFiles: [expired], now: () => new Date('2026-01-01T00:00:00Z') })
      expect(late.offered).to.deep.equal(['publickey ssh-ed25519'])
      expect(late.attempts.skipped.map((entry) => entry.problem)).to.deep.equal([
        { kind: 'certificate', message: 'expired at 2021-01-01T00:00:00Z' },
      ])
    })

    it('names a CertificateFile that certifies none of the identities', async () => {
      const { offered, attempts } = await offers({
        identityFiles: [other],
        certificateFiles: [`${certified}-cert.pub`],
      })
      expect(offered).to.deep.equal(['publickey ssh-ed25519'])
      expect(attempts.skipped).to.have.length(1)
      expect(attempts.skipped[0]!.path).to.equal(`${certified}-cert.pub`)
      expect(attempts.skipped[0]!.problem).to.deep.include({ kind: 'certificate' })
    })

    it('reports a missing CertificateFile once, however many identities there are', async () => {
      const missing = join(dir, 'no-such-cert.pub')
      const { attempts } = await offers({ identityFiles: [other, certified], certificateFiles: [missing] })
      expect(attempts.skipped).to.deep.equal([{ path: missing, problem: { kind: 'missing' } }])
    })

    it('says so instead of offering a certificate the client cannot send', async () => {
      const { offered, attempts } = await offers({
        identityFiles: [certified],
        certificatesEnabled: () => false,
      })
      expect(offered).to.deep.equal(['publickey ssh-ed25519'])
      expect(attempts.skipped[0]!.problem).to.deep.include({ kind: 'certificate' })
    })
  })
})
