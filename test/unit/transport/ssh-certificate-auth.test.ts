import { createPublicKey, generateKeyPairSync, sign as nodeSign, verify } from 'node:crypto'
import { expect } from 'chai'
import type { ParsedKey } from 'ssh2'
import ssh2 from 'ssh2'
import {
  certificateKey,
  enableCertificateAuth,
  sshSignature,
  sshString,
} from '../../../src/transport/ssh-certificate-auth.js'

/** Reads the SSH strings and bytes of a USERAUTH_REQUEST payload. */
function readRequest(payload: Buffer) {
  let offset = 0
  const byte = () => payload[offset++]!
  const string = () => {
    const length = payload.readUInt32BE(offset)
    const value = payload.subarray(offset + 4, offset + 4 + length)
    offset += 4 + length
    return value
  }
  const message = byte()
  const user = string().toString()
  const service = string().toString()
  const method = string().toString()
  const signed = byte()
  const algorithm = string().toString()
  const key = string()
  const signature = signed ? string() : undefined
  return { message, user, service, method, signed, algorithm, key, signature, rest: payload.length - offset }
}

function splitStrings(blob: Buffer): Buffer[] {
  const parts: Buffer[] = []
  for (let offset = 0; offset < blob.length; ) {
    const length = blob.readUInt32BE(offset)
    parts.push(blob.subarray(offset + 4, offset + 4 + length))
    offset += 4 + length
  }
  return parts
}

/** A stand-in for ssh2's Protocol with the members the certificate request uses, recording what is sent. */
function fakeProtocol(sessionID: Buffer) {
  const sent: Buffer[] = []
  const passedOn: unknown[][] = []
  const protocol = {
    _kex: { sessionID },
    _kexinit: undefined,
    _authsQueue: [] as string[],
    _cipher: { encrypt: (packet: Buffer) => sent.push(packet.subarray(5)) },
    _packetRW: {
      write: {
        allocStart: 5,
        alloc: (length: number) => Buffer.alloc(5 + length),
        finalize: (p: Buffer) => p,
      },
    },
    authPK: (...args: unknown[]) => {
      passedOn.push(args)
    },
  }
  return { client: { _protocol: protocol }, protocol, sent, passedOn }
}

const CERT_BLOB = Buffer.concat([
  sshString('ecdsa-sha2-nistp256-cert-v01@openssh.com'),
  Buffer.from('rest of a certificate'),
])

describe('ssh-certificate-auth', () => {
  const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const pem = pair.privateKey.export({ type: 'sec1', format: 'pem' }).toString()
  const key = ssh2.utils.parseKey(pem) as ParsedKey
  const algorithm = {
    algorithm: 'ecdsa-sha2-nistp256-cert-v01@openssh.com',
    signatureAlgorithm: 'ecdsa-sha2-nistp256',
  }

  it('turns a private key into its certificate for ssh2: the certificate blob, the algorithm, the key signing', () => {
    const certified = certificateKey(key, CERT_BLOB, algorithm)
    expect(certified.type).to.equal('ecdsa-sha2-nistp256-cert-v01@openssh.com')
    expect(certified.getPublicSSH().equals(CERT_BLOB)).to.equal(true)
    expect(certified.isPrivateKey()).to.equal(true)
    // ssh2 takes it as an already parsed key, as it is.
    expect(ssh2.utils.parseKey(certified as unknown as Buffer)).to.equal(certified)
    const data = Buffer.from('session data')
    expect(verify('sha256', data, createPublicKey(pem), certified.sign(data) as Buffer)).to.equal(true)
  })

  it('sends the query with the certificate algorithm and blob, and no signature', () => {
    const fake = fakeProtocol(Buffer.from('session-id'))
    expect(enableCertificateAuth(fake.client)).to.equal(true)
    fake.protocol.authPK('deploy', certificateKey(key, CERT_BLOB, algorithm))
    expect(fake.sent).to.have.length(1)
    const request = readRequest(fake.sent[0]!)
    expect(request).to.deep.include({
      message: 50,
      user: 'deploy',
      service: 'ssh-connection',
      method: 'publickey',
      signed: 0,
      algorithm: 'ecdsa-sha2-nistp256-cert-v01@openssh.com',
      signature: undefined,
      rest: 0,
    })
    expect(request.key.equals(CERT_BLOB)).to.equal(true)
    expect(fake.protocol._authsQueue).to.deep.equal(['publickey'])
  })

  it('signs the session id and request, and names the plain algorithm inside the signature', () => {
    const sessionId = Buffer.from('0123456789abcdef0123456789abcdef')
    const fake = fakeProtocol(sessionId)
    enableCertificateAuth(fake.client)
    const certified = certificateKey(key, CERT_BLOB, algorithm)
    let signed: Buffer | undefined
    fake.protocol.authPK(
      'deploy',
      certified,
      undefined,
      (data: Buffer, send: (signature: Buffer) => void) => {
        signed = data
        send(certified.sign(data) as Buffer)
      },
    )
    const request = readRequest(fake.sent[0]!)
    expect(request.signed).to.equal(1)
    expect(request.algorithm).to.equal('ecdsa-sha2-nistp256-cert-v01@openssh.com')
    // What was signed: the session id, then this very request up to the signature (RFC 4252 §7).
    expect(
      signed!.equals(
        Buffer.concat([
          sshString(sessionId),
          fake.sent[0]!.subarray(0, fake.sent[0]!.length - request.signature!.length - 4),
        ]),
      ),
    ).to.equal(true)
    const [name, ecdsa] = splitStrings(request.signature!)
    expect(name!.toString()).to.equal('ecdsa-sha2-nistp256')
    // SSH's ECDSA signature is mpint r, mpint s: back to IEEE P1363 (r || s, 32 bytes each) to verify.
    const [r, s] = splitStrings(ecdsa!).map((part) => Buffer.concat([Buffer.alloc(32), part]).subarray(-32))
    const p1363 = Buffer.concat([r!, s!])
    expect(
      verify('sha256', signed!, { key: createPublicKey(pem), dsaEncoding: 'ieee-p1363' }, p1363),
    ).to.equal(true)
  })

  it('hands every other key to ssh2 untouched', () => {
    const fake = fakeProtocol(Buffer.from('id'))
    enableCertificateAuth(fake.client)
    const callback = () => {}
    fake.protocol.authPK('deploy', key, 'ecdsa-sha2-nistp256', callback)
    expect(fake.sent).to.have.length(0)
    expect(fake.passedOn).to.deep.equal([['deploy', key, 'ecdsa-sha2-nistp256', callback]])
  })

  it('declines a client whose protocol object is not what it was written for', () => {
    expect(enableCertificateAuth({})).to.equal(false)
    expect(enableCertificateAuth({ _protocol: { authPK() {} } })).to.equal(false)
  })

  describe('sshSignature', () => {
    it('re-encodes a DER ECDSA signature as two mpints', () => {
      const data = Buffer.from('data')
      for (let attempt = 0; attempt < 20; attempt++) {
        const der = nodeSign('sha256', data, { key: pair.privateKey, dsaEncoding: 'der' })
        const [r, s] = splitStrings(sshSignature('ecdsa-sha2-nistp256', der))
        // Each mpint is positive (a leading zero when the top bit is set) and, unpadded, verifies.
        for (const part of [r!, s!]) expect(part[0]! & 0x80).to.equal(0)
        const p1363 = Buffer.concat(
          [r!, s!].map((part) => Buffer.concat([Buffer.alloc(32), part]).subarray(-32)),
        )
        expect(verify('sha256', data, { key: pair.publicKey, dsaEncoding: 'ieee-p1363' }, p1363)).to.equal(
          true,
        )
      }
    })

    it('leaves ed25519 and RSA signatures as they are', () => {
      const signature = Buffer.from('opaque')
      expect(sshSignature('ssh-ed25519', signature)).to.equal(signature)
      expect(sshSignature('rsa-sha2-512', signature)).to.equal(signature)
    })
  })
})
