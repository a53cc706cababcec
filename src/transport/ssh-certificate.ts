/**
 * OpenSSH certificates (PROTOCOL.certkeys), as plain data: reading a certificate blob, and which
 * algorithm names a user certificate is offered under. No I/O, no ssh2.
 */

/** The certificate key types and the plain key type each one certifies. */
const CERTIFICATE_TYPES: Record<string, string> = {
  'ssh-ed25519-cert-v01@openssh.com': 'ssh-ed25519',
  'ecdsa-sha2-nistp256-cert-v01@openssh.com': 'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384-cert-v01@openssh.com': 'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521-cert-v01@openssh.com': 'ecdsa-sha2-nistp521',
  'ssh-rsa-cert-v01@openssh.com': 'ssh-rsa',
  'ssh-dss-cert-v01@openssh.com': 'ssh-dss',
}

/** How many SSH strings/mpints hold the public key of each plain key type, after the nonce. */
const KEY_FIELDS: Record<string, number> = {
  'ssh-ed25519': 1,
  'ecdsa-sha2-nistp256': 2,
  'ecdsa-sha2-nistp384': 2,
  'ecdsa-sha2-nistp521': 2,
  'ssh-rsa': 2,
  'ssh-dss': 4,
}

/** What an OpenSSH certificate says. */
export interface Certificate {
  /** `ssh-ed25519-cert-v01@openssh.com`, ... */
  type: string
  /** The plain type of the certified key (`ssh-ed25519`). */
  keyType: string
  /** The certified public key as a plain wire-format blob, to compare with the private key's. */
  publicKey: Buffer
  serial: bigint
  /** `user` certificates log in; `host` certificates vouch for a server. */
  kind: 'user' | 'host'
  keyId: string
  /** Empty: valid for any principal. */
  principals: string[]
  /** Seconds since the epoch; 0 is "always". */
  validAfter: bigint
  /** Seconds since the epoch; 2^64-1 is "forever". */
  validBefore: bigint
  /** The CA key that signed it, wire format. */
  signatureKey: Buffer
}

/** A certificate blob that does not parse. */
export class CertificateFormatError extends Error {}

class Reader {
  offset = 0
  constructor(private readonly data: Buffer) {}

  string(): Buffer {
    if (this.offset + 4 > this.data.length) throw new CertificateFormatError('truncated certificate')
    const length = this.data.readUInt32BE(this.offset)
    const start = this.offset + 4
    if (start + length > this.data.length) throw new CertificateFormatError('truncated certificate')
    this.offset = start + length
    return this.data.subarray(start, start + length)
  }

  /** Whether everything was read. */
  get done(): boolean {
    return this.offset >= this.data.length
  }

  uint32(): number {
    if (this.offset + 4 > this.data.length) throw new CertificateFormatError('truncated certificate')
    const value = this.data.readUInt32BE(this.offset)
    this.offset += 4
    return value
  }

  uint64(): bigint {
    if (this.offset + 8 > this.data.length) throw new CertificateFormatError('truncated certificate')
    const value = this.data.readBigUInt64BE(this.offset)
    this.offset += 8
    return value
  }
}

/** The certificate type named by a key blob's first string, or undefined for a plain key. */
export function certifiedKeyType(type: string): string | undefined {
  return CERTIFICATE_TYPES[type]
}

/** Reads an OpenSSH certificate in wire format (the base64 field of a `-cert.pub` file, decoded). */
export function parseCertificate(blob: Buffer): Certificate {
  const reader = new Reader(blob)
  const type = reader.string().toString('latin1')
  const keyType = CERTIFICATE_TYPES[type]
  if (!keyType) throw new CertificateFormatError(`not an OpenSSH certificate (${JSON.stringify(type)})`)
  reader.string() // nonce
  const keyStart = reader.offset
  for (let field = 0; field < KEY_FIELDS[keyType]!; field++) reader.string()
  const keyFields = blob.subarray(keyStart, reader.offset)
  const serial = reader.uint64()
  const kindCode = reader.uint32()
  if (kindCode !== 1 && kindCode !== 2)
    throw new CertificateFormatError(`unknown certificate kind ${kindCode}`)
  const keyId = reader.string().toString('utf8')
  const principalList = new Reader(reader.string())
  const principals: string[] = []
  while (!principalList.done) {
    principals.push(principalList.string().toString('utf8'))
  }
  const validAfter = reader.uint64()
  const validBefore = reader.uint64()
  reader.string() // critical options
  reader.string() // extensions
  reader.string() // reserved
  const signatureKey = Buffer.from(reader.string())
  reader.string() // signature
  const name = Buffer.from(keyType, 'latin1')
  const length = Buffer.alloc(4)
  length.writeUInt32BE(name.length)
  return {
    type,
    keyType,
    publicKey: Buffer.concat([length, name, keyFields]),
    serial,
    kind: kindCode === 1 ? 'user' : 'host',
    keyId,
    principals,
    validAfter,
    validBefore,
    signatureKey,
  }
}

/**
 * Reads a `-cert.pub` file's text (`type base64 [comment]`) into the certificate blob and what it says.
 * Throws CertificateFormatError when it is not one.
 */
export function parseCertificateFile(text: string): { blob: Buffer; certificate: Certificate } {
  const [type, base64] = text.trim().split(/\s+/)
  if (!type || !base64 || !/^[A-Za-z0-9+/]+={0,2}$/.test(base64))
    throw new CertificateFormatError('not an OpenSSH public key line')
  const blob = Buffer.from(base64, 'base64')
  const certificate = parseCertificate(blob)
  if (certificate.type !== type)
    throw new CertificateFormatError(`the line says ${type} but the key is ${certificate.type}`)
  return { blob, certificate }
}

/** One way to offer a user certificate: the algorithm named in the request, and how to sign. */
export interface CertificateAlgorithm {
  /** Named in the USERAUTH_REQUEST: `rsa-sha2-512-cert-v01@openssh.com`. */
  algorithm: string
  /** Named inside the signature blob: `rsa-sha2-512` (the plain signature algorithm). */
  signatureAlgorithm: string
  /** The hash an RSA key signs with; undefined for the others (their hash is fixed). */
  hash?: 'sha512' | 'sha256'
}

/**
 * The algorithms to offer a certificate under, in OpenSSH's order. An RSA certificate is offered with
 * SHA-2 signatures only (rsa-sha2-512 first, as OpenSSH): `ssh-rsa-cert-v01` with SHA-1 is refused by
 * OpenSSH since 8.8 and would only be a downgrade.
 */
export function certificateAlgorithms(
  certificate: Pick<Certificate, 'type' | 'keyType'>,
): CertificateAlgorithm[] {
  if (certificate.keyType === 'ssh-rsa') {
    return [
      { algorithm: 'rsa-sha2-512-cert-v01@openssh.com', signatureAlgorithm: 'rsa-sha2-512', hash: 'sha512' },
      { algorithm: 'rsa-sha2-256-cert-v01@openssh.com', signatureAlgorithm: 'rsa-sha2-256', hash: 'sha256' },
    ]
  }
  // DSA is disabled in OpenSSH since 7.0, and ssh-certificate-auth.ts converts only ECDSA signatures.
  if (certificate.keyType === 'ssh-dss') return []
  return [{ algorithm: certificate.type, signatureAlgorithm: certificate.keyType }]
}

/** Why a user certificate cannot be used now, or undefined when it can. */
export function certificateProblem(
  certificate: Certificate,
  options: { user: string; now: Date; publicKey?: Buffer },
): string | undefined {
  if (certificate.kind !== 'user') return 'is a host certificate, not a user certificate'
  if (options.publicKey && !options.publicKey.equals(certificate.publicKey))
    return 'certifies another key than the identity it is paired with'
  const now = BigInt(Math.floor(options.now.getTime() / 1000))
  if (now < certificate.validAfter) return `is not valid before ${formatTime(certificate.validAfter)}`
  if (now >= certificate.validBefore) return `expired at ${formatTime(certificate.validBefore)}`
  if (certificate.principals.length > 0 && !certificate.principals.includes(options.user))
    return `is valid for ${certificate.principals.join(', ')}, not for ${options.user}`
  return undefined
}

function formatTime(seconds: bigint): string {
  return new Date(Number(seconds) * 1000).toISOString().replace('.000Z', 'Z')
}
