import { execFile, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { cp, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
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
  /** Holds Gemfile, Gemfile.lock and vendor/cache/*.gem (and an installed vendor/bundle, not to copy). */
  dir: string
  /** Wall-clock seconds one boot (Bundler.setup + Bundler.require) took in the sanity check. */
  bootSeconds: number
}

let prepared: Promise<BigGemfile> | undefined

/**
 * Builds the gems once per run (and reuses a complete build of the same generator from an earlier run),
 * installs them next to them, and checks that one boot really takes MIN_BOOT_SECONDS or more.
 */
export function prepareBigGemfile(): Promise<BigGemfile> {
  prepared ??= build().catch((error) => {
    prepared = undefined
    throw error
  })
  return prepared
}

async function build(): Promise<BigGemfile> {
  const key = createHash('sha256')
    .update(GENERATOR_RB)
    .update(JSON.stringify(BALLAST))
    .digest('hex')
    .slice(0, 12)
  const dir = join(tmpdir(), `deployer-big-gemfile-${key}`)
  const done = join(dir, '.complete')
  if (!(await exists(done))) {
    const partial = `${dir}.partial-${process.pid}`
    await rm(partial, { recursive: true, force: true })
    await mkdir(partial, { recursive: true })
    await run(
      'ruby',
      [
        '-e',
        GENERATOR_RB,
        partial,
        String(BALLAST.gems),
        String(BALLAST.filesPerGem),
        String(BALLAST.methodsPerFile),
      ],
      { maxBuffer: 16 * 1024 * 1024 },
    )
    // Without the deployment setting, this resolves from vendor/cache alone and writes the Gemfile.lock.
    await run('bundle', ['install', '--local', '--quiet'], {
      cwd: partial,
      env: { ...process.env, BUNDLE_PATH: 'vendor/bundle', BUNDLE_APP_CONFIG: join(partial, '.bundle') },
      maxBuffer: 16 * 1024 * 1024,
    })
    await rm(dir, { recursive: true, force: true })
    await rename(partial, dir)
    await writeFile(done, new Date().toISOString())
  }
  const bootSeconds = await timeBoot(dir)
  if (bootSeconds < MIN_BOOT_SECONDS)
    throw new Error(
      `The big-Gemfile app booted in ${bootSeconds.toFixed(2)} s, under the ${MIN_BOOT_SECONDS} s it must take: raise BALLAST in test/support/big-gemfile.ts.`,
    )
  return { dir, bootSeconds }
}

/** Wall-clock seconds of one Ruby process that sets up the bundle in `dir` and requires every gem. */
async function timeBoot(dir: string): Promise<number> {
  const started = process.hrtime.bigint()
  await new Promise<void>((resolve, reject) => {
    const child = spawn('ruby', ['-e', BUNDLE_BOOT_RB], {
      cwd: dir,
      env: { ...process.env, BUNDLE_PATH: 'vendor/bundle', BUNDLE_APP_CONFIG: join(dir, '.bundle') },
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
 * Writes the Puma app of writePumaApp whose config.ru first loads the big Gemfile: Gemfile, Gemfile.lock,
 * the gems in vendor/cache and a deployment .bundle/config, so `bundle install --local` (or `bundle check`
 * over a reused vendor/bundle) works offline on the host. Each worker boot then takes seconds.
 */
export async function writeSlowBootApp(ws: Workspace, options: PumaAppOptions): Promise<BigGemfile> {
  const gems = await prepareBigGemfile()
  await writePumaApp(ws, options)
  const configRu = join(ws.source, 'config.ru')
  await writeFile(configRu, `${BUNDLE_BOOT_RB}\n${await readFile(configRu, 'utf8')}`)
  for (const file of ['Gemfile', 'Gemfile.lock']) await cp(join(gems.dir, file), join(ws.source, file))
  await cp(join(gems.dir, 'vendor', 'cache'), join(ws.source, 'vendor', 'cache'), { recursive: true })
  await mkdir(join(ws.source, '.bundle'), { recursive: true })
  await writeFile(join(ws.source, '.bundle', 'config'), BUNDLE_CONFIG)
  return gems
}

/** The install section for the slow-booting app: offline, reusing the previous release's gems. */
export const SLOW_BOOT_INSTALL = {
  install: 'bundle install --local --quiet',
  installCheck: 'bundle check',
  installVendor: 'vendor/bundle',
} as const

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  )
}
