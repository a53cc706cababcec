import { expect } from 'chai'
import { count, formatAge, formatBytes, formatMs, formatSeconds } from '../../src/format.js'

describe('formatters', () => {
  it('writes sizes in binary units with one decimal', () => {
    const cases: [number, string][] = [
      [0, '0 B'],
      [512, '512 B'],
      [1536, '1.5 KiB'],
      [12.3 * 1024 * 1024, '12.3 MiB'],
      [41.7 * 1024 ** 3, '41.7 GiB'],
    ]
    for (const [bytes, want] of cases) expect(formatBytes(bytes), String(bytes)).to.equal(want)
  })

  it('writes durations, settings and ages the way people read them', () => {
    expect([formatMs(850), formatMs(3400)]).to.deep.equal(['850ms', '3.4s'])
    expect([formatSeconds(90), formatSeconds(900)]).to.deep.equal(['90 s', '15 min'])
    expect([formatAge(45), formatAge(720), formatAge(5 * 3600), formatAge(3 * 86400)]).to.deep.equal([
      '45s',
      '12 min',
      '5 h',
      '3 days',
    ])
    expect([count(1, 'entry', 'entries'), count(2, 'entry', 'entries'), count(2, 'host')]).to.deep.equal([
      '1 entry',
      '2 entries',
      '2 hosts',
    ])
  })
})
