import { expect } from 'chai'
import { DeployerError, ExitCode } from '../../../src/errors.js'
import { rolloutError, stoppedRollout, waveStop } from '../../../src/fleet/rollout.js'
import type { HostReleaseOutcome, HostStatus } from '../../../src/pipeline/outcome.js'

function host(name: string, status: HostStatus, extra: Partial<HostReleaseOutcome> = {}) {
  return { host: name, status, previous: 4, release: 5, ...extra }
}
const failedError = {
  message: 'Host web2: restart did not complete',
  exitCode: ExitCode.verify,
  hint: 'look',
}

describe('waveStop', () => {
  const cases: {
    name: string
    wave: number[]
    outcomes: ReturnType<typeof host>[]
    interrupted: string | null
    want: { host: string | null; exitCode: number } | null
  }[] = [
    {
      name: 'goes on when every host of the wave is released',
      wave: [0, 1],
      outcomes: [host('web1', 'released'), host('web2', 'released')],
      interrupted: null,
      want: null,
    },
    {
      name: 'stops on the first host that did not go live, with its error',
      wave: [0, 1],
      outcomes: [host('web1', 'released'), host('web2', 'rolled-back', { error: failedError })],
      interrupted: null,
      want: { host: 'web2', exitCode: ExitCode.verify },
    },
    {
      name: 'stops on a released host that carries an error (its restart failed with nowhere to go back)',
      wave: [0],
      outcomes: [host('web1', 'released', { error: failedError })],
      interrupted: null,
      want: { host: 'web1', exitCode: ExitCode.verify },
    },
    {
      name: 'looks only at the hosts of this wave',
      wave: [1],
      outcomes: [host('web1', 'failed'), host('web2', 'released')],
      interrupted: null,
      want: null,
    },
    {
      name: 'calls a host failed by the interrupt an interrupt, not that host',
      wave: [0],
      outcomes: [
        host('web1', 'failed', { error: { message: 'interrupted', exitCode: ExitCode.interrupted } }),
      ],
      interrupted: 'SIGINT',
      want: { host: null, exitCode: ExitCode.interrupted },
    },
  ]
  for (const { name, wave, outcomes, interrupted, want } of cases)
    it(name, () => {
      const stop = waveStop(wave, outcomes, interrupted)
      expect(stop && { host: stop.host, exitCode: stop.error.exitCode }).to.deep.equal(want)
    })
})

describe('stoppedRollout', () => {
  const stop = { host: 'web2', error: new DeployerError('boom', { exitCode: ExitCode.verify }) }
  const cases: {
    name: string
    outcomes: ReturnType<typeof host>[]
    reached: number[]
    onFailure: 'rollback' | 'stop'
    want: { skip: number[]; discard: number[]; rollBack: number[]; stay: number[] }
  }[] = [
    {
      name: 'skips the hosts not reached, discards the failed one and rolls the live ones back',
      outcomes: [host('web1', 'released'), host('web2', 'failed'), host('web3', 'failed')],
      reached: [0, 1],
      onFailure: 'rollback',
      want: { skip: [2], discard: [1], rollBack: [0], stay: [] },
    },
    {
      name: 'leaves the live hosts on the new release with on_failure stop',
      outcomes: [host('web1', 'released'), host('web2', 'failed'), host('web3', 'failed')],
      reached: [0, 1],
      onFailure: 'stop',
      want: { skip: [2], discard: [1], rollBack: [], stay: [] },
    },
    {
      name: 'leaves a live host with nothing to go back to where it is',
      outcomes: [host('web1', 'released', { previous: null }), host('web2', 'rolled-back')],
      reached: [0, 1],
      onFailure: 'rollback',
      want: { skip: [], discard: [], rollBack: [], stay: [0] },
    },
  ]
  for (const { name, outcomes, reached, onFailure, want } of cases)
    it(name, () => {
      const after = stoppedRollout(outcomes, new Set(reached), stop, onFailure)
      expect({
        skip: after.skip,
        discard: after.discard,
        rollBack: after.rollBack,
        stay: after.stay,
      }).to.deep.equal(want)
      expect(after.skipNote).to.equal('not started: the rollout stopped when web2 failed')
    })

  it('says an interrupt stopped it when no host failed', () => {
    const after = stoppedRollout([host('web1', 'failed')], new Set(), { ...stop, host: null }, 'rollback')
    expect(after.skipNote).to.equal('not started: the rollout was interrupted')
    expect(after.why).to.equal('the rollout was interrupted')
  })
})

describe('rolloutError', () => {
  const stop = {
    host: 'web2',
    error: new DeployerError('boom', { exitCode: ExitCode.verify, hint: 'fix web2' }),
  }

  it("keeps the failing host's exit code and hint when the fleet is on one release again", () => {
    const error = rolloutError(
      5,
      stop,
      [host('web1', 'rolled-back'), host('web2', 'rolled-back')],
      'rollback',
    )
    expect(error.exitCode).to.equal(ExitCode.verify)
    expect(error.hint).to.equal('fix web2')
    expect(error.message).to.contain('Release 5 failed on web2: boom').and.contain('Rolled back: web1, web2.')
  })

  it('exits partial and names the hosts still on the new release', () => {
    const error = rolloutError(5, stop, [host('web1', 'released'), host('web2', 'failed')], 'stop')
    expect(error.exitCode).to.equal(ExitCode.partial)
    expect(error.message).to.contain('Still on release 5: web1.')
    expect(error.hint).to.contain('deployer rollback --host web1')
  })
})
