import { expect } from 'chai'
import type { ActionCommand } from '../../../src/action/inputs.js'
import {
  type ActionOutputs,
  actionOutputs,
  type CliJson,
  resultFromStderr,
} from '../../../src/action/result.js'
import {
  LISTED_HOSTS,
  PRUNE_HOSTS,
  ROLLBACK_HOSTS,
  ROLLED_BACK,
  releasedHost,
  releaseJson,
  rollbackJson,
  STOPPED_EARLY,
} from './fixtures.js'

describe('actionOutputs', () => {
  const cases: {
    name: string
    command: ActionCommand | undefined
    json: CliJson
    outputs: Omit<ActionOutputs, 'result'>
  }[] = [
    {
      name: 'a release on two hosts: the number and each host’s restart',
      command: 'release',
      json: releaseJson([
        releasedHost('web1'),
        releasedHost('web2', {
          restart: { kind: 'start', auto: 'start', reasons: ['Puma is not running'], warnings: [] },
        }),
      ]),
      outputs: { release: '12', restarts: '{"web1":"phased","web2":"start"}', 'rolled-back': 'false' },
    },
    {
      name: 'a release without a server section: no restarts',
      command: 'release',
      json: releaseJson([releasedHost('web1', { restart: undefined })]),
      outputs: { release: '12', restarts: '{}', 'rolled-back': 'false' },
    },
    {
      name: 'a release rolled back on failed verification',
      command: 'release',
      json: ROLLED_BACK,
      outputs: { release: '12', restarts: '{"web1":"hot","web2":"phased"}', 'rolled-back': 'true' },
    },
    {
      name: 'a release that stopped before numbering (release 0)',
      command: 'release',
      json: releaseJson([releasedHost('web1', { status: 'failed', release: null, restart: undefined })], {
        ok: false,
        release: 0,
        error: 'boom',
      }),
      outputs: { release: '', restarts: '{}', 'rolled-back': 'false' },
    },
    {
      name: 'a failure before any result',
      command: 'release',
      json: STOPPED_EARLY,
      outputs: { release: '', restarts: '{}', 'rolled-back': 'false' },
    },
    {
      name: 'a rollback: the target, and the restarts of the hosts that had one',
      command: 'rollback',
      json: rollbackJson(ROLLBACK_HOSTS),
      outputs: { release: '11', restarts: '{"web1":"phased"}', 'rolled-back': 'true' },
    },
    {
      name: 'a rollback dry run rolls nothing back',
      command: 'rollback',
      json: rollbackJson(
        ROLLBACK_HOSTS.map((host) => ({ ...host, done: false })),
        true,
      ),
      outputs: { release: '11', restarts: '{}', 'rolled-back': 'false' },
    },
    {
      name: 'a rollback whose hosts went to different releases has no one number',
      command: 'rollback',
      json: rollbackJson([ROLLBACK_HOSTS[0]!, { ...ROLLBACK_HOSTS[1]!, to: 10 }]),
      outputs: { release: '', restarts: '{"web1":"phased"}', 'rolled-back': 'true' },
    },
    {
      name: 'releases: the current release all hosts agree on',
      command: 'releases',
      json: { ok: true, hosts: LISTED_HOSTS },
      outputs: { release: '12', restarts: '{}', 'rolled-back': 'false' },
    },
    {
      name: 'prune: nothing but the result',
      command: 'prune',
      json: { ok: true, dryRun: false, hosts: PRUNE_HOSTS },
      outputs: { release: '', restarts: '{}', 'rolled-back': 'false' },
    },
    {
      name: 'inputs so wrong there is no command',
      command: undefined,
      json: { ok: false, error: { message: 'bad input', exitCode: 2 } },
      outputs: { release: '', restarts: '{}', 'rolled-back': 'false' },
    },
  ]
  for (const { name, command, json, outputs } of cases) {
    it(name, () => {
      expect(actionOutputs(command, json)).to.deep.equal({ ...outputs, result: JSON.stringify(json) })
    })
  }
})

describe('resultFromStderr', () => {
  it('takes the message from oclif’s Error: line', () => {
    const stderr =
      ' \u001b[33m›\u001b[39m   Error: Nonexistent flag: --bogus\n ›   See more help with --help\n\nUSAGE\n  $ deployer release\n'
    expect(resultFromStderr(2, stderr)).to.deep.equal({
      ok: false,
      error: {
        message: 'Nonexistent flag: --bogus',
        hint: 'See the deployer output in the log of this step.',
        exitCode: 2,
      },
    })
  })

  it('keeps the last 20 lines when there is no Error: line', () => {
    const stderr = `${Array.from({ length: 30 }, (_, index) => `line ${index + 1}`).join('\n')}\n`
    const result = resultFromStderr(1, stderr)
    const error = result.error as { message: string; output: string }
    expect(error.message).to.equal('deployer exited with code 1 without printing a result.')
    expect(error.output.split('\n')).to.deep.equal(
      Array.from({ length: 20 }, (_, index) => `line ${index + 11}`),
    )
  })

  it('has no output to keep when stderr is empty', () => {
    expect(resultFromStderr(137, '').error).to.deep.equal({
      message: 'deployer exited with code 137 without printing a result.',
      hint: 'See the deployer output in the log of this step.',
      exitCode: 137,
    })
  })
})
