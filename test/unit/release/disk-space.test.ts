import { expect } from 'chai'
import { inodesError, outOfInodes, parseSpace, spaceCommand } from '../../../src/release/disk-space.js'
import { LocalTransport } from '../../../src/transport/local.js'

describe('telling no free inodes from a full disk', () => {
  const reading = (inodes: number, inodesFree: number, kib: number, kibFree: number) =>
    `tmpfs ${inodes} ${inodes - inodesFree} ${inodesFree} 100% /srv\ntmpfs ${kib} ${kib - kibFree} ${kibFree} 1% /srv\n`

  const rows: Array<[string, string, boolean]> = [
    ['no inode left, space left', reading(64, 0, 65536, 60000), true],
    ['a few inodes left of many, space left', reading(1_000_000, 10, 65536, 60000), true],
    ['inodes left, no space', reading(64, 30, 65536, 0), false],
    ['neither left', reading(64, 0, 65536, 10), false],
    ['no inode limit (btrfs reports 0)', reading(0, 0, 65536, 60000), false],
    ['plenty of both', reading(1_000_000, 900_000, 65536, 60000), false],
  ]
  for (const [name, output, expected] of rows) {
    it(`${name}: ${expected ? 'inodes' : 'not inodes'}`, () =>
      expect(outOfInodes(parseSpace(output))).to.equal(expected))
  }

  it('does not parse what is not two df -P lines', () => {
    expect(parseSpace('')).to.equal(null)
    expect(parseSpace('df: /srv: No such file or directory\n')).to.equal(null)
  })

  it('reads this machine through the command, from the nearest existing directory', async () => {
    const result = await new LocalTransport().exec(spaceCommand("/tmp/no such dir/it's/deeper"))
    expect(result.code, result.stderr).to.equal(0)
    const parsed = parseSpace(result.stdout)
    expect(parsed?.kib).to.be.greaterThan(0)
  })

  it('says inodes, the numbers and df -i', () => {
    const parsed = parseSpace(reading(64, 0, 8192, 7168))
    const error = inodesError('/srv/my shop', parsed!, 'No space left on device')
    expect(error.because).to.equal(
      'the disk holding /srv/my shop has no free inodes left (No space left on device: 0 of 64 inodes free, while 7 MiB of space is free)',
    )
    expect(error.hint).to.contain("`df -i '/srv/my shop'`")
  })
})
