import { readFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { LineCounter, parseDocument } from 'yaml'
import { ConfigError, DeployerError, ExitCode } from '../errors.js'
import { readConfig } from './schema.js'
import { applySshEnv } from './ssh-env.js'
import type { DeployConfig } from './types.js'
import { type Ctx, formatProblems, type Problem, syntaxProblem } from './yaml-reader.js'

/*
 * deployer.yml → DeployConfig. The parts: yaml-reader.ts (the reader kit: one node, one problem at a
 * time), schema.ts (the keys, the values they take, the one table of defaults), hosts.ts, value-rules.ts
 * (names and paths) and env-expand.ts (${VAR}). Callers import from here.
 */

export { expandEnv } from './env-expand.js'
export { type HostSpec, parseHostSpec, selectHosts } from './hosts.js'
export { DEFAULTS } from './schema.js'
export { APP_PATTERN, deployToProblem, USER_PATTERN } from './value-rules.js'

/**
 * Reads and validates a deployer.yml. A missing or unreadable file is a DeployerError with the config exit
 * code; a file with problems is one ConfigError listing every problem with its line and column. The
 * `DEPLOYER_SSH_IDENTITY`, `DEPLOYER_KNOWN_HOSTS` and `DEPLOYER_HOST_KEY` variables override `ssh:`.
 */
export async function loadConfig(
  file: string,
  options: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Promise<DeployConfig> {
  const env = options.env ?? process.env
  const cwd = options.cwd ?? process.cwd()
  const homeDir = env.HOME || os.homedir()
  const absolute = path.resolve(cwd, file)
  let text: string
  try {
    text = await readFile(absolute, 'utf8')
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT') {
      throw new DeployerError(`There is no config file at ${absolute}.`, {
        exitCode: ExitCode.config,
        hint: 'Run `deployer init` to write one, or pass --config FILE.',
        cause: error,
      })
    }
    throw new DeployerError(`Cannot read the config file ${absolute} (${code ?? String(error)}).`, {
      exitCode: ExitCode.config,
      hint: 'Check that the path is a readable file.',
      cause: error,
    })
  }
  return applySshEnv(parseConfig(text, absolute, env, homeDir), env, { cwd, homeDir })
}

/**
 * Validates the text of a deployer.yml and fills in every default. `file` should be absolute: it names the
 * file in problems and `source` and other local paths are resolved against its directory. Throws one
 * ConfigError with every problem found, each as `file:line:col: key.path: message`.
 */
export function parseConfig(
  text: string,
  file: string,
  env: NodeJS.ProcessEnv,
  homeDir: string,
): DeployConfig {
  const lineCounter = new LineCounter()
  // prettyErrors would append a code frame to each message; we report positions our own way.
  const doc = parseDocument(text, { lineCounter, prettyErrors: false })
  const format = (problems: Problem[]) => formatProblems(file, lineCounter, problems)
  // Past a syntax error the tree is a guess: checking keys in it would bury the real problem in noise.
  if (doc.errors.length > 0) throw new ConfigError(file, format(doc.errors.map(syntaxProblem)))

  const ctx: Ctx = { doc, env, homeDir, configDir: path.dirname(file), problems: [] }
  const config = readConfig(ctx, file)
  if (ctx.problems.length > 0) throw new ConfigError(file, format(ctx.problems))
  return config
}
