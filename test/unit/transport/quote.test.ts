import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { expect } from 'chai'
import { quote, quoteAll } from '../../../src/transport/quote.js'

const run = promisify(execFile)

/** What `/bin/sh` makes of the quoted value: the one test that matters for a quoting function. */
async function throughShell(quoted: string): Promise<string> {
  const { stdout } = await run('/bin/sh', ['-c', `printf %s ${quoted}`], { encoding: 'buffer' })
  return stdout.toString('utf8')
}

describe('quote', () => {
  const values: Array<[what: string, value: string]> = [
    ['an empty string', ''],
    ['a plain word', 'release-20'],
    ['a path', '/srv/shop/releases/20'],
    ['spaces', 'two words  and more'],
    ['a single quote', "'"],
    ['an apostrophe inside a word', "don't"],
    ['runs of single quotes', "''a'''"],
    ['double quotes', '"quoted"'],
    ['a newline', 'line one\nline two\n'],
    ['a tab', 'a\tb'],
    ['command substitution', '$(rm -rf /)'],
    ['backticks', '`id`'],
    ['a variable', '$HOME ${PATH}'],
    ['a semicolon and a pipe', 'a; echo injected | cat &'],
    ['globs', '* ? [a-z] ~'],
    ['backslashes', 'a\\b\\\\c\\'],
    ['a leading dash', '-n'],
    ['unicode', 'ünïcødé 日本語 🚀'],
    ['redirections', '> /tmp/x < /etc/passwd 2>&1'],
    ['a comment sign', '# not a comment'],
  ]
  for (const [what, value] of values) {
    it(`round-trips ${what} through /bin/sh`, async () => {
      expect(await throughShell(quote(value))).to.equal(value)
    })
  }

  it('round-trips a number', async () => {
    expect(await throughShell(quote(42))).to.equal('42')
  })

  const bare: Array<[string, string]> = [
    ['release-20', 'release-20'],
    ['/srv/shop/current', '/srv/shop/current'],
    ['', "''"],
    ['a b', "'a b'"],
    ["it's", `'it'\\''s'`],
  ]
  for (const [value, expected] of bare) {
    it(`writes ${JSON.stringify(value)} as ${expected}`, () => {
      expect(quote(value)).to.equal(expected)
    })
  }
})

describe('quoteAll', () => {
  it('quotes each value and keeps them separate words', async () => {
    const values = ['a b', '', "c'd", '$(x)']
    const { stdout } = await run('/bin/sh', ['-c', `printf '<%s>' ${quoteAll(values)}`])
    expect(stdout).to.equal("<a b><><c'd><$(x)>")
  })
})
