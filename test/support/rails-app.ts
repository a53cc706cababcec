import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { Workspace } from './fixture.js'
import { type PumaAppOptions, writePumaApp } from './puma-app.js'

const run = promisify(execFile)

/**
 * A minimal Rails 6.1 app (Debian's ruby-rails) as `rails new --minimal` would shape it, with the whole
 * `rails` gem and Debian's Puma 5.6.5 in its Gemfile, resolved from the system gems (no vendored path)
 * and started with `bundle exec puma` in production: one controller answering `release=N version=V pid=P`.
 */
const GEMFILE = 'source "https://rubygems.org"\ngem "rails", "6.1.7.10"\ngem "puma", "5.6.5"\n'

const FILES: Record<string, string> = {
  'config/boot.rb':
    'ENV["BUNDLE_GEMFILE"] ||= File.expand_path("../Gemfile", __dir__)\nrequire "bundler/setup"\n',
  'config/application.rb': [
    'require_relative "boot"',
    'require "rails"',
    'require "action_controller/railtie"',
    'Bundler.require(*Rails.groups)',
    'module Shop',
    '  class Application < Rails::Application',
    '    config.load_defaults 6.1',
    '    config.eager_load = true',
    '    config.logger = Logger.new($stdout, level: :warn)',
    '  end',
    'end',
    '',
  ].join('\n'),
  'config/environment.rb': 'require_relative "application"\nRails.application.initialize!\n',
  'config/routes.rb': 'Rails.application.routes.draw { root "pages#show" }\n',
  'app/controllers/application_controller.rb': 'class ApplicationController < ActionController::Base\nend\n',
}

/** The environment file for server.env_files: production, with a secret key base (a test value). */
export const RAILS_ENV_FILE = `RAILS_ENV=production\nSECRET_KEY_BASE=${'0123456789abcdef'.repeat(8)}\n`

let lockfile: Promise<string> | undefined

/** Gemfile.lock for GEMFILE against this machine's system gems, resolved once per run. */
function railsLockfile(): Promise<string> {
  lockfile ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), 'deployer-rails-lock-'))
    try {
      await writeFile(join(dir, 'Gemfile'), GEMFILE)
      await run('bundle', ['lock', '--local'], {
        cwd: dir,
        env: { ...process.env, BUNDLE_GEMFILE: join(dir, 'Gemfile') },
      })
      return await readFile(join(dir, 'Gemfile.lock'), 'utf8')
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })()
  return lockfile
}

/** Writes the Rails app with writePumaApp's puma.rb (the options as it takes them; config.ru is Rails'). */
export async function writeRailsApp(ws: Workspace, options: PumaAppOptions): Promise<void> {
  await writePumaApp(ws, options)
  await writeFile(
    join(ws.source, 'config.ru'),
    'require_relative "config/environment"\nrun Rails.application\n',
  )
  await writeFile(join(ws.source, 'Gemfile'), GEMFILE)
  await writeFile(join(ws.source, 'Gemfile.lock'), await railsLockfile())
  for (const [path, content] of Object.entries(FILES)) {
    await mkdir(join(ws.source, path, '..'), { recursive: true })
    await writeFile(join(ws.source, path), content)
  }
  await writeFile(
    join(ws.source, 'app/controllers/pages_controller.rb'),
    [
      'class PagesController < ApplicationController',
      '  RELEASE = (File.read(Rails.root.join("RELEASE")).strip rescue "dev")',
      '  def show',
      `    render plain: "release=#{RELEASE} version=${options.version} pid=#{Process.pid}\\n"`,
      '  end',
      'end',
      '',
    ].join('\n'),
  )
}
