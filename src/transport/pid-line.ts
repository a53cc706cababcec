/**
 * The remote shell's pid, announced on stderr by the line the OpenSSH transport puts before each
 * command, and taken out of the output again. The pid is what an abort signals: the OpenSSH client
 * has no way to send a signal request, and sshd makes each command's shell a process-group leader.
 */
export class PidLineFilter {
  /** Resolves with the pid once its line arrived, or with undefined when stderr ended without it. */
  readonly pid: Promise<number | undefined>
  private readonly marker: Buffer
  private held: Buffer = Buffer.alloc(0)
  private done = false
  private resolvePid!: (pid: number | undefined) => void

  constructor(marker: string) {
    this.marker = Buffer.from(`${marker} `)
    this.pid = new Promise((resolve) => {
      this.resolvePid = resolve
    })
  }

  /** The line the remote shell runs first: it prints `MARKER PID` on stderr. */
  static announce(marker: string): string {
    return `printf '%s %s\\n' ${marker} "$$" >&2`
  }

  /**
   * Takes a chunk of stderr and returns what may be shown of it. Output before the pid line (a noisy
   * shell startup file) is held until that line is complete, then passed on without it.
   */
  push(chunk: Buffer): Buffer {
    if (this.done) return chunk
    this.held = Buffer.concat([this.held, chunk])
    const start = this.held.indexOf(this.marker)
    const end = start < 0 ? -1 : this.held.indexOf(0x0a, start)
    if (end < 0) {
      // The line comes first; this much stderr without it means it will not come at all.
      return this.held.length > MAX_HELD ? this.end() : Buffer.alloc(0)
    }
    const pid = Number(this.held.subarray(start + this.marker.length, end).toString('latin1'))
    const passed = Buffer.concat([this.held.subarray(0, start), this.held.subarray(end + 1)])
    this.finish(Number.isSafeInteger(pid) && pid > 1 ? pid : undefined)
    return passed
  }

  /** stderr ended: returns whatever was still held back. */
  end(): Buffer {
    if (this.done) return Buffer.alloc(0)
    const rest = this.held
    this.finish(undefined)
    return rest
  }

  private finish(pid: number | undefined): void {
    this.done = true
    this.held = Buffer.alloc(0)
    this.resolvePid(pid)
  }
}

const MAX_HELD = 64 * 1024
