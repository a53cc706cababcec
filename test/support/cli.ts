import { type ChildProcess, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { ReleaseResult } from '../../src/fleet/release.js'

/** The built binary, exactly what users run (`npm test` builds first). */
export const BIN = fileURLToPath(new URL('../../bin/run.js', import.meta.url))

export interface CliResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

/** A running deployer process whose output is collected until it exits. */
export interface RunningCli {
  child: ChildProcess
  result: Promise<CliResult>
  /** Everything written to stderr so far (progress lines). */
  stderrSoFar(): string
}

/** The environment for CLI runs: no agent, so tests use only the keys they configure. */
export function cliEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra }
  delete env.SSH_AUTH_SOCK
  delete env.DEBUG
  return env
}

export function startCli(
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
): RunningCli {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: cliEnv(options.env),
    cwd: options.cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  return watchProcess(child)
}

/** Collects what a child started with piped stdout and stderr prints, until it exits. */
export function watchProcess(child: ChildProcess): RunningCli {
  let stdout = ''
  let stderr = ''
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString('utf8')
  })
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8')
  })
  const result = new Promise<CliResult>((resolve, reject) => {
    child.on('error', reject)
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }))
  })
  return { child, result, stderrSoFar: () => stderr }
}

/** Runs deployer to the end and returns its exit code and output. */
export function runCli(
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Promise<CliResult> {
  return startCli(args, options).result
}

/** Parses `--json` output, failing with the whole output when it is not JSON. */
export function parseJson<T = unknown>(result: CliResult): T {
  try {
    return JSON.parse(result.stdout) as T
  } catch {
    throw new Error(`stdout is not JSON (exit ${result.code}):\n${result.stdout}\nstderr:\n${result.stderr}`)
  }
}

/** `deployer release --json` as the tests read it: the result, and the error as `--json` carries it. */
export type ReleaseJson = Omit<ReleaseResult, 'error'> & {
  ok: boolean
  error?: { message: string; hint?: string; exitCode: number; host?: string }
}

/** Runs `deployer release --json --config CONFIG ...args`. */
export async function releaseJson(
  config: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ result: CliResult; json: ReleaseJson }> {
  const result = await runCli(['release', '--json', '--config', config, ...args], { env })
  return { result, json: parseJson<ReleaseJson>(result) }
}
