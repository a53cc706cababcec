import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, normalize, relative } from 'node:path'
import { expect } from 'chai'

/** The import graph of src/, from each file's `import … from './x.js'` (type-only imports included). */
function importGraph(root: string): Map<string, string[]> {
  const files = (readdirSync(root, { recursive: true }) as string[])
    .filter((file) => file.endsWith('.ts'))
    .map((file) => join(root, file))
  const graph = new Map<string, string[]>()
  for (const file of files) {
    const text = readFileSync(file, 'utf8')
    const targets = [...text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)\.js'/g)].map((match) =>
      normalize(join(dirname(file), `${match[1]}.ts`)),
    )
    graph.set(file, targets)
  }
  return graph
}

/** Every cycle's files, each cycle once (found by a depth-first search from every file). */
function cycles(graph: Map<string, string[]>): string[][] {
  const found = new Map<string, string[]>()
  const visit = (file: string, path: string[]) => {
    const at = path.indexOf(file)
    if (at >= 0) {
      const cycle = path.slice(at)
      found.set([...cycle].sort().join(' '), cycle)
      return
    }
    if (path.length > 40) return
    for (const next of graph.get(file) ?? []) visit(next, [...path, file])
  }
  for (const file of graph.keys()) visit(file, [])
  return [...found.values()]
}

const SRC = join(import.meta.dirname, '../../src')
const layerOf = (file: string) => relative(SRC, file).split('/')[0] ?? ''

describe('the shape of src/', () => {
  const graph = importGraph(SRC)

  it('has no import cycles', () => {
    const named = cycles(graph).map((cycle) => cycle.map((file) => relative(SRC, file)).join(' -> '))
    expect(named).to.deep.equal([])
  })

  it('keeps lower layers from importing upper ones', () => {
    // What each layer may never import: the transport knows nothing of releases, the core nothing of
    // rendering, and nothing but the composition root knows the commands.
    const above = (...layers: string[]) => [...layers, 'check', 'ui', 'cli', 'action']
    const forbidden: Record<string, string[]> = {
      transport: above('release', 'restart', 'upload', 'guard', 'hosts', 'plan', 'pipeline', 'fleet'),
      // upload/ reads the previous release's manifest (release/manifest.ts) to plan the delta.
      upload: above('restart', 'hosts', 'plan', 'pipeline', 'fleet'),
      release: above('hosts', 'plan', 'pipeline', 'fleet'),
      restart: above('plan', 'pipeline', 'fleet'),
      guard: above('plan', 'pipeline', 'fleet'),
      hosts: above('plan', 'pipeline', 'fleet'),
      plan: above('hosts', 'pipeline', 'fleet'),
      pipeline: above('fleet'),
      fleet: above(),
      // check/ is fleet's sibling: both stand on hosts/, neither knows the other.
      check: ['fleet', 'pipeline', 'ui', 'cli', 'action'],
    }
    const breaches: string[] = []
    for (const [file, targets] of graph) {
      const layer = layerOf(file)
      for (const target of targets)
        if (forbidden[layer]?.includes(layerOf(target)))
          breaches.push(`${relative(SRC, file)} imports ${relative(SRC, target)}`)
    }
    expect(breaches).to.deep.equal([])
  })

  it('runs remote commands only through the host session (hosts/) or the transports themselves', () => {
    const outside = [...graph.keys()]
      .filter((file) => !['transport', 'hosts'].includes(layerOf(file)))
      .filter((file) => /transport\s*\.\s*exec\(/.test(readFileSync(file, 'utf8')))
      .map((file) => relative(SRC, file))
    expect(outside).to.deep.equal([])
  })
})
