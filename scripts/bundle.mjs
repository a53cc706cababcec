#!/usr/bin/env node
/**
 * Bundles deployer with esbuild, so Node loads one module instead of hundreds:
 *
 *   node scripts/bundle.mjs               dist/deployer.js   the npm package's bundle (ESM; bin/run.js)
 *                                         dist/deployer.cjs  the self-contained CLI (single executable)
 *   node scripts/bundle.mjs --action DIR  DIR/main.cjs and DIR/deployer.cjs: the GitHub Action
 *
 * `npm run build` runs the first; `npm run build:action` writes the action's committed copy to
 * dist-action, and a test rebuilds it into a scratch directory and compares (test/package/).
 *
 * Left out on purpose, each loaded by its user in a try/catch that has a fallback:
 * - ssh2's optional native parts (cpu-features, sshcrypto.node): ssh2 falls back to Node's own crypto,
 *   so every bundle behaves the same wherever it runs (a single executable cannot load a .node file);
 * - typescript (10 MB), which @oclif/core requires only to run a plugin's .ts sources in development.
 */
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const root = fileURLToPath(new URL('..', import.meta.url))
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'))

/** What oclif needs of package.json when there is none on disk (the single executable, the action). */
const standalonePackage = {
  name: pkg.name,
  version: pkg.version,
  repository: pkg.repository,
  type: 'commonjs',
  oclif: {
    ...pkg.oclif,
    commands: { strategy: 'explicit', target: './deployer.cjs', identifier: 'COMMANDS' },
  },
}

const leftOut = {
  name: 'left-out',
  setup(build) {
    build.onResolve({ filter: /(^cpu-features$|^typescript$|\.node$)/ }, (args) => ({
      path: args.path,
      namespace: 'left-out',
    }))
    build.onLoad({ filter: /.*/, namespace: 'left-out' }, (args) => ({
      contents: `throw new Error(${JSON.stringify(`${args.path} is left out of deployer's bundle`)})`,
      loader: 'js',
    }))
  },
}

const common = {
  absWorkingDir: root,
  bundle: true,
  platform: 'node',
  target: 'node20',
  logLevel: 'warning',
  legalComments: 'none',
  plugins: [leftOut],
}

/**
 * The CommonJS modules inside the ESM bundle need `require` (for Node's own modules) and `__dirname`
 * (ssh2 computes a Windows-only path from it when it loads).
 */
const esmShims = [
  "import { createRequire as __deployerRequire } from 'node:module';",
  "import { fileURLToPath as __deployerPath } from 'node:url';",
  'const require = __deployerRequire(import.meta.url);',
  'const __filename = __deployerPath(import.meta.url);',
  "const __dirname = __deployerPath(new URL('.', import.meta.url));",
].join(' ')

function bundleNpm() {
  return build({
    ...common,
    entryPoints: ['src/cli/main.ts'],
    outfile: 'dist/deployer.js',
    format: 'esm',
    banner: { js: esmShims },
  })
}

function bundleStandalone(outfile) {
  return build({
    ...common,
    entryPoints: ['src/cli/standalone.ts'],
    outfile,
    format: 'cjs',
    define: { DEPLOYER_PACKAGE: JSON.stringify(standalonePackage) },
  })
}

function bundleActionMain(outfile) {
  return build({ ...common, entryPoints: ['src/action/main.ts'], outfile, format: 'cjs' })
}

const actionIndex = process.argv.indexOf('--action')
if (actionIndex >= 0) {
  const dir = path.resolve(process.argv[actionIndex + 1] ?? 'dist-action')
  await Promise.all([
    bundleActionMain(path.join(dir, 'main.cjs')),
    bundleStandalone(path.join(dir, 'deployer.cjs')),
  ])
} else {
  await Promise.all([bundleNpm(), bundleStandalone('dist/deployer.cjs')])
}
