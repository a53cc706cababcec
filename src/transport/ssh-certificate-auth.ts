import type { ParsedKey } from 'ssh2'
// The one ssh2 internal this needs: how a finished packet is encrypted and sent (or queued during a rekey).
import protocolUtils from 'ssh2/lib/protocol/utils.js'
import type { CertificateAlgorithm } from './ssh-certificate.js'

/**
 * OpenSSH user certificates for ssh2's client, which has none (ssh2 1.17).
 *
 * A certificate login differs from a key login in one field: the request names the certificate
 * algorithm (`ssh-ed25519-cert-v01@openssh.com`) and carries the certificate, but the signature inside
 * it names the plain algorithm (`ssh-ed25519`), which sshd checks. ssh2's Protocol.authPK writes one
 * name in both places, so no key object handed to ssh2 can log in with a certificate. Instead, each
 * client's own protocol object gets an authPK that writes certificate requests itself and hands every
 * other request to ssh2's. Everything else stays ssh2's: when to query and when to sign
 * (USERAUTH_PK_OK), the session id, the signing (the private key's `sign`), encryption and rekeying.
 *
 * ssh2's internals used here: `client._protocol` (created synchronously by `connect()`), its
 * `authPK(user, key, algo?, sign?)`, `_kex.sessionID`, `_packetRW.write.alloc/allocStart/finalize`,
 * `_authsQueue`, and `sendPacket` from lib/protocol/utils.js. `enableCertificateAuth` checks that they
 * are there and returns false otherwise; the certificate tests fail on an ssh2 that changed them.
 */

const OFFER = Symbol('deployer certificate offer')
const USERAUTH_REQUEST = 50

interface CertificateOffer extends CertificateAlgorithm {
  /** The certificate in wire format. */
  blob: Buffer
}

/** A private key standing in for its certificate: what ssh2's client hands to authPK and signs with. */
export type CertificateKey = ParsedKey & { [OFFER]: CertificateOffer }

/**
 * The private key `key` offered as the certificate `blob` under `algorithm`. ssh2 keeps it as a parsed
 * key (it inherits the private key's marker), asks authPK to send it, and signs with its `sign`, which
 * uses the hash the algorithm names (RSA); the request itself is written by `enableCertificateAuth`.
 */
export function certificateKey(
  key: ParsedKey,
  blob: Buffer,
  algorithm: CertificateAlgorithm,
): CertificateKey {
  const wrapped = Object.create(key) as CertificateKey
  Object.defineProperties(wrapped, {
    type: { value: algorithm.algorithm },
    getPublicSSH: { value: () => blob },
    sign: { value: (data: Buffer) => key.sign(data, algorithm.hash) },
    [OFFER]: { value: { ...algorithm, blob } },
  })
  return wrapped
}

type Sign = (data: Buffer, send: (signature: Buffer) => void) => void

interface ProtocolInternals {
  authPK(username: string, key: unknown, algorithm?: string | Sign, sign?: Sign): void
  _kex?: { sessionID?: Buffer }
  _packetRW?: {
    write?: { alloc(length: number): Buffer; allocStart: number; finalize(packet: Buffer): Buffer }
  }
  _authsQueue?: string[]
}

/**
 * Lets `client` (an ssh2 Client on which `connect()` was just called) log in with keys made by
 * `certificateKey`. False when ssh2's internals are not what this was written for.
 */
export function enableCertificateAuth(client: object): boolean {
  const protocol = (client as { _protocol?: ProtocolInternals })._protocol
  if (
    !protocol ||
    typeof protocol.authPK !== 'function' ||
    typeof protocol._packetRW?.write?.alloc !== 'function' ||
    !Array.isArray(protocol._authsQueue) ||
    typeof protocolUtils?.sendPacket !== 'function'
  ) {
    return false
  }
  const original = protocol.authPK
  protocol.authPK = function (this: ProtocolInternals, username, key, algorithm, sign) {
    const offer = (key as Partial<CertificateKey> | undefined)?.[OFFER]
    if (!offer) return original.call(this, username, key, algorithm, sign)
    sendCertificateRequest(this, username, offer, typeof algorithm === 'function' ? algorithm : sign)
  }
  return true
}

function sendCertificateRequest(
  protocol: ProtocolInternals,
  username: string,
  offer: CertificateOffer,
  sign: Sign | undefined,
): void {
  // RFC 4252 §7: without a signature this asks whether the key would do; sshd answers USERAUTH_PK_OK.
  const request = (signed: boolean) =>
    Buffer.concat([
      Buffer.from([USERAUTH_REQUEST]),
      sshString(username),
      sshString('ssh-connection'),
      sshString('publickey'),
      Buffer.from([signed ? 1 : 0]),
      sshString(offer.algorithm),
      sshString(offer.blob),
    ])
  if (!sign) {
    send(protocol, request(false))
    return
  }
  const sessionId = protocol._kex?.sessionID
  if (!sessionId) throw new Error('ssh2 has no session id to sign')
  sign(Buffer.concat([sshString(sessionId), request(true)]), (signature) => {
    const blob = Buffer.concat([
      sshString(offer.signatureAlgorithm),
      sshString(sshSignature(offer.signatureAlgorithm, signature)),
    ])
    send(protocol, Buffer.concat([request(true), sshString(blob)]))
  })
}

function send(protocol: ProtocolInternals, payload: Buffer): void {
  const writer = protocol._packetRW!.write!
  const packet = writer.alloc(payload.length)
  packet.set(payload, writer.allocStart)
  // ssh2 matches the server's answer (USERAUTH_PK_OK, FAILURE) to the method at the head of this queue.
  protocol._authsQueue!.push('publickey')
  protocolUtils.sendPacket(protocol, writer.finalize(packet))
}

/** An SSH string: uint32 length, then the bytes. */
export function sshString(value: string | Buffer): Buffer {
  const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value
  const length = Buffer.alloc(4)
  length.writeUInt32BE(bytes.length)
  return Buffer.concat([length, bytes])
}

/**
 * The signature in SSH's encoding. Node signs ECDSA as DER `SEQUENCE { INTEGER r, INTEGER s }`; SSH wants
 * `mpint r, mpint s`, and a DER INTEGER's content is already an mpint's. Ed25519 and RSA are the same in both.
 */
export function sshSignature(signatureAlgorithm: string, signature: Buffer): Buffer {
  if (!signatureAlgorithm.startsWith('ecdsa-')) return signature
  let offset = 0
  const readLength = (): number => {
    const first = signature[offset++]!
    if (first < 0x80) return first
    let length = 0
    for (let byte = 0; byte < (first & 0x7f); byte++) length = (length << 8) | signature[offset++]!
    return length
  }
  const readInteger = (): Buffer => {
    if (signature[offset++] !== 0x02) throw new Error('ECDSA signature: expected an INTEGER')
    const length = readLength()
    const value = signature.subarray(offset, offset + length)
    offset += length
    return value
  }
  if (signature[offset++] !== 0x30) throw new Error('ECDSA signature: expected a SEQUENCE')
  readLength()
  const r = readInteger()
  const s = readInteger()
  return Buffer.concat([sshString(r), sshString(s)])
}
