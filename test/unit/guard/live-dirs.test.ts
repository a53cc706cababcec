import { expect } from 'chai'
import { parseLiveDirs, releaseOf } from '../../../src/guard/live-dirs.js'

describe('parseLiveDirs', () => {
  it('attributes cwd and mapped files to their release', () => {
    const output = [
      'cwd\t100\t/srv/shop/releases/3\tsleep 600',
      'cwd\t101\t/srv/shop/releases/4/app\tpuma: cluster worker 0',
      'map\t101\t/srv/shop/releases/2/vendor/bundle/x.so\tpuma: cluster worker 0',
      'map\t101\t/srv/shop/releases/2/vendor/bundle/y.so\tpuma: cluster worker 0',
      'cwd\t102\t/srv/shop/releases/.5.partial\tbundle install',
      'cwd\t103\t/srv/shop/releases/1 (deleted)\truby',
      'hidden\t3',
      'root\t/srv/shop/releases',
    ].join('\n')
    const live = parseLiveDirs(output)
    expect([...live.byRelease.keys()].sort()).to.deep.equal([1, 2, 3, 4])
    expect(live.byRelease.get(2)).to.have.length(1)
    expect(live.byRelease.get(3)?.[0]).to.include({ pid: 100, via: 'cwd', command: 'sleep 600' })
    expect(live.byRelease.get(1)?.[0]?.path).to.equal('/srv/shop/releases/1')
    expect(live.hidden).to.equal(3)
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
