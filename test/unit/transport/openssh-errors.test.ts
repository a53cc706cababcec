import { expect } from 'chai'
import { ConnectionError, ExitCode, HostKeyError } from '../../../src/errors.js'
import { classifySshFailure } from '../../../src/transport/openssh-errors.js'

const CONTEXT = {
  name: 'web1',
  user: 'deploy',
  hostname: '127.0.0.1',
  port: 2222,
  ssh: { knownHosts: '/kh', hostKey: 'strict' as const, connectTimeout: 10, identity: '/keys/id' },
}

// What OpenSSH 9.2 prints for each failure, as captured from the test sshd.
const CHANGED = [
  '@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@',
  '@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @',
  '@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@',
  'IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!',
  'The fingerprint for the ED25519 key sent by the remote host is\nSHA256:M4xsuhi/pgyIyCbj20dE/eqy86nbbNc5+1QLjjcNSwc.',
  'Please contact your system administrator.',
  'Add correct host key in /kh to get rid of this message.',
  'Offending ED25519 key in /kh:3',
  '  remove with:',
  '  ssh-keygen -f "/kh" -R "[127.0.0.1]:2222"',
  'Host key for [127.0.0.1]:2222 has changed and you have requested strict checking.',
  'Host key verification failed.',
].join('\r\n')

const cases: Array<{
  what: string
  stderr: string
  type: typeof HostKeyError | typeof ConnectionError
  message: RegExp
  hint?: RegExp
  identity?: undefined
}> = [
  {
    what: 'a changed host key',
    stderr: CHANGED,
    type: HostKeyError,
    message:
      /the host key of \[127\.0\.0\.1\]:2222 has changed: it offered the ED25519 key SHA256:M4xsuhi\/pgyIyCbj20dE\/eqy86nbbNc5\+1QLjjcNSwc, but \/kh records the ED25519 key at \/kh:3/,
    hint: /ssh-keygen -R '\[127\.0\.0\.1\]:2222' -f \/kh/,
  },
  {
    what: 'an unknown host in strict mode',
    stderr:
      'No ED25519 host key is known for [127.0.0.1]:2222 and you have requested strict checking.\r\nHost key verification failed.\r\n',
    type: HostKeyError,
    message: /\[127\.0\.0\.1\]:2222 is not in \/kh; it offered an ED25519 key/,
    hint: /ssh-keyscan -p 2222 127\.0\.0\.1 >> \/kh.*accept-new/,
  },
  {
    what: 'a revoked key',
    stderr:
      '@       WARNING: REVOKED HOST KEY DETECTED!               @\r\nED25519 host key for [127.0.0.1]:2222 was revoked and you have requested strict checking.\r\nHost key verification failed.\r\n',
    type: HostKeyError,
    message: /marks @revoked/,
  },
  {
    what: 'a known_hosts file accept-new cannot write',
    stderr: 'Failed to add the host to the list of known hosts (/kh).\r\n',
    type: HostKeyError,
    message: /cannot record the host key of \[127\.0\.0\.1\]:2222 in \/kh/,
  },
  {
    what: 'a refused key',
    stderr: 'deploy@127.0.0.1: Permission denied (publickey).\r\n',
    type: ConnectionError,
    message: /deploy@127\.0\.0\.1:2222 refused the key \/keys\/id/,
    hint: /authorized_keys/,
  },
  {
    what: 'a missing key file',
    stderr:
      'no such identity: /keys/id: No such file or directory\r\ndeploy@127.0.0.1: Permission denied (publickey).\r\n',
    type: ConnectionError,
    message: /cannot read the private key \/keys\/id \(ENOENT\)/,
  },
  {
    what: 'a closed port',
    stderr: 'ssh: connect to host 127.0.0.1 port 2222: Connection refused\r\n',
    type: ConnectionError,
    message: /nothing is listening on 127\.0\.0\.1:2222/,
  },
  {
    what: 'a name that does not resolve',
    stderr: 'ssh: Could not resolve hostname no-such-host.invalid: Name or service not known\r\n',
    type: ConnectionError,
    message: /the name no-such-host\.invalid does not resolve \(Name or service not known\)/,
  },
  {
    what: 'a port that never speaks SSH',
    stderr: 'Connection timed out during banner exchange\r\nConnection to 127.0.0.1 port 2222 timed out\r\n',
    type: ConnectionError,
    message: /no SSH handshake with 127\.0\.0\.1:2222 within 10 s/,
  },
  {
    what: 'anything else, quoting ssh',
    stderr: 'kex_exchange_identification: Connection closed by remote host\r\n',
    type: ConnectionError,
    message:
      /ssh could not connect to deploy@127\.0\.0\.1:2222: kex_exchange_identification: Connection closed by remote host/,
    hint: /ssh -v -p 2222 deploy@127\.0\.0\.1 true/,
  },
]

describe('classifySshFailure', () => {
  for (const { what, stderr, type, message, hint } of cases) {
    it(`reports ${what}`, () => {
      const error = classifySshFailure(stderr, CONTEXT)
      expect(error).to.be.instanceOf(type)
      expect(error.exitCode).to.equal(type === HostKeyError ? ExitCode.hostKey : ExitCode.connection)
      expect(error.message).to.match(/^Host web1: /)
      expect(error.message).to.match(message)
      if (hint) expect(error.hint).to.match(hint)
    })
  }

  it('names the agent, not a key, when no ssh.identity is set', () => {
    const error = classifySshFailure('deploy@127.0.0.1: Permission denied (publickey).\r\n', {
      ...CONTEXT,
      ssh: { ...CONTEXT.ssh, identity: undefined },
    })
    expect(error.message).to.include('refused every key ssh offered')
    expect(error.hint).to.include('ssh-add -l')
  })

  it('points at ssh_config’s known_hosts files when deployer.yml names none', () => {
    const error = classifySshFailure(
      'No ED25519 host key is known for [127.0.0.1]:2222 and you have requested strict checking.\r\nHost key verification failed.\r\n',
      { ...CONTEXT, ssh: { ...CONTEXT.ssh, explicit: [] } },
    )
    expect(error).to.be.instanceOf(HostKeyError)
    expect(error.message).to.include('is not in the known_hosts files of your ssh_config')
    expect(error.message).to.not.include('/kh')
  })

  it('names neither user nor port that ssh_config supplied', () => {
    const error = classifySshFailure('Connection closed by UNKNOWN port 65535\r\n', {
      ...CONTEXT,
      hostname: 'web',
      ssh: { ...CONTEXT.ssh, explicit: [] },
    })
    expect(error.message).to.include('ssh could not connect to web: Connection closed by UNKNOWN port 65535')
    expect(error.hint).to.include('`ssh -v web true`')
  })
})
