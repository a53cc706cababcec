import './no-engine-check.js'
import path from 'node:path'
import { execute, handle, type Interfaces, Plugin } from '@oclif/core'
import { COMMANDS } from './commands.js'
import { useTemplateAssets } from './templates.js'

/**
 * package.json's name, version and oclif settings, put here by scripts/bundle.mjs (esbuild `define`):
 * the single executable and the action's copy of the CLI have no package.json beside them.
 */
declare const DEPLOYER_PACKAGE: Interfaces.PJSON

/**
 * The self-contained CLI (dist/deployer.cjs): the single executable's script and the CLI the GitHub
 * Action runs. Unlike the npm bundle it needs nothing on disk: oclif gets package.json from the
 * bundle, and the commands as they are. oclif's explicit strategy would import its `target` file,
 * which a single executable cannot do (its require loads only Node's own modules), so the root
 * plugin is handed the command map before it loads (the cache the explicit strategy fills itself).
 */
async function runStandalone(): Promise<void> {
  // getBuiltinModule because a single executable cannot import(); both it and node:sea are missing
  // from older Node 20 releases, which the action's copy may run on and which make no executables.
  const sea = process.getBuiltinModule?.('node:sea')
  const inSea = sea?.isSea() ?? false
  if (sea && inSea) useTemplateAssets((key) => sea.getAsset(key, 'utf8'))
  // oclif's config.root: the executable's directory, or this script's.
  const root = path.dirname(inSea ? process.execPath : path.resolve(process.argv[1] ?? '.'))
  const pjson = DEPLOYER_PACKAGE
  const plugin = new Plugin({ isRoot: true, root, pjson })
  ;(plugin as unknown as { commandCache: typeof COMMANDS }).commandCache = COMMANDS
  await plugin.load()
  await execute({ loadOptions: { root, pjson, plugins: new Map([[plugin.name, plugin]]) } })
}

// No top-level await: the single executable's script must be CommonJS.
runStandalone().catch(handle)
