import { type ChildProcess, spawn } from 'node:child_process'
import { availableParallelism } from 'node:os'
import { waitFor } from './wait.js'

/** Busy loops on every core, to test and measure restarts on a machine that has no CPU to spare. */
export interface CpuHogs {
  /** The hogs' pids (one per core by default). */
  pids: number[]
  /** Ends every hog by its pid and waits for each to exit. */
  stop(): Promise<void>
}

export interface CpuHogOptions {
  /** How many busy loops (default: os.availableParallelism(), one per core). */
  count?: number
  /**
   * Each hog ends by itself after this long even if nobody stops it (a test that dies mid-run leaves
   * nothing spinning for longer than this). Default 15 minutes.
   */
  maxSeconds?: number
}

/**
 * Starts `count` Node processes that spin in a tight loop at normal priority until stopped or until
 * their own deadline passes. Resolves once every one of them runs.
 */
export async function startCpuHogs(options: CpuHogOptions = {}): Promise<CpuHogs> {
  const count = options.count ?? availableParallelism()
  const maxMs = Math.round((options.maxSeconds ?? 900) * 1000)
  // The deadline is checked every million iterations: cheap enough to stay a tight loop.
  const script = `const end = Date.now() + ${maxMs}; let n = 0; for (;;) { if (++n % 1e6 === 0 && Date.now() > end) break }`
  const children: ChildProcess[] = []
  const exited = (child: ChildProcess) => child.exitCode !== null || child.signalCode !== null
  const stop = async () => {
    for (const child of children)
      if (child.pid !== undefined && !exited(child)) process.kill(child.pid, 'SIGKILL')
    await waitFor(() => children.every(exited), { what: 'the CPU hogs to exit', timeoutMs: 30_000 })
  }
  try {
    for (let i = 0; i < count; i++) {
      const child = spawn(process.execPath, ['-e', script], { stdio: 'ignore' })
      children.push(child)
      await new Promise<void>((resolve, reject) => {
        child.once('spawn', resolve)
        child.once('error', reject)
      })
    }
  } catch (error) {
    await stop()
    throw error
  }
  return { pids: children.map((child) => child.pid as number), stop }
}
