import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { expect } from 'chai'
import { PidLineFilter } from '../../../src/transport/pid-line.js'

const run = promisify(execFile)
const MARKER = 'deployer-pid-0123456789ab'

/** Feeds chunks through a filter and returns what it passes on, and the pid. */
async function filter(chunks: string[]): Promise<{ passed: string; pid: number | undefined }> {
  const lines = new PidLineFilter(MARKER)
  const passed = chunks.map((chunk) => lines.push(Buffer.from(chunk)).toString()).join('')
  return { passed: passed + lines.end().toString(), pid: await lines.pid }
}

describe('PidLineFilter', () => {
  const cases: Array<{ what: string; chunks: string[]; passed: string; pid?: number }> = [
    { what: 'the line alone', chunks: [`${MARKER} 4242\n`], passed: '', pid: 4242 },
    { what: 'the line, then output', chunks: [`${MARKER} 4242\nwarning\n`], passed: 'warning\n', pid: 4242 },
    {
      what: 'the line split across chunks',
      chunks: [`${MARKER.slice(0, 5)}`, `${MARKER.slice(5)} 42`, '42\nrest'],
      passed: 'rest',
      pid: 4242,
    },
    {
      what: 'startup noise before the line',
      chunks: ['bashrc says hi\n', `${MARKER} 7\nafter`],
      passed: 'bashrc says hi\nafter',
      pid: 7,
    },
    {
      what: 'no line at all',
      chunks: ['ssh: connect to host x port 22: Connection refused\n'],
      passed: 'ssh: connect to host x port 22: Connection refused\n',
    },
    {
      what: 'another marker',
      chunks: ['deployer-pid-ffffffffffff 9\n'],
      passed: 'deployer-pid-ffffffffffff 9\n',
    },
    { what: 'a line cut short', chunks: [`${MARKER} 12`], passed: `${MARKER} 12` },
  ]
  for (const { what, chunks, passed, pid } of cases) {
    it(`handles ${what}`, async () => {
      expect(await filter(chunks)).to.deep.equal({ passed, pid })
    })
  }

  it('passes output after the line through untouched', () => {
    const lines = new PidLineFilter(MARKER)
    lines.push(Buffer.from(`${MARKER} 5\n`))
    expect(lines.push(Buffer.from(`${MARKER} 6\n`)).toString()).to.equal(`${MARKER} 6\n`)
  })

  it('gives up holding output after 64 KiB without the line', async () => {
    const lines = new PidLineFilter(MARKER)
    expect(lines.push(Buffer.alloc(70 * 1024, 'x')).length).to.equal(70 * 1024)
    expect(await lines.pid).to.equal(undefined)
  })

  it('announces the pid of the shell that runs it', async () => {
    const { stderr } = await run('/bin/sh', ['-c', `${PidLineFilter.announce(MARKER)}\necho $$ >&2`])
    const [announced, echoed] = stderr.trim().split('\n')
    expect(announced).to.equal(`${MARKER} ${echoed}`)
  })
})
