import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

const run = promisify(execFile)

/** The repository's root. */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url))

/** One scratch directory for the whole test run, removed when the process exits. */
let scratch: string | undefined
function scratchDir(): string {
  if (!scratch) {
    const dir = mkdtempSync(join(tmpdir(), 'deployer-package-'))
    scratch = dir
    process.on('exit', () => rmSync(dir, { recursive: true, force: true }))
  }
  return scratch
}

/** A file of the packed tarball, as `npm pack --json` lists it. */
export interface PackedFile {
  path: string
  size: number
  mode: number
}

/** The tarball `npm pack` made, and the `deployer` command of that tarball installed into an empty prefix. */
export interface InstalledPackage {
  tarball: string
  files: PackedFile[]
  /** The --prefix the tarball was installed into with `npm install --global`. */
  prefix: string
  /** prefix/bin/deployer: the command a user runs. */
  bin: string
  /** Where npm put the package: prefix/lib/node_modules/deployer-cli. */
  packageDir: string
}

let installed: Promise<InstalledPackage> | undefined

/**
 * Packs the repository as `npm publish` would and installs the tarball globally into an empty prefix,
 * once per test run. `npm test` has built dist/ already, so the pack skips `prepack` (which builds);
 * the install is offline because the package has no dependencies.
 */
export function installPackage(): Promise<InstalledPackage> {
  installed ??= (async () => {
    const dir = scratchDir()
    const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], {
      cwd: ROOT,
      maxBuffer: 16 * 1024 * 1024,
    })
    const [packed] = JSON.parse(stdout) as { filename: string; files: PackedFile[] }[]
    if (!packed) throw new Error(`npm pack printed no tarball:\n${stdout}`)
    const tarball = join(dir, packed.filename)
    const prefix = join(dir, 'prefix')
    await run(
      'npm',
      ['install', '--global', '--prefix', prefix, '--offline', '--no-audit', '--no-fund', tarball],
      {
        cwd: dir,
      },
    )
    return {
      tarball,
      files: packed.files,
      prefix,
      bin: join(prefix, 'bin', 'deployer'),
      packageDir: join(prefix, 'lib', 'node_modules', 'deployer-cli'),
    }
  })()
  return installed
}

/** The single executable scripts/build-sea.mjs writes. */
export const SEA_BIN = join(ROOT, 'dist', 'sea', 'deployer')

let sea: Promise<string> | undefined

/** Builds the single executable from the built dist/deployer.cjs, once per test run. */
export function buildSea(): Promise<string> {
  sea ??= run(process.execPath, [join(ROOT, 'scripts', 'build-sea.mjs')], { cwd: ROOT }).then(() => SEA_BIN)
  return sea
}
