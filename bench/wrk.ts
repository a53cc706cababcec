import { spawn } from 'node:child_process'

/** What one wrk run measured. */
export interface LoadFigures {
  requests: number
  /** Connect, read, write and timeout errors plus non-2xx/3xx answers. */
  failed: number
  socketErrors: { connect: number; read: number; write: number; timeout: number }
  non2xx: number
  p50Ms: number
  p99Ms: number
  seconds: number
}

export interface LoadOptions {
  url: string
  seconds: number
  connections: number
  /** One TCP connection per request (`Connection: close`) instead of keep-alive. */
  connectionPerRequest: boolean
}

/** A wrk run in the background; `done` resolves with its figures when the duration is over. */
export function startLoad(options: LoadOptions): { done: Promise<LoadFigures> } {
  const args = [
    '-t',
    '2',
    '-c',
    String(options.connections),
    '-d',
    `${options.seconds}s`,
    '--latency',
    '--timeout',
    '5s',
  ]
  if (options.connectionPerRequest) args.push('-H', 'Connection: close')
  args.push(options.url)
  const child = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString('utf8')
  })
  child.stderr.on('data', (chunk: Buffer) => {
    output += chunk.toString('utf8')
  })
  const done = new Promise<LoadFigures>((resolve, reject) => {
    child.on('error', reject)
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`wrk exited ${code}:\n${output}`))
      else resolve(parseWrk(output, options.seconds))
    })
  })
  return { done }
}

/** Parses wrk's report (with --latency). */
export function parseWrk(output: string, seconds: number): LoadFigures {
  const number = (pattern: RegExp) => Number(pattern.exec(output)?.[1] ?? 0)
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(output)
  const socketErrors = {
    connect: Number(socket?.[1] ?? 0),
    read: Number(socket?.[2] ?? 0),
    write: Number(socket?.[3] ?? 0),
    timeout: Number(socket?.[4] ?? 0),
  }
  const non2xx = number(/Non-2xx or 3xx responses: (\d+)/)
  return {
    requests: number(/(\d+) requests in/),
    failed: socketErrors.connect + socketErrors.read + socketErrors.write + socketErrors.timeout + non2xx,
    socketErrors,
    non2xx,
    p50Ms: latencyMs(/\s50%\s+([\d.]+\w+)/.exec(output)?.[1]),
    p99Ms: latencyMs(/\s99%\s+([\d.]+\w+)/.exec(output)?.[1]),
    seconds,
  }
}

function latencyMs(text: string | undefined): number {
  if (!text) return Number.NaN
  const match = /^([\d.]+)(us|ms|s|m)$/.exec(text)
  if (!match) return Number.NaN
  const value = Number(match[1])
  return { us: value / 1000, ms: value, s: value * 1000, m: value * 60_000 }[
    match[2] as 'us' | 'ms' | 's' | 'm'
  ]
}
