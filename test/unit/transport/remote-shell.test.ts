import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { expect } from 'chai'
import { newMarker, OutputFrame, parseLoginShell, wrapScript } from '../../../src/transport/remote-shell.js'

/** Runs `shell -c COMMAND` as sshd would, feeding `input` on stdin; what it printed and its status. */
function runAs(
  shell: string,
  command: string,
  input: Buffer,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(shell, ['-c', command], { stdio: ['pipe', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8')
    })
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8')
    })
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout, stderr }))
    child.stdin.on('error', () => {})
    child.stdin.end(input)
  })
}

// A script no login shell but sh would take as it is: a newline in quotes (csh), an unmatched glob
// (zsh), `$(...)` and `&&` (fish 2, csh), a single quote, a backslash and a `!` (csh history).
const SCRIPT = [
  `printf '%s\\n' 'it'\\''s' "a\\\\b" '!x'`,
  'for f in /nonexistent/*.nomatch; do echo "glob $f"; done',
  'v=$(echo sub) && echo "$v"',
  'echo to-stderr >&2',
  'exit 3',
].join('\n')

describe('wrapScript', () => {
  for (const shell of [
    '/bin/sh',
    '/bin/bash',
    '/usr/bin/zsh',
    '/usr/bin/fish',
    '/usr/bin/tcsh',
    '/usr/bin/csh',
  ]) {
    const it_ = existsSync(shell) ? it : it.skip
    it_(`runs the script under /bin/sh when the login shell is ${shell}`, async () => {
      const wrapped = wrapScript(SCRIPT, { hasInput: false })
      const result = await runAs(shell, wrapped.command, wrapped.preamble)
      expect(result.code).to.equal(3)
      expect(result.stdout).to.equal(`${wrapped.marker}\nit's\na\\b\n!x\nglob /nonexistent/*.nomatch\nsub\n`)
      expect(result.stderr).to.equal(`${wrapped.marker}\nto-stderr\n`)
    })
  }

  it('reads exactly the script when the caller’s own input follows it', async () => {
    const wrapped = wrapScript('tr a-z A-Z; echo " done"', { hasInput: true })
    const result = await runAs(
      '/usr/bin/fish',
      wrapped.command,
      Buffer.concat([wrapped.preamble, Buffer.from('payload')]),
    )
    expect(result.stdout).to.equal(`${wrapped.marker}\nPAYLOAD done\n`)
  })

  it('keeps the script and its values off the command line', () => {
    const wrapped = wrapScript('export TOKEN=secret-value', { hasInput: false })
    expect(wrapped.command).to.not.contain('secret-value')
    expect(wrapped.command).to.match(/^exec \/bin\/sh -c '[^'\n\\!]+'$/)
  })

  it('refuses a marker a shell would have to quote', () => {
    expect(() => wrapScript('true', { hasInput: false, marker: 'a b' })).to.throw('marker')
  })
})

describe('OutputFrame', () => {
  it('drops login output before the marker, even when the marker is split across chunks', () => {
    const marker = newMarker()
    const frame = new OutputFrame(marker)
    const text = `banner\n{"json": "junk"}\n${marker}\nreal output\n`
    const parts = [text.slice(0, 20), text.slice(20, 30), text.slice(30)].map((part) => Buffer.from(part))
    const kept = parts.map((part) => frame.push(part).toString('utf8')).join('')
    expect(kept).to.equal('real output\n')
    expect(frame.started).to.equal(true)
    expect(frame.push(Buffer.from('more')).toString()).to.equal('more')
  })

  it('keeps what came instead of the marker, for the error', () => {
    const frame = new OutputFrame(newMarker())
    expect(frame.push(Buffer.from('rbash: restricted\n')).length).to.equal(0)
    expect(frame.started).to.equal(false)
    expect(frame.unframed()).to.equal('rbash: restricted\n')
  })
})

describe('parseLoginShell', () => {
  const cases: Array<[string, string | undefined]> = [
    ['/usr/bin/rbash\n', '/usr/bin/rbash'],
    ['junk from .bashrc\n/bin/rbash\n', '/bin/rbash'],
    ['This account is currently not available.\n', undefined],
    ['', undefined],
  ]
  for (const [output, expected] of cases) {
    it(`reads ${JSON.stringify(output)} as ${expected}`, () => {
      expect(parseLoginShell(output)).to.equal(expected)
    })
  }
})
