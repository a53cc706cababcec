import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { cp, mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

const run = promisify(execFile)

/**
 * The Puma versions deployer is tested against: Debian bookworm's packaged 5.6.5 and the newest release
 * of each later major, which apps bundle themselves (gems in ../shared/gems, see its README.md).
 */
export const PUMA_VERSIONS = ['5.6.5', '6.6.1', '7.2.1', '8.0.2'] as const
export type PumaVersion = (typeof PUMA_VERSIONS)[number]

/** The version Debian packages: resolved from the system gems, never vendored. */
export const DEBIAN_PUMA: PumaVersion = '5.6.5'

/** How a production app starts its bundled Puma. */
export const BUNDLED_START = 'bundle exec puma -C config/puma.rb'

/**
 * install.command for a bundled app: offline, against the gems in vendor/cache. With the prebuilt
 * vendor/bundle and Gemfile.lock the fixture ships, it only checks that everything is there ("Using ...").
 */
export const BUNDLED_INSTALL = 'bundle install --local'

const NIO4R = 'nio4r-2.7.4.gem'
const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url))

/**
 * Where the source gems live: DEPLOYER_SHARED_GEMS, else `../shared/gems` beside the repository (the
 * layout here and in CI).
 */
export function sharedGemsDir(): string {
  return resolve(process.env.DEPLOYER_SHARED_GEMS ?? join(REPO_ROOT, '..', 'shared', 'gems'))
}

/** The Puma major a version string belongs to (`'8.0.2'` -> 8). */
export function pumaMajor(version: string): number {
  return Number(version.split('.')[0])
}

/** Files a bundled fixture copies from the prebuilt bundle (vendor/bundle is hardlinked when it can be). */
const BUNDLE_FILES = ['Gemfile', 'Gemfile.lock', '.bundle/config', 'vendor/cache']

const builds = new Map<string, Promise<string>>()

/**
 * Makes `source` bundle Puma `version` the way production apps do: Puma in the Gemfile, started with
 * `bundle exec puma`. 6.6.1 and later: the gems in vendor/cache, `path vendor/bundle` in .bundle/config,
 * and the compiled bundle copied in, so that `bundle install --local` on the host is a no-op. 5.6.5:
 * Debian's packaged gem resolved through the Gemfile without a `path` (Bundler with a `path` hides the
 * system gems, and Debian ships no .gem files to vendor).
 *
 * The bundle is built once per Puma version, Ruby and gem file, into a cache shared by all test processes.
 */
export async function bundlePuma(source: string, version: PumaVersion): Promise<void> {
  const built = await prebuiltBundle(version)
  for (const file of BUNDLE_FILES) {
    const from = join(built, file)
    if (!(await exists(from))) continue
    await mkdir(join(source, file, '..'), { recursive: true })
    await cp(from, join(source, file), { recursive: true, force: true })
  }
  if (version !== DEBIAN_PUMA)
    await linkTree(join(built, 'vendor', 'bundle'), join(source, 'vendor', 'bundle'))
}

/** The directory holding the installed bundle for `version`, built on first use. */
export function prebuiltBundle(version: PumaVersion): Promise<string> {
  let build = builds.get(version)
  if (!build) {
    build = buildBundle(version)
    builds.set(version, build)
    // A failed build may succeed on a later call (e.g. after the gems dir was fixed).
    build.catch(() => builds.delete(version))
  }
  return build
}

async function buildBundle(version: PumaVersion): Promise<string> {
  const gems = sharedGemsDir()
  const vendored = version === DEBIAN_PUMA ? [] : [`puma-${version}.gem`, NIO4R]
  const hash = createHash('sha256')
  hash.update(`puma ${version}\n`)
  for (const tool of ['ruby', 'bundle']) {
    const { stdout } = await run(tool, ['--version'])
    hash.update(stdout)
  }
  for (const gem of vendored) {
    const path = join(gems, gem)
    const bytes = await readFile(path).catch((error: NodeJS.ErrnoException) => {
      throw new Error(
        `${path}: ${error.code}: the source gems are missing (set DEPLOYER_SHARED_GEMS to their dir)`,
      )
    })
    hash.update(bytes)
  }
  const root = join(process.env.DEPLOYER_BUNDLE_CACHE ?? join(tmpdir(), 'deployer-bundled-puma'))
  const target = join(root, `puma-${version}-${hash.digest('hex').slice(0, 16)}`)
  if (await exists(join(target, 'Gemfile.lock'))) return target

  await mkdir(root, { recursive: true, mode: 0o755 })
  // Built aside and renamed into place: two test processes may build at once; the first rename wins.
  const scratch = await mkdtemp(join(root, `.build-${version}-`))
  try {
    await writeFile(join(scratch, 'Gemfile'), `source "https://rubygems.org"\ngem "puma", "${version}"\n`)
    const env = { ...process.env, BUNDLE_APP_CONFIG: undefined, BUNDLE_GEMFILE: join(scratch, 'Gemfile') }
    if (vendored.length > 0) {
      await mkdir(join(scratch, 'vendor', 'cache'), { recursive: true })
      for (const gem of vendored) await cp(join(gems, gem), join(scratch, 'vendor', 'cache', gem))
      await run('bundle', ['config', 'set', '--local', 'path', 'vendor/bundle'], { cwd: scratch, env })
    }
    await run('bundle', ['install', '--local'], { cwd: scratch, env, maxBuffer: 16 * 1024 * 1024 }).catch(
      (error: { stdout?: string; stderr?: string; message: string }) => {
        throw new Error(
          `bundling Puma ${version} failed: ${error.message}\n${error.stdout ?? ''}${error.stderr ?? ''}`,
        )
      },
    )
    await run('chmod', ['-R', 'a+rX', scratch])
    await rename(scratch, target).catch(async (error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOTEMPTY' && error.code !== 'EEXIST') throw error
    })
  } finally {
    await rm(scratch, { recursive: true, force: true })
  }
  return target
}

/** Hardlinks a tree (cheap, same filesystem), falling back to a copy. */
async function linkTree(from: string, to: string): Promise<void> {
  await rm(to, { recursive: true, force: true })
  await mkdir(join(to, '..'), { recursive: true })
  try {
    await run('cp', ['-al', from, to])
  } catch {
    await rm(to, { recursive: true, force: true })
    await cp(from, to, { recursive: true })
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  )
}
