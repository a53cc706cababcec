import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { expect } from 'chai'
import {
  type ActionInputs,
  checkSshInputs,
  deployerArgs,
  deployerEnv,
  normaliseFileText,
  parseInputs,
  privateKeyProblem,
  splitArgs,
} from '../../../src/action/inputs.js'
import { ExitCode } from '../../../src/errors.js'

const run = promisify(execFile)

const KNOWN_HOSTS =
  '[127.0.0.1]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGb1zsYzv6w2rK0VfP4vAVxJxSmHOW5v4nImYkDdJYKs\n'
const PRIVATE_KEY = [
  '-----BEGIN OPENSSH PRIVATE KEY-----',
  'b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW',
  '-----END OPENSSH PRIVATE KEY-----',
].join('\n')

const INPUTS: ActionInputs = {
  config: 'deployer.yml',
  command: 'release',
  args: [],
  sshPrivateKey: PRIVATE_KEY,
  knownHosts: KNOWN_HOSTS,
  workingDirectory: '.',
}

describe('splitArgs', () => {
  const cases: [text: string, args: string[]][] = [
    ['', []],
    ['   \n\t ', []],
    ['--host web1 --restart hot', ['--host', 'web1', '--restart', 'hot']],
    ['  --to   12  ', ['--to', '12']],
    ["--source 'build dir'", ['--source', 'build dir']],
    ['--source "build dir"', ['--source', 'build dir']],
    ['--source=build\\ dir', ['--source=build dir']],
    ['--host="web 1"x', ['--host=web 1x']],
    ["''", ['']],
    ['a "" b', ['a', '', 'b']],
    ["'it''s'", ['its']],
    ['"say \\"hi\\""', ['say "hi"']],
    ['"a\\\\b"', ['a\\b']],
    ['"a\\nb"', ['a\\nb']],
    ["'a\\b'", ['a\\b']],
  ]
  for (const [text, args] of cases) {
    it(`splits ${JSON.stringify(text)} as /bin/sh would`, async () => {
      expect(splitArgs(text)).to.deep.equal({ ok: true, args })
      const { stdout } = await run('/bin/sh', ['-c', `set -- ${text}\nfor a do printf '%s\\0' "$a"; done`])
      expect(stdout.split('\0').slice(0, -1)).to.deep.equal(args)
    })
  }

  const literal: [text: string, args: string[]][] = [
    ['--host web1\n--host web2', ['--host', 'web1', '--host', 'web2']],
    ['--source $HOME', ['--source', '$HOME']],
    ['$(rm -rf /) `id`', ['$(rm', '-rf', '/)', '`id`']],
    ['*.rb ~ a;b a|b >out', ['*.rb', '~', 'a;b', 'a|b', '>out']],
  ]
  for (const [text, args] of literal) {
    it(`takes ${JSON.stringify(text)} literally: newlines separate words, nothing expands`, () => {
      expect(splitArgs(text)).to.deep.equal({ ok: true, args })
    })
  }

  const broken: [text: string, problem: string][] = [
    ["--source 'build", "has a ' that is never closed"],
    ['--source "build', 'has a " that is never closed'],
    ['--source build\\', 'ends with a \\ that escapes nothing'],
  ]
  for (const [text, problem] of broken) {
    it(`refuses ${JSON.stringify(text)}`, () => {
      expect(splitArgs(text)).to.deep.equal({ ok: false, problem })
    })
  }
})

describe('parseInputs', () => {
  it('fills the defaults when only the secrets are given', () => {
    expect(parseInputs({ INPUT_SSH_PRIVATE_KEY: PRIVATE_KEY, INPUT_KNOWN_HOSTS: KNOWN_HOSTS })).to.deep.equal(
      {
        ok: true,
        inputs: INPUTS,
      },
    )
  })

  it('treats blank inputs as not given', () => {
    const parsed = parseInputs({ INPUT_CONFIG: ' ', INPUT_COMMAND: '', INPUT_WORKING_DIRECTORY: '' })
    expect(
      parsed.ok && [parsed.inputs.config, parsed.inputs.command, parsed.inputs.workingDirectory],
    ).to.deep.equal(['deployer.yml', 'release', '.'])
  })

  it('reads every input', () => {
    const parsed = parseInputs({
      INPUT_CONFIG: 'deploy/production.yml',
      INPUT_COMMAND: 'rollback',
      INPUT_ARGS: '--to 12 --host web1',
      INPUT_WORKING_DIRECTORY: 'app',
    })
    expect(parsed).to.deep.equal({
      ok: true,
      inputs: {
        config: 'deploy/production.yml',
        command: 'rollback',
        args: ['--to', '12', '--host', 'web1'],
        sshPrivateKey: '',
        knownHosts: '',
        workingDirectory: 'app',
      },
    })
  })

  const refused: [env: NodeJS.ProcessEnv, message: string][] = [
    [
      { INPUT_COMMAND: 'deploy' },
      'The command input must be one of release, rollback, prune, releases, check, not "deploy".',
    ],
    [{ INPUT_ARGS: "--host 'web1" }, "The args input has a ' that is never closed."],
    [{ INPUT_ARGS: '--json' }, 'The args input must not contain --json: the action always passes --json.'],
    [
      { INPUT_ARGS: '--config other.yml' },
      'The args input must not contain --config: use the config input instead.',
    ],
    [
      { INPUT_ARGS: '-cother.yml' },
      'The args input must not contain -cother.yml: use the config input instead.',
    ],
    [
      { INPUT_COMMAND: 'init', INPUT_ARGS: '--config=x.yml' },
      'The command input must be one of release, rollback, prune, releases, check, not "init". The args input must not contain --config=x.yml: use the config input instead.',
    ],
  ]
  for (const [env, message] of refused) {
    it(`refuses ${JSON.stringify(env)} with a usage error`, () => {
      const parsed = parseInputs(env)
      expect(parsed.ok).to.equal(false)
      if (parsed.ok) return
      expect(parsed.error.message).to.equal(message)
      expect(parsed.error.exitCode).to.equal(ExitCode.usage)
      expect(parsed.error.hint).to.match(/with:/)
    })
  }
})

describe('checkSshInputs', () => {
  const web = [
    { hostname: 'web1.example.com', port: 22 },
    { hostname: 'web2.example.com', port: 2222 },
  ]

  it('accepts a key and known_hosts', () => {
    expect(checkSshInputs(INPUTS, web, false)).to.equal(undefined)
  })

  it('needs nothing when no host is reached over SSH', () => {
    expect(checkSshInputs({ ...INPUTS, knownHosts: '', sshPrivateKey: '' }, [], false)).to.equal(undefined)
  })

  it('accepts a running ssh-agent instead of a key', () => {
    expect(checkSshInputs({ ...INPUTS, sshPrivateKey: '' }, web, true)).to.equal(undefined)
  })

  it('refuses a missing known-hosts with the ssh-keyscan commands for each host and how to verify them', () => {
    const refused = checkSshInputs({ ...INPUTS, knownHosts: '  \n' }, web, true)
    expect(refused?.error.message).to.equal(
      'The known-hosts input is empty, and web1.example.com, web2.example.com must be reached over SSH: deployer checks every host key and will not connect to a host it cannot verify.',
    )
    expect(refused?.error.exitCode).to.equal(ExitCode.usage)
    expect(refused?.error.hint).to.contain(
      '`ssh-keyscan web1.example.com >> known_hosts; ssh-keyscan -p 2222 web2.example.com >> known_hosts`',
    )
    expect(refused?.error.hint).to.contain('ssh-keygen -lf')
  })

  it('refuses known-hosts text without a single key line', () => {
    const refused = checkSshInputs(
      { ...INPUTS, knownHosts: '# just a comment\nweb1 not-a-key\n' },
      web,
      false,
    )
    expect(refused?.error.message).to.match(/^The known-hosts input has no host key line/)
    expect(refused?.error.hint).to.contain('ssh-keyscan')
  })

  it('refuses a missing key when no agent runs', () => {
    const refused = checkSshInputs({ ...INPUTS, sshPrivateKey: '' }, web, false)
    expect(refused?.error.message).to.equal(
      'The ssh-private-key input is empty and no SSH agent is running, so there is no key to log in to web1.example.com, web2.example.com with.',
    )
  })

  it('refuses a key that is not a private key, without quoting it', () => {
    const publicKey =
      'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGb1zsYzv6w2rK0VfP4vAVxJxSmHOW5v4nImYkDdJYKs me@laptop'
    const refused = checkSshInputs({ ...INPUTS, sshPrivateKey: publicKey }, web, false)
    expect(refused?.error.message).to.equal(
      'The ssh-private-key input holds a public key, not the private key.',
    )
    expect(JSON.stringify(refused)).to.not.contain('AAAAC3Nza')
  })
})

describe('privateKeyProblem', () => {
  const cases: [what: string, key: string, problem: string | undefined][] = [
    ['an OpenSSH key', PRIVATE_KEY, undefined],
    [
      'an OpenSSH key with CRLF and blank lines around it',
      `\r\n${PRIVATE_KEY.replace(/\n/g, '\r\n')}\r\n\r\n`,
      undefined,
    ],
    ['a PEM RSA key', '-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----', undefined],
    ['a PKCS#8 key', '-----BEGIN PRIVATE KEY-----\nMC4C\n-----END PRIVATE KEY-----', undefined],
    ['a PuTTY key', 'PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none', undefined],
    ['a public key', 'ssh-ed25519 AAAAC3Nza me@laptop', 'holds a public key, not the private key'],
    ['random text', 'hunter2', 'does not start with a -----BEGIN … PRIVATE KEY----- line'],
    [
      'a key cut short',
      PRIVATE_KEY.split('\n').slice(0, 2).join('\n'),
      'does not end with its -----END … PRIVATE KEY----- line (was it cut short?)',
    ],
  ]
  for (const [what, key, problem] of cases) {
    it(`${problem ? 'refuses' : 'accepts'} ${what}`, () => {
      expect(privateKeyProblem(key)).to.equal(problem)
    })
  }
})

describe('normaliseFileText', () => {
  const cases: [text: string, file: string][] = [
    ['a\nb', 'a\nb\n'],
    ['a\r\nb\r\n', 'a\nb\n'],
    ['\n\na\rb\n\n\n', 'a\nb\n'],
  ]
  for (const [text, file] of cases) {
    it(`writes ${JSON.stringify(text)} as ${JSON.stringify(file)}`, () => {
      expect(normaliseFileText(text)).to.equal(file)
    })
  }
})

describe('deployerArgs', () => {
  it('puts the action’s flags before the user’s, so a -- in args cannot swallow them', () => {
    expect(deployerArgs({ ...INPUTS, command: 'prune', args: ['--keep', '3', '--'] })).to.deep.equal([
      'prune',
      '--json',
      '--config',
      'deployer.yml',
      '--keep',
      '3',
      '--',
    ])
  })
})

describe('deployerEnv', () => {
  const env = {
    PATH: '/usr/bin',
    PUMA_CONTROL_TOKEN: 't',
    INPUT_SSH_PRIVATE_KEY: PRIVATE_KEY,
    'INPUT_SSH-PRIVATE-KEY': PRIVATE_KEY,
    INPUT_KNOWN_HOSTS: KNOWN_HOSTS,
    DEPLOYER_HOST_KEY: 'accept-new',
  }

  it('drops every input, points deployer at the files and forces strict host keys', () => {
    expect(deployerEnv(env, { identity: '/tmp/d/id', knownHosts: '/tmp/d/known_hosts' })).to.deep.equal({
      PATH: '/usr/bin',
      PUMA_CONTROL_TOKEN: 't',
      DEPLOYER_SSH_IDENTITY: '/tmp/d/id',
      DEPLOYER_KNOWN_HOSTS: '/tmp/d/known_hosts',
      DEPLOYER_HOST_KEY: 'strict',
    })
  })

  it('leaves identity and known_hosts to the config when the action wrote no file', () => {
    expect(deployerEnv({ PATH: '/usr/bin' }, {})).to.deep.equal({
      PATH: '/usr/bin',
      DEPLOYER_HOST_KEY: 'strict',
    })
  })
})
