#!/usr/bin/env node
/**
 * Builds deployer as one executable file (Node's single executable application support) for teams
 * without Node on their machines: dist/sea/deployer, for the platform this runs on (CI: Linux x64).
 *
 *   npm run build && node scripts/build-sea.mjs      (npm run build:sea)
 *
 * The script is dist/deployer.cjs (the self-contained CLI: Node 20's SEA runs a CommonJS script only),
 * the templates `init` writes go in as assets, and the blob is injected with postject (a devDependency,
 * so nothing is downloaded at build time) into a copy of the Node binary that runs this script.
 */
import { execFileSync } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { inject } from 'postject'

const root = fileURLToPath(new URL('..', import.meta.url))
const out = path.join(root, 'dist', 'sea')
const script = path.join(root, 'dist', 'deployer.cjs')
if (!existsSync(script)) throw new Error(`${script} is missing: run npm run build first.`)

/** Every file under templates/, as `templates/NAME` keys (what src/cli/templates.ts asks for). */
function templateAssets() {
  const dir = path.join(root, 'templates')
  const entries = readdirSync(dir, { recursive: true, withFileTypes: true }).filter((entry) => entry.isFile())
  return Object.fromEntries(
    entries.map((entry) => {
      const file = path.join(entry.parentPath ?? entry.path, entry.name)
      return [`templates/${path.relative(dir, file).split(path.sep).join('/')}`, file]
    }),
  )
}

rmSync(out, { recursive: true, force: true })
mkdirSync(out, { recursive: true })
const blob = path.join(out, 'deployer.blob')
const config = path.join(out, 'sea-config.json')
writeFileSync(
  config,
  `${JSON.stringify(
    {
      main: script,
      output: blob,
      disableExperimentalSEAWarning: true,
      // V8's compiled code for the script, made now instead of at every start.
      useCodeCache: true,
      assets: templateAssets(),
    },
    null,
    2,
  )}\n`,
)
execFileSync(process.execPath, ['--experimental-sea-config', config], { stdio: 'inherit' })

const executable = path.join(out, 'deployer')
copyFileSync(process.execPath, executable)
await inject(executable, 'NODE_SEA_BLOB', await import('node:fs/promises').then((fs) => fs.readFile(blob)), {
  // The fuse Node's binary checks to find out that it carries a script (Node's SEA documentation).
  sentinelFuse: 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2',
})
console.log(
  `${path.relative(root, executable)}: ${process.platform}-${process.arch}, Node ${process.version}`,
)
