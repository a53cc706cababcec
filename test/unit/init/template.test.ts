import { expect } from 'chai'
import { placeholdersIn, renderTemplate } from '../../../src/init/template.js'

describe('placeholdersIn', () => {
  const cases: { name: string; template: string; expected: string[] }[] = [
    { name: 'finds none in plain text', template: 'app: shop\n', expected: [] },
    { name: 'lists each name once, in order', template: '{{b}} {{a}} {{b}}', expected: ['b', 'a'] },
    {
      name: 'takes lowercase words with digits and _',
      template: '{{deploy_to}} {{port2}}',
      expected: ['deploy_to', 'port2'],
    },
    {
      name: "ignores GitHub's ${{ expressions }}",
      template: 'key: ${{ secrets.DEPLOY_SSH_KEY }} ${{ steps.x.outputs.rolled-back }}',
      expected: [],
    },
    { name: 'ignores names with spaces or capitals', template: '{{ app }} {{App}}', expected: [] },
  ]
  for (const { name, template, expected } of cases) {
    it(name, () => {
      expect(placeholdersIn(template)).to.deep.equal(expected)
    })
  }
})

describe('renderTemplate', () => {
  const cases: { name: string; template: string; values: Record<string, string>; expected: string }[] = [
    {
      name: 'fills every use of a placeholder',
      template: '{{a}}-{{a}}',
      values: { a: 'x' },
      expected: 'x-x',
    },
    {
      name: 'leaves ${{ expressions }} alone',
      template: 'uses: {{action}}\nkey: ${{ secrets.KEY }}',
      values: { action: 'o/deployer@v1' },
      expected: 'uses: o/deployer@v1\nkey: ${{ secrets.KEY }}',
    },
    {
      name: 'does not expand placeholders inside values',
      template: '{{a}} {{b}}',
      values: { a: '{{b}}', b: 'B' },
      expected: '{{b}} B',
    },
    { name: 'accepts unused values', template: 'x', values: { a: '1' }, expected: 'x' },
    { name: 'fills an empty value', template: '{{c}}line', values: { c: '' }, expected: 'line' },
  ]
  for (const { name, template, values, expected } of cases) {
    it(name, () => {
      expect(renderTemplate(template, values)).to.equal(expected)
    })
  }

  it('names every placeholder that has no value', () => {
    expect(() => renderTemplate('{{app}} {{port}} {{user}}', { app: 'shop' })).to.throw(
      Error,
      'The template has placeholders without a value: {{port}}, {{user}}.',
    )
  })

  it('does not take values from the prototype', () => {
    expect(() => renderTemplate('{{constructor}}', {})).to.throw(Error, '{{constructor}}')
  })
})
