// ssh2 1.x's protocol helpers, which ssh-certificate-auth.ts uses to send a request ssh2 cannot form.
declare module 'ssh2/lib/protocol/utils.js' {
  const utils: {
    sendPacket(protocol: unknown, packet: Buffer): void
  }
  export default utils
}
