import { expect } from 'chai'
import { expandEnv } from '../../../src/config/env-expand.js'
import { isHttpUrl, relativePathProblem } from '../../../src/config/value-rules.js'

describe('value rules', () => {
  describe('relativePathProblem', () => {
    const cases: [string, string | undefined][] = [
      ['config/master.key', undefined],
      ['log/', undefined],
      ['./public/assets', undefined],
      ['/etc/passwd', 'must be a relative path, not an absolute one'],
      ['../up', 'must not contain .. segments'],
      ['a/../../b', 'must not contain .. segments'],
      ['.', 'must name something inside the release'],
      ['./', 'must name something inside the release'],
      ['a\nb', 'must not contain control characters such as newlines'],
    ]
    for (const [value, problem] of cases) {
      it(`${JSON.stringify(value)}: ${problem ?? 'fine'}`, () => {
        expect(relativePathProblem(value)).to.equal(problem)
      })
    }
  })

  describe('isHttpUrl', () => {
    const cases: [string, boolean][] = [
      ['http://127.0.0.1:3000/up', true],
      ['https://shop.example.com', true],
      ['ftp://example.com', false],
      ['http://', false],
      ['localhost:3000', false],
      ['', false],
    ]
    for (const [value, ok] of cases) {
      it(`${JSON.stringify(value)} is ${ok ? '' : 'not '}an http URL`, () => {
        expect(isHttpUrl(value)).to.equal(ok)
      })
    }
  })
})

describe('expandEnv', () => {
  const env = { HOST: 'web1', EMPTY: '' }
  const cases: [string, string, boolean, number][] = [
    ['plain', 'plain', false, 0],
    ['${HOST}', 'web1', true, 0],
    ['${EMPTY:-d}', 'd', true, 0],
    ['${UNSET:-d}', 'd', true, 0],
    ['${EMPTY}', '', true, 0],
    ['$${HOST}', '${HOST}', false, 0],
    ['$HOST', '$HOST', false, 0],
    ['${UNSET}', '${UNSET}', true, 1],
    ['${1BAD}', '${1BAD}', false, 1],
  ]
  for (const [text, value, fromEnv, problems] of cases) {
    it(`expands ${JSON.stringify(text)} to ${JSON.stringify(value)}`, () => {
      const result = expandEnv(text, env)
      expect(result.value).to.equal(value)
      expect(result.fromEnv).to.equal(fromEnv)
      expect(result.problems.length).to.equal(problems)
    })
  }
})
