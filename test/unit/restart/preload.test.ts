import { expect } from 'chai'
import { effectivePreload } from '../../../src/restart/preload.js'

describe('effectivePreload', () => {
  const table: {
    name: string
    version: string
    preloadApp: boolean | null
    workers: number | null
    pruneBundler: boolean | null
    webConcurrency?: string
    expected: boolean
  }[] = [
    {
      name: 'explicit preload_app! wins on 5.x',
      version: '5.6.5',
      preloadApp: true,
      workers: 0,
      pruneBundler: false,
      expected: true,
    },
    {
      name: 'explicit preload_app! false wins over WEB_CONCURRENCY on 6.x',
      version: '6.6.1',
      preloadApp: false,
      workers: 4,
      pruneBundler: false,
      webConcurrency: '4',
      expected: false,
    },
    {
      name: 'explicit preload_app! false wins on 7.x',
      version: '7.0.0',
      preloadApp: false,
      workers: 4,
      pruneBundler: false,
      expected: false,
    },
    {
      name: 'explicit preload_app! wins over prune_bundler on 8.x',
      version: '8.0.2',
      preloadApp: true,
      workers: 2,
      pruneBundler: true,
      expected: true,
    },
    {
      name: '5.x: workers in puma.rb alone does not preload',
      version: '5.6.5',
      preloadApp: null,
      workers: 2,
      pruneBundler: false,
      expected: false,
    },
    {
      name: '5.x: WEB_CONCURRENCY > 1 preloads',
      version: '5.6.5',
      preloadApp: null,
      workers: 2,
      pruneBundler: false,
      webConcurrency: '2',
      expected: true,
    },
    {
      name: '5.x: WEB_CONCURRENCY=1 does not',
      version: '5.6.5',
      preloadApp: null,
      workers: 1,
      pruneBundler: false,
      webConcurrency: '1',
      expected: false,
    },
    {
      name: '6.x: prune_bundler in puma.rb does not switch off the WEB_CONCURRENCY default',
      version: '6.6.1',
      preloadApp: null,
      workers: 3,
      pruneBundler: true,
      webConcurrency: '3',
      expected: true,
    },
    {
      name: '6.x: WEB_CONCURRENCY with blanks reads like Integer()',
      version: '6.0.0',
      preloadApp: null,
      workers: 3,
      pruneBundler: false,
      webConcurrency: ' 3 ',
      expected: true,
    },
    {
      name: '6.x: a non-number WEB_CONCURRENCY does not preload',
      version: '6.0.0',
      preloadApp: null,
      workers: 0,
      pruneBundler: false,
      webConcurrency: 'lots',
      expected: false,
    },
    {
      name: '7.x: workers > 1 preloads by default',
      version: '7.0.0',
      preloadApp: null,
      workers: 2,
      pruneBundler: false,
      expected: true,
    },
    {
      name: '7.x: prune_bundler switches the default off',
      version: '7.1.0',
      preloadApp: null,
      workers: 2,
      pruneBundler: true,
      expected: false,
    },
    {
      name: '7.x: one worker does not preload',
      version: '7.1.0',
      preloadApp: null,
      workers: 1,
      pruneBundler: false,
      webConcurrency: '4',
      expected: false,
    },
    {
      name: '8.x: single mode does not preload',
      version: '8.0.2',
      preloadApp: null,
      workers: 0,
      pruneBundler: false,
      expected: false,
    },
    {
      name: 'a pre-release version is coerced',
      version: '7.0.0.pre1',
      preloadApp: null,
      workers: 2,
      pruneBundler: false,
      expected: true,
    },
    {
      name: 'an unknown worker count on 7.x does not preload',
      version: '7.0.0',
      preloadApp: null,
      workers: null,
      pruneBundler: null,
      expected: false,
    },
  ]
  for (const row of table) {
    it(`${row.name} -> ${row.expected}`, () => {
      const env = row.webConcurrency === undefined ? {} : { webConcurrency: row.webConcurrency }
      expect(effectivePreload(row.version, row, env)).to.equal(row.expected)
    })
  }

  it('throws on a version it cannot read', () => {
    expect(() =>
      effectivePreload('unknown', { preloadApp: null, workers: 2, pruneBundler: false }, {}),
    ).to.throw(/Cannot tell the preload rules of Puma version "unknown"/)
  })
})
