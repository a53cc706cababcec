import { join } from 'node:path'
import { DeployerError, ExitCode } from '../errors.js'

/**
 * A source file that changed or could not be read while deployer read it: an input problem, named by
 * its path, never a crash to debug. Nothing is published when it happens (the partial release goes).
 */
export class SourceFileError extends DeployerError {
  readonly path: string

  constructor(message: string, path: string, hint: string) {
    super(message, { exitCode: ExitCode.failure, hint })
    this.path = path
  }
}

const BUILD_HINT =
  'Release from a finished build nothing writes to while deployer runs (build into its own directory, then release it), or leave files that keep changing out with `exclude:`.'

/** The file had `expected` bytes when the source was scanned and now has another size. */
export function sourceChanged(
  root: string,
  path: string,
  expected: number,
  actual?: number,
): SourceFileError {
  const now = actual === undefined ? '' : ` (${expected} bytes when the source was scanned, ${actual} now)`
  return new SourceFileError(
    `The source file ${join(root, path)} changed while it was being uploaded${now}; nothing was published.`,
    path,
    BUILD_HINT,
  )
}

/** The file could not be read (gone, unreadable) while scanning or uploading. */
export function sourceUnreadable(
  root: string,
  path: string,
  error: unknown,
  when: 'scanned' | 'uploaded',
): SourceFileError {
  const code = (error as NodeJS.ErrnoException | undefined)?.code
  const reason =
    code === 'ENOENT'
      ? 'it was removed'
      : code === 'EACCES' || code === 'EPERM'
        ? 'permission denied'
        : error instanceof Error
          ? error.message
          : String(error)
  const hint =
    code === 'EACCES' || code === 'EPERM'
      ? 'Make it readable by the user running deployer, or leave it out with `exclude:`.'
      : BUILD_HINT
  return new SourceFileError(
    `The source file ${join(root, path)} could not be read while it was being ${when} (${reason}${code && !reason.includes(code) ? `, ${code}` : ''}); nothing was published.`,
    path,
    hint,
  )
}

/** Whether a stream error is tar-stream's check that an entry got exactly the bytes its header said. */
export function isSizeMismatch(error: unknown): boolean {
  return error instanceof Error && /size mismatch/i.test(error.message)
}
