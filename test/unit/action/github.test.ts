import { expect } from 'chai'
import { formatOutputs, workflowCommand } from '../../../src/action/github.js'
import { readOutputFile } from '../../support/action.js'

const DELIMITER = 'ghadelimiter_0123456789abcdef'

describe('formatOutputs', () => {
  it('writes every value in the name<<DELIMITER form', () => {
    expect(formatOutputs({ release: '12', 'rolled-back': 'false' }, DELIMITER)).to.equal(
      `release<<${DELIMITER}\n12\n${DELIMITER}\nrolled-back<<${DELIMITER}\nfalse\n${DELIMITER}\n`,
    )
  })

  const values: [what: string, value: string][] = [
    ['an empty value', ''],
    ['a multi-line value', 'line one\nline two\n'],
    ['a value that looks like another output', 'x\nrolled-back=true\nrestarts<<EOF\n{}\nEOF'],
    ['JSON', '{"ok":true,"hosts":[{"host":"web1"}]}'],
  ]
  for (const [what, value] of values) {
    it(`round-trips ${what} through the runner's reading of the file`, () => {
      const text = formatOutputs({ result: value, 'rolled-back': 'false' }, DELIMITER)
      expect(readOutputFile(text)).to.deep.equal({ result: value, 'rolled-back': 'false' })
    })
  }

  it('refuses a value that contains the delimiter', () => {
    expect(() => formatOutputs({ result: `a\n${DELIMITER}\nrolled-back=true` }, DELIMITER)).to.throw(
      'The value of output result contains the delimiter.',
    )
  })

  it('refuses a short delimiter and a bad name', () => {
    expect(() => formatOutputs({ a: '1' }, 'EOF')).to.throw(/delimiter/)
    expect(() => formatOutputs({ 'a\nb': '1' }, DELIMITER)).to.throw(/Invalid output name/)
  })
})

describe('workflowCommand', () => {
  const cases: [message: string, properties: Record<string, string>, line: string][] = [
    ['it broke', {}, '::error::it broke'],
    ['two\nlines\r\n', {}, '::error::two%0Alines%0D%0A'],
    ['100% sure', {}, '::error::100%25 sure'],
    ['no ::add-mask:: here\n::stop-commands::x', {}, '::error::no ::add-mask:: here%0A::stop-commands::x'],
    ['failed', { title: 'deployer release' }, '::error title=deployer release::failed'],
    ['failed', { title: 'a: b, c' }, '::error title=a%3A b%2C c::failed'],
  ]
  for (const [message, properties, line] of cases) {
    it(`writes ${JSON.stringify(message)} as one line`, () => {
      expect(workflowCommand('error', message, properties)).to.equal(line)
    })
  }
})
