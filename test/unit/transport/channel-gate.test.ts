import { expect } from 'chai'
import { ChannelGate, isChannelRefusal } from '../../../src/transport/channel-gate.js'

describe('ChannelGate', () => {
  it('opens without limit until the server refuses one', async () => {
    const gate = new ChannelGate()
    for (let i = 0; i < 20; i++) await gate.acquire()
    expect(gate.learnedLimit).to.equal(undefined)
  })

  it('learns the limit from a refusal and queues beyond it', async () => {
    const gate = new ChannelGate()
    await gate.acquire()
    await gate.acquire()
    // The second was refused while one other was open: the server allows one.
    expect(gate.refused()).to.equal(1)
    expect(gate.learnedLimit).to.equal(1)
    let granted = false
    const waiting = gate.acquire().then(() => {
      granted = true
    })
    await Promise.resolve()
    expect(granted, 'queued while the one allowed channel is open').to.equal(false)
    gate.release()
    await waiting
    expect(granted).to.equal(true)
  })

  it('keeps a limit of at least one when refused with nothing else open', async () => {
    const gate = new ChannelGate()
    await gate.acquire()
    expect(gate.refused()).to.equal(0)
    expect(gate.learnedLimit).to.equal(1)
    await gate.acquire()
  })
})

describe('isChannelRefusal', () => {
  const cases: Array<[string, boolean]> = [
    ['(SSH) Channel open failure: open failed', true],
    ['(SSH) Channel open failure: administratively prohibited', true],
    ['Not connected', false],
  ]
  for (const [message, expected] of cases) {
    it(`${expected ? 'takes' : 'does not take'} "${message}" as a refusal`, () => {
      expect(isChannelRefusal(new Error(message))).to.equal(expected)
    })
  }
})
