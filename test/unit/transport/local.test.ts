import { readdir, readFile } from 'node:fs/promises'
import { expect } from 'chai'
import { LocalTransport } from '../../../src/transport/local.js'

/** Command lines of every process on this machine that contain `needle`. */
async function commandLinesWith(needle: string): Promise<string[]> {
  const found: string[] = []
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')
    if (cmdline.includes(needle)) found.push(cmdline.replaceAll('\0', ' '))
  }
  return found
}

describe('LocalTransport', () => {
  const local = new LocalTransport()

  it('keeps the script out of ps: it travels on stdin', async () => {
    const secret = `secret-${process.pid}-${Date.now()}`
    const running = local.exec(`sleep 1\necho ${secret.slice(0, 7)}'${secret.slice(7)}'`)
    // The script runs for a second; it is looked for while it does (bounded by that run).
    const seen: string[] = []
    let scans = 0
    let done = false
    running.finally(() => {
      done = true
    })
    while (!done && scans < 1000) {
      seen.push(...(await commandLinesWith(secret.slice(7))))
      scans++
    }
    const result = await running
    expect(result.stdout).to.equal(`${secret}\n`)
    expect(scans).to.be.greaterThan(0)
    expect(seen).to.deep.equal([])
  })

  it('passes the caller’s input to the script after the script itself', async () => {
    const result = await local.exec('read first; cat; echo "first=$first"', { stdin: 'one\ntwo\nthree\n' })
    expect(result.stdout).to.equal('two\nthree\nfirst=one\n')
  })

  it('keeps exit codes and stderr', async () => {
    const result = await local.exec('echo oops >&2; exit 7')
    expect(result).to.deep.include({ code: 7, stderr: 'oops\n' })
  })
})
