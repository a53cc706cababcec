import { expect } from 'chai'
import { parseHostState } from '../../../src/release/host-state.js'

describe('parseHostState', () => {
  it('reads an absent deploy_to', () => {
    expect(parseHostState('absent\n').exists).to.equal(false)
  })

  it('reads releases, current, partials, sequence, lock and history', () => {
    const owner = Buffer.from(
      JSON.stringify({ token: 'x', user: 'u', machine: 'm', pid: 1, command: 'release', startedAt: 't' }),
    )
    const output = [
      'real\t/data/shop',
      'current\treleases/3',
      'sequence\t5',
      `lock\t${owner.toString('base64')}`,
      'release\t3\t1700000000\tabc123',
      'release\t1\t1690000000\t',
      'other\t.5.partial',
      'other\t.4.deleting',
      'history\t{"event":"prune","deleted":[2],"time":"t","by":{"user":"u","machine":"m","pid":1}}',
    ].join('\n')
    const state = parseHostState(output)
    expect(state.realDeployTo).to.equal('/data/shop')
    expect(state.current).to.equal(3)
    expect(state.sequence).to.equal(5)
    expect(state.lock?.user).to.equal('u')
    expect(state.releases.map((release) => release.number)).to.deep.equal([1, 3])
    expect(state.releases[1]?.revision).to.equal('abc123')
    expect(state.unfinished).to.deep.equal([5, 4])
    expect(state.history).to.have.length(1)
  })

  it('reads a lock whose owner file is torn as an unknown owner', () => {
    expect(parseHostState(`lock\t${Buffer.from('{"tok').toString('base64')}`).lock).to.equal(null)
  })

  it('reads current pointing elsewhere as no release', () => {
    const state = parseHostState('current\t/opt/manual')
    expect(state.current).to.equal(null)
    expect(state.currentTarget).to.equal('/opt/manual')
  })
})
