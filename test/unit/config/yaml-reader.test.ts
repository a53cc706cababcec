import { expect } from 'chai'
import { LineCounter, parseDocument } from 'yaml'
import {
  type Ctx,
  type Field,
  formatProblems,
  readDuration,
  readEnum,
  readInteger,
  readMap,
} from '../../../src/config/yaml-reader.js'

/** The reader context for `key: VALUE` and the field of `key`, as the schema would hand it to a reader. */
function fieldOf(value: string, env: NodeJS.ProcessEnv = {}): { ctx: Ctx; field: Field } {
  const doc = parseDocument(`key: ${value}\n`)
  const ctx: Ctx = { doc, env, homeDir: '/home/me', configDir: '/app', problems: [] }
  const field = readMap(ctx, { node: doc.contents, path: '', offset: 0 }, ['key'])?.get('key')
  if (!field) throw new Error('no field')
  return { ctx, field }
}

describe('yaml-reader', () => {
  describe('readDuration', () => {
    const cases: [string, number | undefined][] = [
      ['60', 60],
      ['1.5', 1.5],
      ['"45s"', 45],
      ['2m', 120],
      ['1.5h', 5400],
      ['"${T}"', 90],
      ['0', undefined],
      ['-1', undefined],
      ['2d', undefined],
      ['[1]', undefined],
      ['true', undefined],
    ]
    for (const [value, seconds] of cases) {
      it(`reads ${value} as ${seconds ?? 'a problem'}`, () => {
        const { ctx, field } = fieldOf(value, { T: '90s' })
        expect(readDuration(ctx, field)).to.equal(seconds)
        expect(ctx.problems.length).to.equal(seconds === undefined ? 1 : 0)
      })
    }
  })

  describe('readInteger', () => {
    const cases: [string, number | undefined, string | undefined][] = [
      ['3', 3, undefined],
      ['"${N}"', 7, undefined],
      ['0', undefined, 'must be between 1 and 9, not 0'],
      ['10', undefined, 'must be between 1 and 9, not 10'],
      ['2.5', undefined, 'must be a whole number, not 2.5'],
      ['three', undefined, 'must be a whole number, not a string'],
    ]
    for (const [value, expected, problem] of cases) {
      it(`reads ${value} as ${expected ?? problem}`, () => {
        const { ctx, field } = fieldOf(value, { N: '7' })
        expect(readInteger(ctx, field, 1, 9)).to.equal(expected)
        expect(ctx.problems.map((p) => p.message)).to.deep.equal(problem ? [problem] : [])
      })
    }
  })

  it('suggests the nearest choice for an enum written in the file', () => {
    const { ctx, field } = fieldOf('rollng')
    expect(readEnum(ctx, field, ['parallel', 'rolling'])).to.equal(undefined)
    expect(ctx.problems[0]?.message).to.equal(
      'must be one of parallel, rolling, not "rollng"; did you mean rolling?',
    )
  })

  it('points a key written at the wrong level at the section it belongs to', () => {
    const doc = parseDocument('known_hosts: /k\n')
    const ctx: Ctx = { doc, env: {}, homeDir: '/h', configDir: '/c', problems: [] }
    readMap(ctx, { node: doc.contents, path: '', offset: 0 }, ['app'], { ssh: ['known_hosts'] })
    expect(ctx.problems[0]?.message).to.equal(
      'unknown key at the top level; did you mean ssh.known_hosts (under ssh:)?',
    )
  })

  it('formats problems in file order with line and column', () => {
    const lines = new LineCounter()
    parseDocument('a: 1\nb: 2\n', { lineCounter: lines })
    const text = formatProblems('/c/deployer.yml', lines, [
      { offset: 8, path: 'b', message: 'second' },
      { offset: 0, path: '', message: 'first' },
    ])
    expect(text).to.deep.equal(['/c/deployer.yml:1:1: first', '/c/deployer.yml:2:4: b: second'])
  })
})
