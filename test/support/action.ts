import { type ChildProcess, spawn } from 'node:child_process'
import { cpSync, mkdtempSync, rmSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { cliEnv, watchProcess } from './cli.js'

/** The committed action bundle, which action.yml runs (test/package/ checks that it is up to date). */
export const ACTION_DIST = fileURLToPath(new URL('../../dist-action', import.meta.url))

let actionCopy: string | undefined

/**
 * The action's entry point as a runner has it: the committed bundle copied into a directory with no
 * node_modules anywhere above it (as $GITHUB_ACTION_PATH is), once per test run, so it can only work
 * if the bundle holds everything.
 */
export function actionMain(): string {
  if (!actionCopy) {
    const dir = mkdtempSync(join(tmpdir(), 'deployer-action-path-'))
    cpSync(ACTION_DIST, join(dir, 'dist-action'), { recursive: true })
    process.on('exit', () => rmSync(dir, { recursive: true, force: true }))
    actionCopy = join(dir, 'dist-action', 'main.cjs')
  }
  return actionCopy
}

/** Reads a GITHUB_OUTPUT file the way the runner does: `name=value` lines and `name<<DELIMITER` blocks. */
export function readOutputFile(text: string): Record<string, string> {
  const outputs: Record<string, string> = {}
  const lines = text.split('\n')
  for (let index = 0; index < lines.length; index++) {
    const line = lines[index] as string
    const block = /^([^=<]+)<<(.+)$/.exec(line)
    if (block) {
      const end = lines.indexOf(block[2] as string, index + 1)
      outputs[block[1] as string] = lines.slice(index + 1, end).join('\n')
      index = end
    } else if (line.includes('='))
      outputs[line.slice(0, line.indexOf('='))] = line.slice(line.indexOf('=') + 1)
  }
  return outputs
}

/** The files and directories a GitHub runner gives a step, in a scratch directory. */
export interface Runner {
  dir: string
  output: string
  summary: string
  temp: string
}

export async function makeRunner(): Promise<Runner> {
  const dir = await mkdtemp(join(tmpdir(), 'deployer-runner-'))
  const runner = {
    dir,
    output: join(dir, 'output'),
    summary: join(dir, 'summary.md'),
    temp: join(dir, 'temp'),
  }
  await mkdir(runner.temp)
  await writeFile(runner.output, '')
  await writeFile(runner.summary, '')
  return runner
}

export interface ActionRun {
  code: number | null
  stdout: string
  stderr: string
  /** Everything in GITHUB_OUTPUT, as written. */
  outputText: string
  outputs: Record<string, string>
  summary: string
}

/** A running action step; `done` resolves once it exits, with what it wrote. */
export interface RunningAction {
  child: ChildProcess
  done: Promise<ActionRun>
}

/**
 * Starts the action's entry point as action.yml does: the inputs in INPUT_* variables, and the runner's
 * GITHUB_OUTPUT, GITHUB_STEP_SUMMARY, RUNNER_TEMP and GITHUB_WORKSPACE. The step's own directory is
 * somewhere else, as on a runner, so only GITHUB_WORKSPACE and working-directory can lead to the config.
 */
export function startAction(
  runner: Runner,
  workspace: string,
  inputs: Record<string, string>,
  env: NodeJS.ProcessEnv = {},
): RunningAction {
  const child = spawn(process.execPath, [actionMain()], {
    cwd: runner.dir,
    env: cliEnv({
      ...env,
      GITHUB_ACTIONS: 'true',
      GITHUB_OUTPUT: runner.output,
      GITHUB_STEP_SUMMARY: runner.summary,
      RUNNER_TEMP: runner.temp,
      GITHUB_WORKSPACE: workspace,
      ...Object.fromEntries(Object.entries(inputs).map(([name, value]) => [`INPUT_${name}`, value])),
    }),
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const done = watchProcess(child).result.then(async ({ code, stdout, stderr }) => {
    const [outputText, summary] = await Promise.all([
      readFile(runner.output, 'utf8'),
      readFile(runner.summary, 'utf8'),
    ])
    return { code, stdout, stderr, outputText, outputs: readOutputFile(outputText), summary }
  })
  return { child, done }
}
