import type { ProgressEvent, Reporter } from '../progress.js'
import {
  applyProgress,
  type HostProgress,
  newHostProgress,
  progressSteps,
  progressTitle,
} from './host-progress.js'

/** What a host's listr2 task exposes to the reporter (title and output are setters on the task). */
interface HostTask {
  title: string
  output: string
}

interface HostEntry {
  progress: HostProgress
  task?: HostTask
  finish?: (error?: Error) => void
}

/**
 * Progress on a terminal: one listr2 task per host, its title the step running now (with bytes sent
 * during the upload), its output the steps done with their timings and any warning. Drawn on stderr,
 * so stdout keeps only the result. Messages about no host in particular are printed when it closes.
 */
export class ListrReporter implements Reporter {
  private readonly hosts = new Map<string, HostEntry>()
  private readonly general: string[] = []
  private readonly running: Promise<unknown>
  private closed = false

  constructor(hostNames: readonly string[]) {
    for (const name of hostNames) this.hosts.set(name, { progress: newHostProgress(name) })
    // Loaded only here: runs without a terminal (CI, pipes, --json) never pay for listr2's import.
    this.running = import('listr2')
      .then(({ Listr, ListrLogger, ProcessOutput }) => {
        const list = new Listr(
          hostNames.map((name) => ({
            title: name,
            task: (_: unknown, task: HostTask) =>
              new Promise<void>((resolve, reject) => {
                const entry = this.hosts.get(name) as HostEntry
                entry.task = task
                entry.finish = (error) => (error ? reject(error) : resolve())
                this.draw(entry, this.closed)
                // A quick run can end before listr2 starts its tasks.
                if (this.closed) this.finish(entry)
              }),
            rendererOptions: { persistentOutput: true, outputBar: 1 },
          })),
          {
            concurrent: true,
            exitOnError: false,
            registerSignalListeners: false,
            rendererOptions: {
              collapseErrors: false,
              showErrorMessage: false,
              logger: new ListrLogger({ processOutput: new ProcessOutput(process.stderr, process.stderr) }),
            },
          },
        )
        return list.run()
      })
      .catch(() => {})
  }

  emit(event: ProgressEvent): void {
    const entry = event.host === undefined ? undefined : this.hosts.get(event.host)
    if (!entry) {
      if (event.kind === 'info' || event.kind === 'warn')
        this.general.push(event.kind === 'warn' ? `warning: ${event.message}` : event.message)
      return
    }
    entry.progress = applyProgress(entry.progress, event)
    this.draw(entry, false)
  }

  async close(): Promise<void> {
    this.closed = true
    for (const entry of this.hosts.values()) {
      this.draw(entry, true)
      this.finish(entry)
    }
    await this.running
    for (const line of this.general) process.stderr.write(`${line}\n`)
  }

  private finish(entry: HostEntry): void {
    entry.finish?.(entry.progress.failed ? new Error(progressSteps(entry.progress)) : undefined)
  }

  private draw(entry: HostEntry, finished: boolean): void {
    if (!entry.task) return
    entry.task.title = progressTitle(entry.progress, finished)
    const steps = progressSteps(entry.progress)
    entry.task.output = [steps, ...entry.progress.notes].filter(Boolean).join('\n')
  }
}
