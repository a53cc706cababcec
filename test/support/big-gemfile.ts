import { execFile, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { cp, mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { promisify } from 'node:util'
import { type PumaVersion, prebuiltBundle } from './bundled-puma.js'
import type { Workspace } from './fixture.js'
import { type PumaAppOptions, writePumaApp } from './puma-app.js'

const run = promisify(execFile)

/**
 * A large Gemfile built offline: GEM_COUNT small local gems (`ballast001`...), each FILES_PER_GEM files of
 * METHODS_PER_FILE methods and constants, packed with RubyGems' own builder into vendor/cache. An app that
 * requires them all (`Bundler.require`) spends seconds in `Bundler.setup` and in loading Ruby on every
 * boot, like a real app with a big Gemfile, without any sleep.
 */
export const BALLAST = { gems: 200, filesPerGem: 10, methodsPerFile: 40 } as const

/** Each boot of the app must take at least this long (the fixture checks it once per run). */
export const MIN_BOOT_SECONDS = 3

/** Generates the gems and the Gemfile in ARGV[0] (the counts follow); run once per run. */
const GENERATOR_RB = `
require "rubygems/package"
require "fileutils"
out, count, files, methods = ARGV[0], Integer(ARGV[1]), Integer(ARGV[2]), Integer(ARGV[3])
cache = File.join(out, "vendor", "cache")
FileUtils.mkdir_p(cache)
Gem::DefaultUserInteraction.ui = Gem::SilentUI.new
names = (1..count).map { |i| format("ballast%03d", i) }
names.each do |name|
  dir = File.join(out, "src", name)
  mod = name.capitalize
  FileUtils.mkdir_p(File.join(dir, "lib", name))
  parts = (1..files).map do |f|
    body = (1..methods).map do |m|
      "    def self.m#{m}(x) = x.to_s * #{m % 7 + 1} + #{name.inspect}.reverse\\n" \\
        "    CONST#{m} = [#{m}, #{"#{name}-#{f}-#{m}".inspect}].freeze\\n"
    end.join
    File.write(File.join(dir, "lib", name, "part#{f}.rb"), "module #{mod}\\n  module Part#{f}\\n#{body}  end\\nend\\n")
    "require #{"#{name}/part#{f}".inspect}"
  end
  File.write(File.join(dir, "lib", "#{name}.rb"), "#{parts.join("\\n")}\\nmodule #{mod}\\n  VERSION = \\"1.0.0\\"\\nend\\n")
  spec = Gem::Specification.new do |s|
    s.name = name
    s.version = "1.0.0"
    s.summary = "Ballast for a slow-booting test app"
    s.authors = ["deployer tests"]
    s.license = "MIT"
    s.homepage = "https://example.invalid/#{name}"
    s.files = Dir.chdir(dir) { Dir["lib/**/*.rb"].sort }
    s.require_paths = ["lib"]
  end
  Dir.chdir(dir) { FileUtils.mv(Gem::Package.build(spec), cache) }
end
FileUtils.rm_rf(File.join(out, "src"))
File.write(File.join(out, "Gemfile"), "source \\"https://rubygems.org\\"\\n" + names.map { |n| "gem #{n.inspect}, \\"1.0.0\\"\\n" }.join)
`

/**
 * What config.ru runs first: Bundler.setup from the release's Gemfile, then every gem of it. Debian's
 * Puma runs outside Bundler, and Bundler.setup drops the load paths of gems active but not in the bundle
 * (puma, nio4r, rack), so they are put back (reference/test-bench.md).
 */
export const BUNDLE_BOOT_RB = [
  'saved_load_path = $LOAD_PATH.dup',
  'require "bundler/setup"',
  '$LOAD_PATH.concat(saved_load_path - $LOAD_PATH)',
  'Bundler.require',
].join('\n')

/** The deployment settings each release carries: frozen, offline, gems under vendor/bundle. */
const BUNDLE_CONFIG = '---\nBUNDLE_DEPLOYMENT: "true"\nBUNDLE_PATH: "vendor/bundle"\n'

export interface BigGemfile {
  /**
   * Holds Gemfile, Gemfile.lock, vendor/cache/*.gem and the installed vendor/bundle: the ballast gems,
   * plus Puma and nio4r when Puma is bundled.
   */
  dir: string
  /** The bundled Puma version; undefined for Debian's Puma run outside Bundler. */
  bundledPuma?: PumaVersion
  /** Wall-clock seconds one boot (Bundler.setup + Bundler.require) took in the sanity check. */
  bootSeconds: number
}

let ballast: Promise<string> | undefined
const variants = new Map<string, Promise<BigGemfile>>()

/**
 * The big bundle, alone (Debian's Puma runs outside Bundler) or with Puma `bundledPuma` in it: the gems
 * are generated once per run (a complete earlier build of the same generator is reused), each variant
 * installed once, and one boot checked to take MIN_BOOT_SECONDS or more.
 */
export function prepareBigGemfile(bundledPuma?: PumaVersion): Promise<BigGemfile> {
  const key = bundledPuma ?? 'debian'
  let variant = variants.get(key)
  if (!variant) {
    variant = buildVariant(bundledPuma)
    variants.set(key, variant)
    variant.catch(() => variants.delete(key))
  }
  return variant
}

const GENERATOR_KEY = createHash('sha256')
  .update(GENERATOR_RB)
  .update(JSON.stringify(BALLAST))
  .digest('hex')
  .slice(0, 12)

/** The ballast gems in `<dir>/vendor/cache` and their Gemfile lines in `<dir>/Gemfile`. */
function ballastGems(): Promise<string> {
  ballast ??= cached(`deployer-big-gemfile-${GENERATOR_KEY}`, async (dir) => {
    const counts = [BALLAST.gems, BALLAST.filesPerGem, BALLAST.methodsPerFile].map(String)
    await run('ruby', ['-e', GENERATOR_RB, dir, ...counts], { maxBuffer: 16 * 1024 * 1024 })
  }).catch((error) => {
    ballast = undefined
    throw error
  })
  return ballast
}

async function buildVariant(bundledPuma: PumaVersion | undefined): Promise<BigGemfile> {
  const gems = await ballastGems()
  const puma = bundledPuma ? await prebuiltBundle(bundledPuma) : undefined
  const name = `deployer-big-gemfile-${GENERATOR_KEY}-${bundledPuma ? `puma-${bundledPuma}` : 'debian'}`
  const dir = await cached(name, async (dir) => {
    const ballastLines = (await readFile(join(gems, 'Gemfile'), 'utf8')).split('\n').slice(1).join('\n')
    const pumaLine = bundledPuma ? `gem "puma", "${bundledPuma}"\n` : ''
    await writeFile(join(dir, 'Gemfile'), `source "https://rubygems.org"\n${pumaLine}${ballastLines}`)
    await cp(join(gems, 'vendor', 'cache'), join(dir, 'vendor', 'cache'), { recursive: true })
    if (puma) {
      await cp(join(puma, 'vendor', 'cache'), join(dir, 'vendor', 'cache'), { recursive: true })
      // Puma's compiled extension comes along, so nothing compiles again.
      await run('cp', ['-al', join(puma, 'vendor', 'bundle'), join(dir, 'vendor', 'bundle')])
    }
    // Without the deployment setting, this resolves from vendor/cache alone and writes the Gemfile.lock.
    await run('bundle', ['install', '--local', '--quiet'], {
      cwd: dir,
      env: bundleEnv(dir, { BUNDLE_PATH: 'vendor/bundle' }),
      maxBuffer: 16 * 1024 * 1024,
    })
    await mkdir(join(dir, '.bundle'))
    await writeFile(join(dir, '.bundle', 'config'), BUNDLE_CONFIG)
    await run('chmod', ['-R', 'a+rX', dir])
  })
  const bootSeconds = await timeBoot(dir)
  if (bootSeconds < MIN_BOOT_SECONDS)
    throw new Error(
      `The big-Gemfile app booted in ${bootSeconds.toFixed(2)} s, under the ${MIN_BOOT_SECONDS} s it must take: raise BALLAST in test/support/big-gemfile.ts.`,
    )
  return { dir, bundledPuma, bootSeconds }
}

/**
 * `tmpdir()/name`, made by `make` into a scratch dir renamed into place once complete (parallel test
 * processes: the first rename wins), or as an earlier run left it complete.
 */
async function cached(name: string, make: (dir: string) => Promise<void>): Promise<string> {
  const dir = join(tmpdir(), name)
  if (await exists(join(dir, '.complete'))) return dir
  const scratch = await mkdtemp(join(tmpdir(), `.${name}-`))
  try {
    await make(scratch)
    await writeFile(join(scratch, '.complete'), new Date().toISOString())
    await rm(dir, { recursive: true, force: true })
    await rename(scratch, dir).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOTEMPTY' && error.code !== 'EEXIST') throw error
    })
  } finally {
    await rm(scratch, { recursive: true, force: true })
  }
  return dir
}

/** Bundler's environment for `dir` alone, whatever the caller's BUNDLE_* say. */
function bundleEnv(dir: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra, BUNDLE_GEMFILE: join(dir, 'Gemfile') }
  env.BUNDLE_APP_CONFIG = join(dir, '.bundle')
  return env
}

/** Wall-clock seconds of one Ruby process that sets up the bundle in `dir` and requires every gem. */
async function timeBoot(dir: string): Promise<number> {
  const started = process.hrtime.bigint()
  await new Promise<void>((resolve, reject) => {
    const child = spawn('ruby', ['-e', BUNDLE_BOOT_RB], {
      cwd: dir,
      env: bundleEnv(dir),
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    let stderr = ''
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8')
    })
    child.on('error', reject)
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`the big-Gemfile boot exited ${code}:\n${stderr}`)),
    )
  })
  return Number(process.hrtime.bigint() - started) / 1e9
}

/**
 * Writes the Puma app of writePumaApp whose config.ru first loads the big Gemfile, shipped as production
 * apps ship theirs: Gemfile, Gemfile.lock, the gems in vendor/cache, a deployment .bundle/config and the
 * installed vendor/bundle, so `bundle install --local` on the host is quick and offline. With
 * `bundledPuma`, Puma is in that Gemfile and starts with `bundle exec puma` (writePumaConfig's option of
 * the same name), so the master too sets up the whole bundle on every start and hot restart.
 */
export async function writeSlowBootApp(ws: Workspace, options: PumaAppOptions): Promise<BigGemfile> {
  const gems = await prepareBigGemfile(options.bundledPuma)
  // A worker boot takes minutes on a machine this busy; Puma's default would kill it after 60 s.
  await writePumaApp(ws, {
    ...options,
    extraConfig: ['worker_boot_timeout 900', ...(options.extraConfig ?? [])],
  })
  const configRu = join(ws.source, 'config.ru')
  await writeFile(configRu, `${BUNDLE_BOOT_RB}\n${await readFile(configRu, 'utf8')}`)
  for (const file of ['Gemfile', 'Gemfile.lock', '.bundle/config']) {
    await mkdir(dirname(join(ws.source, file)), { recursive: true })
    await cp(join(gems.dir, file), join(ws.source, file))
  }
  await cp(join(gems.dir, 'vendor', 'cache'), join(ws.source, 'vendor', 'cache'), { recursive: true })
  const bundle = join(ws.source, 'vendor', 'bundle')
  // Hardlinked (bundlePuma may have linked Puma's smaller bundle here): the same inodes each release.
  await rm(bundle, { recursive: true, force: true })
  await run('cp', ['-al', join(gems.dir, 'vendor', 'bundle'), bundle])
  return gems
}

/** install.command for the slow-booting app: checks the shipped bundle, offline. */
export const SLOW_BOOT_INSTALL = 'bundle install --local --quiet'

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  )
}
