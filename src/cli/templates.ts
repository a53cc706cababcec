import { readFile } from 'node:fs/promises'
import path from 'node:path'

/** Reads an asset the single executable carries (node:sea's getAsset), by its key. */
type AssetReader = (key: string) => string

let assets: AssetReader | undefined

/**
 * Makes `init` read its templates from the single executable's assets (keys `templates/NAME`, put
 * there by scripts/build-sea.mjs) instead of the package's templates/ directory, which it does not have.
 */
export function useTemplateAssets(read: AssetReader): void {
  assets = read
}

/** How `init` reads a template by its name under templates/ (`github/deploy.yml`). */
export function templateReader(root: string): (name: string) => Promise<string> {
  const read = assets
  if (read) return async (name) => read(`templates/${name}`)
  return (name) => readFile(path.join(root, 'templates', name), 'utf8')
}
