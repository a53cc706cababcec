import { expect } from 'chai'
import type { DeployConfig, ServerSettings } from '../../../src/config/types.js'
import { DeployerError } from '../../../src/errors.js'
import type { HostSession } from '../../../src/hosts/host-session.js'
import { layoutFor } from '../../../src/release/layout.js'
import type { Clock } from '../../../src/restart/poll.js'
import type { ServerProbe } from '../../../src/restart/probe-facts.js'
import { type PumaContext, PumaPaths } from '../../../src/restart/puma-paths.js'
import { baselineOf, configPlan, type RestartPlan } from '../../../src/restart/restart-plan.js'
import { startPuma, triggerRestart, waitForIdle } from '../../../src/restart/signal-puma.js'
import { pumaConfig, SERVER, serverProbe } from '../check/fixtures.js'

/** A clock that only moves when something sleeps on it. */
function fakeClock(): Clock {
  let now = 0
  return {
    now: () => now,
    sleep: async (ms) => {
      now += ms
    },
  }
}

/**
 * A PumaContext whose probe answers from a list (the last answer repeats) and whose session records the
 * commands it is asked to run: the signalling steps tested without a host and without waiting.
 */
function fakeHost(probes: ServerProbe[], server: Partial<ServerSettings> = {}) {
  const layout = layoutFor('/srv/shop')
  const settings = { ...SERVER, ...server }
  const ran: string[] = []
  let looks = 0
  const session = {
    name: 'web1',
    layout,
    run: async (what: string) => {
      ran.push(what)
      return ''
    },
    ask: async () => ({ code: 1, stdout: '', stderr: '' }),
  } as unknown as HostSession
  const host: PumaContext = {
    session,
    server: settings,
    config: { server: settings } as DeployConfig,
    paths: new PumaPaths(layout, settings),
    clock: fakeClock(),
    probe: async () => probes[Math.min(looks++, probes.length - 1)] as ServerProbe,
    settledProbe: async () => probes[0] as ServerProbe,
  }
  return { host, ran, looks: () => looks }
}

function planFor(probe: ServerProbe, kind: RestartPlan['decision']['kind']): RestartPlan {
  return {
    decision: { kind, reasons: [], warnings: [] } as unknown as RestartPlan['decision'],
    fingerprints: {} as RestartPlan['fingerprints'],
    baseline: baselineOf(probe),
    running: {} as RestartPlan['running'],
    ...configPlan(pumaConfig()),
    observed: null,
  }
}

describe('signalling Puma (signal-puma.ts)', () => {
  const idle = serverProbe()
  const phasing = serverProbe({ stats: { ...idle.stats!, oldWorkers: 1 } })

  it('waits out an unfinished phased restart before signalling', async () => {
    const { host, looks } = fakeHost([phasing, phasing, idle])
    expect(await waitForIdle(host, planFor(idle, 'phased'))).to.equal(idle)
    expect(looks()).to.equal(3)
  })

  it('gives up at the deadline, naming what it waited for', async () => {
    const { host } = fakeHost([phasing])
    const error = await waitForIdle(host, planFor(idle, 'phased')).catch((e: unknown) => e)
    expect(error).to.be.instanceOf(DeployerError)
    expect((error as Error).message).to.match(
      /^Host web1: a phased restart is still in progress \(1 old workers\) after \d+s\.$/,
    )
  })

  const signals: [RestartPlan['decision']['kind'], string[]][] = [
    ['phased', ['sending USR1 to Puma']],
    ['hot', ['sending USR2 to Puma']],
    ['none', []],
  ]
  for (const [kind, commands] of signals) {
    it(`a ${kind} restart runs ${commands.join(', ') || 'nothing'}`, async () => {
      const { host, ran } = fakeHost([idle])
      await triggerRestart(host, kind as 'phased', planFor(idle, kind))
      expect(ran).to.deep.equal(commands)
    })
  }

  it('runs server.full_restart instead of TERM and start when it is set', async () => {
    const { host, ran } = fakeHost([idle], { fullRestart: 'sudo systemctl restart shop' })
    await triggerRestart(host, 'full', planFor(idle, 'full'))
    expect(ran).to.deep.equal(['the full restart (server.full_restart)'])
  })

  it('stops the master with TERM, then starts Puma once its port is free', async () => {
    const holding = serverProbe({ listeningPorts: [3000] })
    const { host, ran } = fakeHost([holding, holding, serverProbe({ listeningPorts: [] })], {
      start: 'bundle exec puma',
    })
    await triggerRestart(host, 'full', planFor(idle, 'full'))
    expect(ran).to.deep.equal(['stopping Puma (TERM)', 'starting Puma'])
  })

  it('refuses to start without server.start', async () => {
    const { host } = fakeHost([idle], { start: undefined })
    const error = await startPuma(host).catch((e: unknown) => e)
    expect((error as DeployerError).message).to.equal(
      'Host web1: Puma is not running and `server.start` is not set.',
    )
  })
})
