import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect } from 'chai'
import {
  findLiveDirsCommand,
  mayUseReleases,
  parseLiveDirs,
  releaseOf,
} from '../../../src/guard/live-dirs.js'
import { LocalTransport } from '../../../src/transport/local.js'

describe('parseLiveDirs', () => {
  it('attributes cwd and mapped files to their release', () => {
    const output = [
      'cwd\t100\t/srv/shop/releases/3\tsleep 600',
      'cwd\t101\t/srv/shop/releases/4/app\tpuma: cluster worker 0',
      'map\t101\t/srv/shop/releases/2/vendor/bundle/x.so\tpuma: cluster worker 0',
      'map\t101\t/srv/shop/releases/2/vendor/bundle/y.so\tpuma: cluster worker 0',
      'cwd\t102\t/srv/shop/releases/.5.partial\tbundle install',
      'cwd\t103\t/srv/shop/releases/1 (deleted)\truby',
      'hidden\t200\t33:www-data\t33\t33,1002\tpuma: cluster worker 0',
      'hidden\t201\t0:root\t0\t\t/usr/sbin/cron -f',
      'hidden\t202\t0:root\t0\t\t',
      'hidden\t203\t0:root\t0\t\tsshd',
      'dir\t750 1001 1002',
      'dir\t755 0 0',
      'seen\t203',
      'root\t/srv/shop/releases',
    ].join('\n')
    const live = parseLiveDirs(output)
    expect([...live.byRelease.keys()].sort()).to.deep.equal([1, 2, 3, 4])
    expect(live.byRelease.get(2)).to.have.length(1)
    expect(live.byRelease.get(3)?.[0]).to.include({ pid: 100, via: 'cwd', command: 'sleep 600' })
    expect(live.byRelease.get(1)?.[0]?.path).to.equal('/srv/shop/releases/1')
    expect(live.hidden).to.equal(3)
    expect(live.unseen.map((process) => process.pid)).to.deep.equal([200, 201, 202])
    expect(live.unseen[0]).to.deep.equal({
      pid: 200,
      uid: 33,
      user: 'www-data',
      gids: [33, 33, 1002],
      command: 'puma: cluster worker 0',
    })
    expect(live.path).to.deep.equal([
      { mode: 0o750, uid: 1001, gid: 1002 },
      { mode: 0o755, uid: 0, gid: 0 },
    ])
  })

  const processes: [string, { uid: number; command: string }, boolean][] = [
    ['another user', { uid: 33, command: 'sleep 600' }, true],
    ['root naming deploy_to', { uid: 0, command: 'ruby /srv/shop/current/bin/worker' }, true],
    ['root naming the real deploy_to', { uid: 0, command: 'tail -f /data/shop/shared/log/x' }, true],
    ['a root daemon', { uid: 0, command: '/usr/sbin/cron -f' }, false],
    ['a kernel thread', { uid: 0, command: '' }, false],
    ['an sshd session process of the SSH user', { uid: 1001, command: 'sshd: deploy@notty' }, false],
    ['a kernel thread of no user', { uid: 33, command: '' }, false],
  ]
  for (const [name, process, blocks] of processes)
    it(`${blocks ? 'counts' : 'leaves out'} ${name} as a possible user of a release`, () => {
      const unseen = [{ pid: 1, user: 'x', ...process }]
      expect(mayUseReleases(unseen, ['/srv/shop', '/data/shop', null])).to.have.length(blocks ? 1 : 0)
    })

  it("finds this machine's own processes and reports the others it cannot read (through /bin/sh)", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'deployer-live-'))
    try {
      await mkdir(join(dir, 'releases', '3'), { recursive: true })
      const result = await new LocalTransport().exec(
        `cd ${JSON.stringify(join(dir, 'releases', '3'))} && { sleep 30 >/dev/null 2>&1 & echo $! > ../pid; } && ${findLiveDirsCommand(join(dir, 'releases'))}`,
      )
      const pid = Number(await readFile(join(dir, 'releases', 'pid'), 'utf8'))
      process.kill(pid)
      const live = parseLiveDirs(result.stdout)
      expect(live.byRelease.get(3)?.map((holder) => holder.pid)).to.include(pid)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  const paths: [string, number | null][] = [
    ['/r/12', 12],
    ['/r/12/x/y', 12],
    ['/r/.12.partial', null],
    ['/rr/12', null],
    ['/r/12 (deleted)', 12],
  ]
  for (const [path, expected] of paths)
    it(`releaseOf(${path}) = ${expected}`, () => expect(releaseOf('/r', path)).to.equal(expected))
})
