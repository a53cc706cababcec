import type { CliJson } from '../../../src/action/result.js'
import type { HostReleases } from '../../../src/fleet/list.js'
import type { PruneOutcome } from '../../../src/fleet/prune.js'
import type { HostReleaseOutcome } from '../../../src/fleet/release.js'
import type { RollbackOutcome } from '../../../src/fleet/rollback.js'

/** `--json` results as the commands print them, typed against the real outcomes so they keep up. */

export function releasedHost(host: string, overrides: Partial<HostReleaseOutcome> = {}): HostReleaseOutcome {
  return {
    host,
    deployTo: '/srv/shop',
    status: 'released',
    previous: 11,
    release: 12,
    removedStale: [],
    pruned: [],
    restart: { kind: 'phased', auto: 'phased', reasons: ['the code changed'], warnings: [] },
    timings: { connect: 80, upload: 1234, restart: 2500 },
    ...overrides,
  }
}

export function releaseJson(hosts: HostReleaseOutcome[], extra: Partial<CliJson> = {}): CliJson {
  return {
    ok: true,
    app: 'shop',
    release: 12,
    revision: 'abc1234',
    dryRun: false,
    files: 42,
    bytes: 3 * 1024 * 1024,
    hosts,
    ...extra,
  }
}

/** web1 failed verification and went back to 11; web2 was fine but went back too (on_failure: rollback). */
export const ROLLED_BACK = releaseJson(
  [
    releasedHost('web1', {
      status: 'rolled-back',
      restart: {
        kind: 'hot',
        auto: 'hot',
        reasons: ['Gemfile.lock changed without prune_bundler'],
        warnings: [],
        recovered: 'hot restart back to release 11, verified',
      },
      error: {
        message: 'Host web1: workers did not boot in release 12 within 60 s.',
        hint: 'Read shared/log/puma.log on web1.',
        exitCode: 8,
      },
    }),
    releasedHost('web2'),
  ],
  { ok: false, error: 'Host web1: workers did not boot in release 12 within 60 s.' },
)

export const STOPPED_EARLY: CliJson = {
  ok: false,
  error: {
    message: 'Host web1: the host key of [127.0.0.1]:2222 is not in /tmp/known_hosts.',
    hint: 'Run `ssh-keyscan -p 2222 127.0.0.1 >> /tmp/known_hosts` after checking the key.',
    exitCode: 5,
    host: 'web1',
  },
}

export function rollbackJson(hosts: RollbackOutcome[], dryRun = false): CliJson {
  return { ok: true, dryRun, hosts }
}

export const ROLLBACK_HOSTS: RollbackOutcome[] = [
  {
    host: 'web1',
    from: 12,
    to: 11,
    done: true,
    restart: { kind: 'phased', auto: 'phased', reasons: ['the code changed'], warnings: [] },
  },
  { host: 'web2', from: 12, to: 11, done: true },
]

export const PRUNE_HOSTS: PruneOutcome[] = [
  {
    host: 'web1',
    removed: [7, 8],
    kept: [
      {
        number: 9,
        reason: 'in-use',
        holders: [{ pid: 4242, command: 'puma', via: 'cwd', path: '/srv/shop/releases/9' }],
      },
      { number: 12, reason: 'current', holders: [] },
    ],
    hiddenProcesses: 0,
  },
]

export const LISTED_HOSTS: HostReleases[] = [
  {
    host: 'web1',
    deployTo: '/srv/shop',
    current: 12,
    unfinished: [],
    deleting: [],
    foreign: [],
    locked: false,
    releases: [
      { number: 11, revision: 'a', time: '2025-01-01T00:00:00Z', state: 'previous', current: false },
      { number: 12, revision: 'b', time: '2025-01-02T00:00:00Z', state: 'live', current: true },
    ],
  },
  {
    host: 'web2',
    deployTo: '/srv/shop',
    current: 12,
    unfinished: [],
    deleting: [],
    foreign: [],
    locked: true,
    releases: [{ number: 12, revision: 'b', time: '2025-01-02T00:00:00Z', state: 'live', current: true }],
  },
]
