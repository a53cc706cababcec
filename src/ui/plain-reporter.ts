import { formatMs } from '../format.js'
import type { ProgressEvent, Reporter } from '../progress.js'

/**
 * One line per finished step on stderr: readable in CI logs and when piped. Starts are not printed
 * (a line per start doubles the output without telling anything a finished line does not).
 */
export class PlainReporter implements Reporter {
  private readonly write: (line: string) => void
  private readonly width: number

  constructor(
    hostNames: readonly string[],
    write: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
  ) {
    this.write = write
    this.width = Math.max(4, ...hostNames.map((name) => name.length))
  }

  emit(event: ProgressEvent): void {
    // A CI log keeps every line: byte counts would only bury the steps.
    if (event.kind === 'progress') return
    if (event.kind === 'phase') {
      if (event.status === 'start') return
      const time = event.ms === undefined ? '' : ` ${formatMs(event.ms)}`
      const detail = event.detail ? `  ${event.detail}` : ''
      const mark = event.status === 'done' ? 'ok' : 'FAILED'
      this.write(`${event.host.padEnd(this.width)}  ${event.phase.padEnd(8)} ${mark}${time}${detail}`)
    } else {
      const prefix = event.host ? `${event.host.padEnd(this.width)}  ` : ''
      this.write(`${prefix}${event.kind === 'warn' ? 'warning: ' : ''}${event.message}`)
    }
  }
}
