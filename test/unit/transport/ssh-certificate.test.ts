import { expect } from 'chai'
import {
  CertificateFormatError,
  certificateAlgorithms,
  certificateProblem,
  certifiedKeyType,
  parseCertificate,
  parseCertificateFile,
} from '../../../src/transport/ssh-certificate.js'

// Made with ssh-keygen (OpenSSH 9.2) by one CA: `-s ca -I deploy-key -n deploy,ops -z 42 -V
// 20260101000000:20270101000000 user.pub` (UTC), an ECDSA key with no principals and no expiry, an RSA key
// for `deploy`, and a host certificate (`-h -n web1.example`). Public data only.
const CA = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILp6ombn3XNRPIIM/m5m+0V2eBgKblE/peoo+lIXfMsy ca'
const USER_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKXrKkl/ZY/zAmLZr4nrsftpwhK66YFOUVrlLQHvRSwH user'
const USER_CERT =
  'ssh-ed25519-cert-v01@openssh.com AAAAIHNzaC1lZDI1NTE5LWNlcnQtdjAxQG9wZW5zc2guY29tAAAAIE+ACIsAV7vtwv7lpkSvmSVIUBIQDtZhwqKMWm7tKlPLAAAAIKXrKkl/ZY/zAmLZr4nrsftpwhK66YFOUVrlLQHvRSwHAAAAAAAAACoAAAABAAAACmRlcGxveS1rZXkAAAARAAAABmRlcGxveQAAAANvcHMAAAAAaVW5AAAAAABrNuyAAAAAAAAAAIIAAAAVcGVybWl0LVgxMS1mb3J3YXJkaW5nAAAAAAAAABdwZXJtaXQtYWdlbnQtZm9yd2FyZGluZwAAAAAAAAAWcGVybWl0LXBvcnQtZm9yd2FyZGluZwAAAAAAAAAKcGVybWl0LXB0eQAAAAAAAAAOcGVybWl0LXVzZXItcmMAAAAAAAAAAAAAADMAAAALc3NoLWVkMjU1MTkAAAAgunqiZufdc1E8ggz+bmb7RXZ4GApuUT+l6ij6Uhd8yzIAAABTAAAAC3NzaC1lZDI1NTE5AAAAQH1DK8S6Q4kulxYSmnOSD7sVh0dEuMckyEWgJY1X/iMOjfgIn7u5K3g/kUQQkZhrXgLSDYiAgxRBZ3lNI1YbxQw= user'
const ECDSA_KEY =
  'ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBM6rdOVCqX4wWElwjH41c/S2UCCm3Bi/bFXNbSPU824beU1KLdMV9mSzwHDGrbG9aGxENdNVDW0oMNvTsyYeZUY= e'
const ECDSA_CERT =
  'ecdsa-sha2-nistp256-cert-v01@openssh.com AAAAKGVjZHNhLXNoYTItbmlzdHAyNTYtY2VydC12MDFAb3BlbnNzaC5jb20AAAAgRqd26zPxacqtIEdbbIbz+E6Rlgls/l/oSfX1JwIrlMsAAAAIbmlzdHAyNTYAAABBBM6rdOVCqX4wWElwjH41c/S2UCCm3Bi/bFXNbSPU824beU1KLdMV9mSzwHDGrbG9aGxENdNVDW0oMNvTsyYeZUYAAAAAAAAAAAAAAAEAAAAJZWNkc2Eta2V5AAAAAAAAAAAAAAAA//////////8AAAAAAAAAggAAABVwZXJtaXQtWDExLWZvcndhcmRpbmcAAAAAAAAAF3Blcm1pdC1hZ2VudC1mb3J3YXJkaW5nAAAAAAAAABZwZXJtaXQtcG9ydC1mb3J3YXJkaW5nAAAAAAAAAApwZXJtaXQtcHR5AAAAAAAAAA5wZXJtaXQtdXNlci1yYwAAAAAAAAAAAAAAMwAAAAtzc2gtZWQyNTUxOQAAACC6eqJm591zUTyCDP5uZvtFdngYCm5RP6XqKPpSF3zLMgAAAFMAAAALc3NoLWVkMjU1MTkAAABAKg6MnjivYQsKijF+bJDp2tPqiCvAXREzflOhlqEH8FNOQYQud2qBQ461FvtIKluBzuFtU83mfgJF++WZ6rNKAg== e'
const RSA_KEY =
  'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDUvqylsB1wQcVRRA5jYBi1mC5U4cvMEgbbkrpjuMSExK//hNG3TREGUKKEy0upnLBX2/zG+exzmzkWyq3HAZ4ZycywMVxxaXzJslZnxPaGUi0rG2/X9l72GdFgX9zL1GmHbOmg2r5smDojWityDSeHbbsKYdGIbgQB6u+m9RGJ3Q== r'
const RSA_CERT =
  'ssh-rsa-cert-v01@openssh.com AAAAHHNzaC1yc2EtY2VydC12MDFAb3BlbnNzaC5jb20AAAAg1TpdF0HeOsaLlwFwoKzH75X3NXwj/5oxAszb5XSHqTsAAAADAQABAAAAgQDUvqylsB1wQcVRRA5jYBi1mC5U4cvMEgbbkrpjuMSExK//hNG3TREGUKKEy0upnLBX2/zG+exzmzkWyq3HAZ4ZycywMVxxaXzJslZnxPaGUi0rG2/X9l72GdFgX9zL1GmHbOmg2r5smDojWityDSeHbbsKYdGIbgQB6u+m9RGJ3QAAAAAAAAAAAAAAAQAAAAdyc2Eta2V5AAAACgAAAAZkZXBsb3kAAAAAAAAAAP//////////AAAAAAAAAIIAAAAVcGVybWl0LVgxMS1mb3J3YXJkaW5nAAAAAAAAABdwZXJtaXQtYWdlbnQtZm9yd2FyZGluZwAAAAAAAAAWcGVybWl0LXBvcnQtZm9yd2FyZGluZwAAAAAAAAAKcGVybWl0LXB0eQAAAAAAAAAOcGVybWl0LXVzZXItcmMAAAAAAAAAAAAAADMAAAALc3NoLWVkMjU1MTkAAAAgunqiZufdc1E8ggz+bmb7RXZ4GApuUT+l6ij6Uhd8yzIAAABTAAAAC3NzaC1lZDI1NTE5AAAAQLHHVVNQD/kXscaZh+fVauzB13RpMWPTWAoUWXo3slttfEajZVdgHfCzId8ob+YUizt8A7N7XqfMGMs7so/JTgI= r'
const HOST_CERT =
  'ssh-ed25519-cert-v01@openssh.com AAAAIHNzaC1lZDI1NTE5LWNlcnQtdjAxQG9wZW5zc2guY29tAAAAIFcod3Ia55vpADq0ZWXi1a7Ll65OIxnM1vL6YBi3rtmeAAAAIChCZcCDueMBmi4LqldhYMc8ECz1e9DxdTTn+9ZREimsAAAAAAAAAAAAAAACAAAACGhvc3Qta2V5AAAAEAAAAAx3ZWIxLmV4YW1wbGUAAAAAAAAAAP//////////AAAAAAAAAAAAAAAAAAAAMwAAAAtzc2gtZWQyNTUxOQAAACC6eqJm591zUTyCDP5uZvtFdngYCm5RP6XqKPpSF3zLMgAAAFMAAAALc3NoLWVkMjU1MTkAAABADUU4ojhR6Wm53bG9jAo1a3L9QVnyvQxv3rMepbCVKUq5U+YIlQVm/afk3ZXTPj8Q46XLSAp6LIjGX/Zf5P7MBQ== h'

const blobOf = (line: string) => Buffer.from(line.split(' ')[1]!, 'base64')
const FOREVER = 2n ** 64n - 1n

describe('ssh-certificate', () => {
  describe('parseCertificate', () => {
    const cases: Array<
      [string, string, string, Partial<ReturnType<typeof parseCertificate>> & { publicKeyOf: string }]
    > = [
      [
        'an ed25519 user certificate with principals, serial and a validity window',
        USER_CERT,
        'ssh-ed25519',
        {
          kind: 'user',
          keyId: 'deploy-key',
          serial: 42n,
          principals: ['deploy', 'ops'],
          validAfter: BigInt(Date.UTC(2026, 0, 1) / 1000),
          validBefore: BigInt(Date.UTC(2027, 0, 1) / 1000),
          publicKeyOf: USER_KEY,
        },
      ],
      [
        'an ECDSA certificate for any principal, valid forever',
        ECDSA_CERT,
        'ecdsa-sha2-nistp256',
        {
          kind: 'user',
          keyId: 'ecdsa-key',
          principals: [],
          validAfter: 0n,
          validBefore: FOREVER,
          publicKeyOf: ECDSA_KEY,
        },
      ],
      [
        'an RSA certificate',
        RSA_CERT,
        'ssh-rsa',
        { kind: 'user', keyId: 'rsa-key', principals: ['deploy'], publicKeyOf: RSA_KEY },
      ],
      [
        'a host certificate',
        HOST_CERT,
        'ssh-ed25519',
        {
          kind: 'host',
          keyId: 'host-key',
          principals: ['web1.example'],
          publicKeyOf: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIChCZcCDueMBmi4LqldhYMc8ECz1e9DxdTTn+9ZREims',
        },
      ],
    ]
    for (const [title, line, keyType, { publicKeyOf, ...expected }] of cases) {
      it(`reads ${title}`, () => {
        const certificate = parseCertificate(blobOf(line))
        expect(certificate.type).to.equal(line.split(' ')[0])
        expect(certificate.keyType).to.equal(keyType)
        expect(certificate).to.deep.include(expected)
        // The certified key, re-encoded as a plain key, is byte for byte the key's own .pub blob.
        expect(certificate.publicKey.equals(blobOf(publicKeyOf))).to.equal(true)
        expect(certificate.signatureKey.equals(blobOf(CA))).to.equal(true)
      })
    }

    it('refuses a plain key, a truncated certificate and an unknown kind', () => {
      expect(() => parseCertificate(blobOf(USER_KEY))).to.throw(
        CertificateFormatError,
        /not an OpenSSH certificate/,
      )
      const blob = blobOf(USER_CERT)
      expect(() => parseCertificate(blob.subarray(0, 90))).to.throw(CertificateFormatError, /truncated/)
      const badKind = Buffer.from(blob)
      // The kind follows type (36 bytes), nonce (36), key (36) and serial (8).
      badKind.writeUInt32BE(7, 36 + 36 + 36 + 8)
      expect(() => parseCertificate(badKind)).to.throw(CertificateFormatError, /kind 7/)
    })
  })

  describe('parseCertificateFile', () => {
    it('reads a -cert.pub line with its comment', () => {
      const { blob, certificate } = parseCertificateFile(`${USER_CERT}\n`)
      expect(blob.equals(blobOf(USER_CERT))).to.equal(true)
      expect(certificate.keyId).to.equal('deploy-key')
    })

    it('refuses a line whose type does not match its key, and text that is no key line', () => {
      expect(() => parseCertificateFile(USER_CERT.replace('ssh-ed25519-cert', 'ssh-rsa-cert'))).to.throw(
        CertificateFormatError,
        /says ssh-rsa-cert-v01@openssh.com/,
      )
      expect(() => parseCertificateFile('-----BEGIN OPENSSH PRIVATE KEY-----')).to.throw(
        CertificateFormatError,
      )
    })
  })

  it('names the plain type a certificate type certifies', () => {
    expect(certifiedKeyType('ecdsa-sha2-nistp384-cert-v01@openssh.com')).to.equal('ecdsa-sha2-nistp384')
    expect(certifiedKeyType('ssh-ed25519')).to.equal(undefined)
  })

  describe('certificateAlgorithms', () => {
    const cases: Array<[string, string, string[], string[]]> = [
      [
        'ssh-ed25519-cert-v01@openssh.com',
        'ssh-ed25519',
        ['ssh-ed25519-cert-v01@openssh.com'],
        ['ssh-ed25519'],
      ],
      [
        'ecdsa-sha2-nistp256-cert-v01@openssh.com',
        'ecdsa-sha2-nistp256',
        ['ecdsa-sha2-nistp256-cert-v01@openssh.com'],
        ['ecdsa-sha2-nistp256'],
      ],
      [
        'ssh-rsa-cert-v01@openssh.com',
        'ssh-rsa',
        ['rsa-sha2-512-cert-v01@openssh.com', 'rsa-sha2-256-cert-v01@openssh.com'],
        ['rsa-sha2-512', 'rsa-sha2-256'],
      ],
      ['ssh-dss-cert-v01@openssh.com', 'ssh-dss', [], []],
    ]
    for (const [type, keyType, algorithms, signatures] of cases) {
      it(`offers ${type} as ${algorithms.join(', ') || 'nothing'}`, () => {
        const offered = certificateAlgorithms({ type, keyType })
        expect(offered.map((entry) => entry.algorithm)).to.deep.equal(algorithms)
        expect(offered.map((entry) => entry.signatureAlgorithm)).to.deep.equal(signatures)
      })
    }

    it('signs RSA certificates with the hash their algorithm names', () => {
      const hashes = certificateAlgorithms({ type: 'ssh-rsa-cert-v01@openssh.com', keyType: 'ssh-rsa' }).map(
        (entry) => entry.hash,
      )
      expect(hashes).to.deep.equal(['sha512', 'sha256'])
    })
  })

  describe('certificateProblem', () => {
    const user = parseCertificate(blobOf(USER_CERT))
    const inside = new Date('2026-06-01T00:00:00Z')
    const cases: Array<[string, Parameters<typeof certificateProblem>[1], string | undefined]> = [
      ['nothing for a listed principal inside the window', { user: 'deploy', now: inside }, undefined],
      [
        'nothing for the other principal with the matching key',
        { user: 'ops', now: inside, publicKey: blobOf(USER_KEY) },
        undefined,
      ],
      [
        'a principal it does not list',
        { user: 'root', now: inside },
        'is valid for deploy, ops, not for root',
      ],
      [
        'a time before the window',
        { user: 'deploy', now: new Date('2025-12-31T23:59:59Z') },
        'is not valid before 2026-01-01T00:00:00Z',
      ],
      [
        'the first second after it',
        { user: 'deploy', now: new Date('2027-01-01T00:00:00Z') },
        'expired at 2027-01-01T00:00:00Z',
      ],
      [
        'another key',
        { user: 'deploy', now: inside, publicKey: blobOf(ECDSA_KEY) },
        'certifies another key than the identity it is paired with',
      ],
    ]
    for (const [title, options, problem] of cases) {
      it(`says ${title}`, () => {
        expect(certificateProblem(user, options)).to.equal(problem)
      })
    }

    it('accepts any user when the certificate lists no principals, and refuses a host certificate', () => {
      expect(
        certificateProblem(parseCertificate(blobOf(ECDSA_CERT)), { user: 'anyone', now: inside }),
      ).to.equal(undefined)
      expect(
        certificateProblem(parseCertificate(blobOf(HOST_CERT)), { user: 'deploy', now: inside }),
      ).to.equal('is a host certificate, not a user certificate')
    })
  })
})
