import { lstat, mkdir, rename, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { parseConfig } from '../config/load.js'
import { DeployerError, ExitCode } from '../errors.js'
import { initFiles, nextSteps, type PlannedWrite, planWrites, refusalError } from './plan.js'
import { type InitSettings, templateValues } from './settings.js'
import { renderTemplate } from './template.js'

export interface InitOptions {
  /** Reads a template by its name under the package's templates/ (`github/deploy.yml`). */
  readTemplate: (name: string) => Promise<string>
  /** The target directory, absolute; created when missing. */
  dir: string
  force: boolean
  dryRun: boolean
}

/** What `deployer init` did, or would do under --dry-run. */
export interface InitResult {
  dir: string
  dryRun: boolean
  /** The files were written: false for a dry run and for a refused run. */
  written: boolean
  files: PlannedWrite[]
  settings: InitSettings
  nextSteps: string[]
  /** Files exist and --force was not given; nothing was written. */
  error?: DeployerError
}

/**
 * Renders every requested template and writes the files into `options.dir`, or none of them when one
 * exists without --force. Everything is rendered and the new deployer.yml validated before the first write,
 * so a dry run fails exactly when a real run would, and a failing run leaves the directory as it was.
 */
export async function runInit(settings: InitSettings, options: InitOptions): Promise<InitResult> {
  const files = initFiles(settings)
  const existing = await existingPaths(
    options.dir,
    files.map((file) => file.path),
  )
  const plan = planWrites(files, existing, options.force)
  const values = templateValues(settings)
  const texts = await Promise.all(
    plan.map(async (file) => renderTemplate(await options.readTemplate(file.template), values)),
  )
  const config = plan.findIndex((file) => file.template === 'deployer.yml')
  checkRenderedConfig(texts[config] ?? '', path.join(options.dir, settings.config), settings)

  const error = refusalError(plan, options.dir)
  const result: InitResult = {
    dir: options.dir,
    dryRun: options.dryRun,
    written: false,
    files: plan,
    settings,
    nextSteps: nextSteps(settings),
    ...(error ? { error } : {}),
  }
  if (options.dryRun || error) return result
  for (const [index, file] of plan.entries()) {
    await writeOne(path.join(options.dir, file.path), texts[index] ?? '', file.status === 'overwrite')
  }
  return { ...result, written: true }
}

/**
 * Checks the rendered deployer.yml with the same validation every command applies, so init can never
 * write a config the other commands reject. A failure here is a bug in a template, not the user's doing.
 */
export function checkRenderedConfig(text: string, file: string, settings: InitSettings): void {
  try {
    parseConfig(text, file, { PUMA_CONTROL_TOKEN: 'token', USER: settings.user }, '/home/deploy')
  } catch (error) {
    throw new Error(
      `The deployer.yml that init rendered does not validate: ${error instanceof Error ? error.message : error}`,
      { cause: error },
    )
  }
}

/** Which of `paths` (relative to `dir`) exist, as anything: a dangling symlink counts too. */
async function existingPaths(dir: string, paths: readonly string[]): Promise<Set<string>> {
  const found = new Set<string>()
  for (const relative of paths) {
    const absolute = path.join(dir, relative)
    try {
      await lstat(absolute)
      found.add(relative)
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code
      if (code !== 'ENOENT') throw fileError('check', absolute, error)
    }
  }
  return found
}

/**
 * A new file is created exclusively (`wx`), so one that appeared since the check is never clobbered. An
 * overwrite goes through a temporary file and a rename: the old file stays whole until the new one is, and
 * a symlink in its place is replaced rather than followed.
 */
async function writeOne(file: string, text: string, overwrite: boolean): Promise<void> {
  try {
    await mkdir(path.dirname(file), { recursive: true })
    if (!overwrite) {
      await writeFile(file, text, { flag: 'wx' })
      return
    }
    const temporary = `${file}.deployer-init-${process.pid}`
    try {
      await writeFile(temporary, text, { flag: 'wx' })
      await rename(temporary, file)
    } catch (error) {
      await rm(temporary, { force: true })
      throw error
    }
  } catch (error) {
    throw fileError('write', file, error)
  }
}

function fileError(verb: string, file: string, error: unknown): DeployerError {
  const code = (error as NodeJS.ErrnoException).code ?? String(error)
  return new DeployerError(`Cannot ${verb} ${file} (${code}).`, {
    exitCode: ExitCode.failure,
    hint:
      code === 'EEXIST'
        ? 'Something created it while init ran; run init again.'
        : 'Check that --dir is a directory you can write to.',
    cause: error,
  })
}
