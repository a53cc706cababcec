import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { existsSync } from 'node:fs'
import { appendFile, mkdtemp, rm, stat, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { loadConfig } from '../config/load.js'
import { ExitCode } from '../errors.js'
import { formatOutputs, workflowCommand } from './github.js'
import {
  type ActionCommand,
  type ActionInputs,
  checkSshInputs,
  deployerArgs,
  deployerEnv,
  normaliseFileText,
  parseInputs,
  type SshTarget,
} from './inputs.js'
import { actionOutputs, type CliJson, resultError, resultFromStderr } from './result.js'
import { renderSummary } from './summary.js'

/**
 * The GitHub Action's entry point (action.yml runs it with the inputs in INPUT_* variables): writes the
 * key and known_hosts to a private temp dir, runs `deployer COMMAND --json`, writes the step outputs
 * and the job summary, removes the key, and exits with deployer's exit code. The key is never printed.
 */
async function runAction(env: NodeJS.ProcessEnv): Promise<number> {
  const parsed = parseInputs(env)
  if (!parsed.ok) return finish(env, undefined, { ok: false, error: parsed.error }, ExitCode.usage)
  const inputs = parsed.inputs
  const cwd = path.resolve(env.GITHUB_WORKSPACE || process.cwd(), inputs.workingDirectory)
  if (!(await stat(cwd).catch(() => undefined))?.isDirectory()) {
    const error = {
      message: `The working-directory input names ${cwd}, which is not a directory.`,
      hint: 'Check out the repository first (actions/checkout), and give working-directory relative to it.',
      exitCode: ExitCode.usage,
    }
    return finish(env, inputs.command, { ok: false, error }, ExitCode.usage)
  }
  const refused = checkSshInputs(inputs, await sshTargets(inputs, cwd, env), Boolean(env.SSH_AUTH_SOCK))
  if (refused) return finish(env, inputs.command, { ok: false, error: refused.error }, ExitCode.usage)

  // mkdtemp makes the directory 0700; the files in it are 0600 and created, never overwritten.
  const dir = await mkdtemp(path.join(env.RUNNER_TEMP || os.tmpdir(), 'deployer-'))
  let run: { code: number; json: CliJson }
  try {
    const write = async (name: string, text: string) => {
      if (text.trim() === '') return undefined
      const file = path.join(dir, name)
      await writeFile(file, normaliseFileText(text), { mode: 0o600, flag: 'wx' })
      return file
    }
    const identity = await write('id_deploy', inputs.sshPrivateKey)
    const knownHosts = await write('known_hosts', inputs.knownHosts)
    run = await runDeployer(deployerArgs(inputs), deployerEnv(env, { identity, knownHosts }), cwd)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
  process.stdout.write(
    `::group::deployer ${inputs.command} result\n${JSON.stringify(run.json, null, 2)}\n::endgroup::\n`,
  )
  return finish(env, inputs.command, run.json, run.code)
}

/** The SSH hosts the config names; none when it does not load (deployer then reports why, in full). */
async function sshTargets(inputs: ActionInputs, cwd: string, env: NodeJS.ProcessEnv): Promise<SshTarget[]> {
  try {
    const config = await loadConfig(inputs.config, { cwd, env })
    return config.hosts.flatMap((host) =>
      host.kind === 'ssh' && host.hostname ? [{ hostname: host.hostname, port: host.port }] : [],
    )
  } catch {
    return []
  }
}

/** Writes the outputs and the summary, annotates a failure, and returns the exit code to end with. */
async function finish(
  env: NodeJS.ProcessEnv,
  command: ActionCommand | undefined,
  json: CliJson,
  exitCode: number,
): Promise<number> {
  if (env.GITHUB_OUTPUT) {
    await appendFile(
      env.GITHUB_OUTPUT,
      formatOutputs(actionOutputs(command, json), `ghadelimiter_${randomUUID()}`),
    )
  }
  if (env.GITHUB_STEP_SUMMARY)
    await appendFile(env.GITHUB_STEP_SUMMARY, renderSummary(command, json, exitCode))
  if (exitCode !== 0) {
    const error = resultError(json)
    const message = error
      ? `${error.message}${error.hint ? `\nHint: ${error.hint}` : ''}`
      : `deployer exited with code ${exitCode}.`
    process.stdout.write(
      `${workflowCommand('error', message, { title: `deployer ${command ?? ''}`.trim() })}\n`,
    )
  }
  return exitCode
}

/**
 * Runs the built CLI with progress passed through to stderr. Workflow commands are off meanwhile:
 * that output includes what the hosts print (the install command's), and a line of it must not be
 * able to set outputs or masks. deployer runs in a process group of its own, and SIGINT/SIGTERM (a
 * cancelled workflow) are forwarded once: a second signal would make it quit without freeing its locks.
 */
async function runDeployer(
  args: string[],
  env: NodeJS.ProcessEnv,
  cwd: string,
): Promise<{ code: number; json: CliJson }> {
  const resume = `deployer-${randomUUID()}`
  process.stdout.write(`::stop-commands::${resume}\n`)
  const ended = new Promise<{ code: number; json: CliJson }>((resolve, reject) => {
    const child = spawn(process.execPath, [deployerBin(), ...args], {
      cwd,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8')
    })
    child.stderr.on('data', (chunk: Buffer) => {
      process.stderr.write(chunk)
      // Only the tail is needed to explain a run that printed no JSON.
      stderr = (stderr + chunk.toString('utf8')).slice(-64 * 1024)
    })
    const forward = (signal: NodeJS.Signals) => child.kill(signal)
    process.on('SIGINT', forward)
    process.on('SIGTERM', forward)
    child.on('error', reject)
    child.on('close', (exit, signal) => {
      process.off('SIGINT', forward)
      process.off('SIGTERM', forward)
      const code = exit ?? (signal ? 128 + (os.constants.signals[signal] ?? 0) : ExitCode.failure)
      resolve({ code, json: parseResult(stdout) ?? resultFromStderr(code, stderr) })
    })
  })
  return ended.finally(() => process.stdout.write(`::${resume}::\n`))
}

function parseResult(stdout: string): CliJson | undefined {
  try {
    const value: unknown = JSON.parse(stdout)
    return value !== null && typeof value === 'object' && 'ok' in value ? (value as CliJson) : undefined
  } catch {
    return undefined
  }
}

/**
 * The deployer CLI to run: deployer.cjs beside this script when it runs from the action's bundle
 * (dist-action, committed, no node_modules), else bin/run.js of this package, found upwards from the
 * script (dist/src/action/main.js).
 */
function deployerBin(): string {
  let dir = path.dirname(path.resolve(process.argv[1] ?? '.'))
  const bundled = path.join(dir, 'deployer.cjs')
  if (existsSync(bundled)) return bundled
  while (!existsSync(path.join(dir, 'package.json')) || !existsSync(path.join(dir, 'bin', 'run.js'))) {
    const parent = path.dirname(dir)
    if (parent === dir) throw new Error('Cannot find bin/run.js above the action script.')
    dir = parent
  }
  return path.join(dir, 'bin', 'run.js')
}

runAction(process.env).then(
  (code) => {
    process.exitCode = code
  },
  (error: unknown) => {
    const message = error instanceof Error ? error.message : String(error)
    process.stdout.write(`${workflowCommand('error', `The deployer action failed: ${message}`)}\n`)
    process.exitCode = ExitCode.failure
  },
)
