import { execFile } from 'node:child_process'
import { createHmac, randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { expect } from 'chai'
import {
  checkHostKey,
  fingerprint,
  formatKnownHostsLine,
  hostKeyAlgorithmsFor,
  keyTypeOf,
  knownHostName,
  lookupHostKeys,
  matchesHost,
  parseKnownHosts,
} from '../../../src/transport/known-hosts.js'

const run = promisify(execFile)

/** A wire-format public key blob: SSH strings for the type and some key material. */
function blob(type: string, seed: string): Buffer {
  const parts = [Buffer.from(type), Buffer.from(seed.padEnd(32, '.'))]
  return Buffer.concat(
    parts.flatMap((part) => {
      const length = Buffer.alloc(4)
      length.writeUInt32BE(part.length)
      return [length, part]
    }),
  )
}

const ED_A = blob('ssh-ed25519', 'a')
const ED_B = blob('ssh-ed25519', 'b')
const ECDSA = blob('ecdsa-sha2-nistp256', 'c')
const RSA = blob('ssh-rsa', 'd')
const b64 = (key: Buffer) => key.toString('base64')

/** `|1|salt|hmac` for a name, computed here independently of the code under test. */
function hashed(name: string, salt = randomBytes(20)): string {
  return `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`
}

describe('parseKnownHosts', () => {
  it('reads markers, hosts, types, keys and 1-based line numbers, skipping what is not a key line', () => {
    const text = [
      '# a comment',
      '',
      `web1,10.0.0.1 ssh-ed25519 ${b64(ED_A)} me@laptop`,
      `@revoked * ssh-ed25519 ${b64(ED_B)}`,
      `@cert-authority *.example.com ssh-ed25519 ${b64(ED_A)}`,
      `   [web2]:2222 ecdsa-sha2-nistp256 ${b64(ECDSA)}\r`,
      '@unknown-marker web3 ssh-ed25519 AAAA',
      'web4 ssh-ed25519',
      'web5 ssh-ed25519 not*base64',
      `web6 ssh-rsa ${b64(ED_A)}`,
    ].join('\n')
    expect(parseKnownHosts(text)).to.deep.equal([
      { line: 3, revoked: false, hosts: 'web1,10.0.0.1', keyType: 'ssh-ed25519', key: ED_A },
      { line: 4, revoked: true, hosts: '*', keyType: 'ssh-ed25519', key: ED_B },
      { line: 6, revoked: false, hosts: '[web2]:2222', keyType: 'ecdsa-sha2-nistp256', key: ECDSA },
    ])
  })

  it('reads nothing from an empty file', () => {
    expect(parseKnownHosts('')).to.deep.equal([])
  })
})

describe('knownHostName', () => {
  const cases: Array<[string, number, string]> = [
    ['web1', 22, 'web1'],
    ['Web1.Example.COM', 22, 'web1.example.com'],
    ['127.0.0.1', 2222, '[127.0.0.1]:2222'],
    ['::1', 2222, '[::1]:2222'],
  ]
  for (const [hostname, port, expected] of cases) {
    it(`names ${hostname} port ${port} ${expected}`, () => {
      expect(knownHostName(hostname, port)).to.equal(expected)
    })
  }
})

describe('matchesHost', () => {
  const salt = randomBytes(20)
  const cases: Array<[hosts: string, name: string, expected: boolean]> = [
    ['web1', 'web1', true],
    ['web1', 'web10', false],
    ['web0,web1,10.0.0.1', 'web1', true],
    ['WEB1', 'web1', true],
    ['*.example.com', 'web1.example.com', true],
    ['*.example.com', 'example.com', false],
    ['web?', 'web7', true],
    ['web?', 'web77', false],
    ['*.example.com,!db.example.com', 'db.example.com', false],
    ['!db.example.com,*.example.com', 'web.example.com', true],
    ['!web1', 'web1', false],
    ['[127.0.0.1]:2222', '[127.0.0.1]:2222', true],
    ['[127.0.0.1]:2222', '127.0.0.1', false],
    ['127.0.0.1', '[127.0.0.1]:2222', false],
    ['[*.example.com]:2222', '[web.example.com]:2222', true],
    ['a.c', 'abc', false],
    [hashed('web1', salt), 'web1', true],
    [hashed('web1', salt), 'web2', false],
    [hashed('[127.0.0.1]:2222', salt), '[127.0.0.1]:2222', true],
    ['|1|bm90LWJhc2U2NA==|', 'web1', false],
  ]
  for (const [hosts, name, expected] of cases) {
    it(`${expected ? 'matches' : 'does not match'} ${name} against ${hosts}`, () => {
      expect(matchesHost(hosts, name)).to.equal(expected)
    })
  }
})

describe('lookupHostKeys', () => {
  const text = [
    `web1 ssh-ed25519 ${b64(ED_A)}`,
    `[web1]:2222 ssh-ed25519 ${b64(ED_B)}`,
    `${hashed('[127.0.0.1]:2200')} ecdsa-sha2-nistp256 ${b64(ECDSA)}`,
    `@revoked * ssh-rsa ${b64(RSA)}`,
    `db1 ssh-ed25519 ${b64(ED_B)}`,
  ].join('\n')
  const cases: Array<[hostname: string, port: number, lines: number[]]> = [
    ['web1', 22, [1, 4]],
    ['WEB1', 22, [1, 4]],
    ['web1', 2222, [2, 4]],
    ['127.0.0.1', 2200, [3, 4]],
    ['127.0.0.1', 22, [4]],
    ['unknown', 22, [4]],
  ]
  for (const [hostname, port, lines] of cases) {
    it(`finds lines ${lines.join(', ')} for ${hostname} port ${port}`, () => {
      expect(lookupHostKeys(text, hostname, port).map((entry) => entry.line)).to.deep.equal(lines)
    })
  }
})

describe('checkHostKey', () => {
  const entry = (line: number, key: Buffer, revoked = false) => ({
    line,
    revoked,
    hosts: 'web1',
    keyType: keyTypeOf(key),
    key,
  })
  const cases: Array<[what: string, entries: ReturnType<typeof entry>[], offered: Buffer, status: string]> = [
    ['accepts a recorded key', [entry(1, ED_A)], ED_A, 'known'],
    ['accepts one of several recorded keys', [entry(1, ECDSA), entry(2, ED_A)], ED_A, 'known'],
    ['reports an unknown host', [], ED_A, 'unknown'],
    ['reports a host with only an unrelated revoked key as unknown', [entry(1, RSA, true)], ED_A, 'unknown'],
    ['reports a different key of the same type as changed', [entry(1, ED_B)], ED_A, 'changed'],
    ['reports a key of a type not recorded as changed', [entry(1, ECDSA)], ED_A, 'changed'],
    ['refuses a revoked key', [entry(1, ED_A, true)], ED_A, 'revoked'],
    [
      'refuses a revoked key even when also recorded as valid',
      [entry(1, ED_A), entry(2, ED_A, true)],
      ED_A,
      'revoked',
    ],
  ]
  for (const [what, entries, offered, status] of cases) {
    it(what, () => {
      expect(checkHostKey(entries, offered).status).to.equal(status)
    })
  }

  it('names every recorded entry of a changed host', () => {
    const check = checkHostKey([entry(3, ED_B), entry(7, ECDSA), entry(9, RSA, true)], ED_A)
    expect(check.status === 'changed' && check.entries.map((e) => e.line)).to.deep.equal([3, 7])
  })
})

describe('keyTypeOf', () => {
  it('reads the first SSH string of the blob', () => {
    expect(keyTypeOf(ED_A)).to.equal('ssh-ed25519')
    expect(keyTypeOf(ECDSA)).to.equal('ecdsa-sha2-nistp256')
  })

  const bad: Array<[string, Buffer]> = [
    ['an empty buffer', Buffer.alloc(0)],
    ['a length beyond the end', Buffer.from([0, 0, 0, 20, 0x73, 0x73, 0x68])],
    ['a zero length', Buffer.from([0, 0, 0, 0])],
    ['a non-printable type', Buffer.from([0, 0, 0, 2, 0x01, 0x02])],
  ]
  for (const [what, value] of bad) {
    it(`throws on ${what}`, () => {
      expect(() => keyTypeOf(value)).to.throw(/Not an SSH public key blob/)
    })
  }
})

describe('fingerprint', () => {
  it('is SHA256: and unpadded base64 of the blob', () => {
    expect(fingerprint(ED_A)).to.match(/^SHA256:[A-Za-z0-9+/]{43}$/)
    expect(fingerprint(ED_A)).not.to.equal(fingerprint(ED_B))
  })
})

describe('formatKnownHostsLine', () => {
  const cases: Array<[string, number, Buffer, string]> = [
    ['web1', 22, ED_A, `web1 ssh-ed25519 ${b64(ED_A)}`],
    ['Web1', 22, ED_A, `web1 ssh-ed25519 ${b64(ED_A)}`],
    ['127.0.0.1', 2222, ECDSA, `[127.0.0.1]:2222 ecdsa-sha2-nistp256 ${b64(ECDSA)}`],
  ]
  for (const [hostname, port, key, expected] of cases) {
    it(`writes ${expected.slice(0, 40)}...`, () => {
      expect(formatKnownHostsLine(hostname, port, key)).to.equal(expected)
    })
  }

  it('writes lines that lookupHostKeys finds again', () => {
    const line = formatKnownHostsLine('127.0.0.1', 2222, ED_A)
    const [found] = lookupHostKeys(`${line}\n`, '127.0.0.1', 2222)
    expect(found?.key).to.deep.equal(ED_A)
  })
})

describe('hostKeyAlgorithmsFor', () => {
  const cases: Array<[string[], string[]]> = [
    [[], []],
    [['ssh-ed25519'], ['ssh-ed25519']],
    [
      ['ecdsa-sha2-nistp256', 'ssh-ed25519'],
      ['ecdsa-sha2-nistp256', 'ssh-ed25519'],
    ],
    [['ssh-rsa'], ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa']],
    [
      ['ssh-ed25519', 'ssh-ed25519', 'ssh-rsa'],
      ['ssh-ed25519', 'rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'],
    ],
  ]
  for (const [types, expected] of cases) {
    it(`maps [${types.join(', ')}] to [${expected.join(', ')}]`, () => {
      expect(hostKeyAlgorithmsFor(types)).to.deep.equal(expected)
    })
  }
})

describe('known_hosts files written by OpenSSH', function () {
  this.timeout(20_000)
  let dir: string
  let publicKey: Buffer
  let publicKeyFile: string

  before(async function () {
    dir = await mkdtemp(join(tmpdir(), 'deployer-known-hosts-'))
    try {
      await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'key')])
    } catch (error) {
      // Without OpenSSH's tools there is nothing to compare with.
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') this.skip()
      throw error
    }
    publicKeyFile = join(dir, 'key.pub')
    publicKey = Buffer.from((await readFile(publicKeyFile, 'utf8')).split(' ')[1]!, 'base64')
  })
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true })
  })

  it('gives the fingerprint ssh-keygen -l prints', async () => {
    const { stdout } = await run('ssh-keygen', ['-l', '-f', publicKeyFile])
    expect(stdout.split(' ')[1]).to.equal(fingerprint(publicKey))
  })

  it('finds hosts in a file hashed by ssh-keygen -H', async () => {
    const file = join(dir, 'known_hosts')
    await writeFile(
      file,
      `${formatKnownHostsLine('127.0.0.1', 2222, publicKey)}\n${formatKnownHostsLine('web1.example.com', 22, publicKey)}\n`,
    )
    await run('ssh-keygen', ['-H', '-f', file])
    const text = await readFile(file, 'utf8')
    expect(text).not.to.include('127.0.0.1')
    expect(text).not.to.include('web1')
    expect(lookupHostKeys(text, '127.0.0.1', 2222).map((entry) => entry.key)).to.deep.equal([publicKey])
    expect(lookupHostKeys(text, 'WEB1.example.com', 22)).to.have.length(1)
    expect(lookupHostKeys(text, '127.0.0.1', 22)).to.have.length(0)
  })
})
