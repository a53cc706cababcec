import { expect } from 'chai'
import { escapeMarkdown, fence, renderSummary, timings } from '../../../src/action/summary.js'
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

/** The table rows of a summary, as cells. */
function rows(markdown: string): string[][] {
  return markdown
    .split('\n')
    .filter((line) => line.startsWith('| ') && !line.startsWith('| ---'))
    .map((line) =>
      line
        .slice(2, -2)
        .split(/ (?<!\\)\| /)
        .map((cell) => cell.trim()),
    )
}

describe('renderSummary', () => {
  it('renders a successful release: heading, source and a row per host', () => {
    const markdown = renderSummary(
      'release',
      releaseJson([releasedHost('web1'), releasedHost('web2', { restart: undefined })]),
      0,
    )
    expect(markdown).to.match(
      /^### deployer release: shop release 12\n\nSucceeded\. Revision `abc1234`, 42 files, 3\.0 MiB\./,
    )
    expect(rows(markdown)).to.deep.equal([
      ['host', 'release', 'restart', 'why', 'status', 'rolled back', 'timings'],
      [
        'web1',
        '11 → 12',
        'phased',
        'the code changed',
        'released',
        'no',
        'connect 80 ms · upload 1.2 s · restart 2.5 s · total 3.8 s',
      ],
      [
        'web2',
        '11 → 12',
        '—',
        '—',
        'released',
        'no',
        'connect 80 ms · upload 1.2 s · restart 2.5 s · total 3.8 s',
      ],
    ])
    expect(markdown).to.not.contain('Error')
  })

  it('renders a rolled-back release with the host’s error and hint once, and the exit code', () => {
    const markdown = renderSummary('release', ROLLED_BACK, 8)
    expect(markdown).to.contain('**Failed** with exit code 8.')
    expect(rows(markdown)[1]).to.deep.equal([
      'web1',
      '11 → 12',
      'hot',
      'Gemfile.lock changed without prune_bundler',
      'rolled-back',
      'yes, to 11: hot restart back to release 11, verified',
      'connect 80 ms · upload 1.2 s · restart 2.5 s · total 3.8 s',
    ])
    expect(markdown).to.contain(
      '**Error on web1:**\n\n```\nHost web1: workers did not boot in release 12 within 60 s.\n```\n\n**Hint:** Read shared/log/puma.log on web1.',
    )
    expect(markdown.match(/workers did not boot/g)).to.have.length(1)
  })

  it('says why a host of a stopped rollout was rolled back or not started', () => {
    const json = releaseJson([
      releasedHost('web1', { status: 'rolled-back', note: 'rolled back to release 11 because web2 failed' }),
      releasedHost('web3', { status: 'skipped', note: 'not started: the rollout stopped when web2 failed' }),
    ])
    const statuses = rows(renderSummary('release', json, 8))
      .slice(1)
      .map((row) => row[4])
    expect(statuses).to.deep.equal([
      'rolled-back: rolled back to release 11 because web2 failed',
      'skipped: not started: the rollout stopped when web2 failed',
    ])
  })

  it('lists what check found per host, warnings and blocking problems only', () => {
    const json = {
      ok: false,
      hosts: [
        {
          host: 'web1',
          deployTo: '/srv/shop',
          status: 'blocking',
          reachable: true,
          findings: [
            { check: 'ssh', severity: 'ok', message: 'connected' },
            {
              check: 'tool',
              severity: 'blocking',
              message: 'bundle is not installed',
              hint: 'apt install bundler',
            },
            { check: 'puma-preload', severity: 'warning', message: 'preload_app! is on' },
          ],
        },
      ],
    }
    expect(rows(renderSummary('check', json, 1))[1]).to.deep.equal([
      'web1',
      'blocking',
      'blocking: bundle is not installed; warning: preload_app! is on',
    ])
  })

  it('renders a failure before any result as the error and its hint, without a table', () => {
    const markdown = renderSummary('release', STOPPED_EARLY, 5)
    expect(markdown).to.equal(
      [
        '### deployer release',
        '',
        '**Failed** with exit code 5.',
        '',
        '**Error:**',
        '',
        '```',
        'Host web1: the host key of [127.0.0.1]:2222 is not in /tmp/known_hosts.',
        '```',
        '',
        '**Hint:** Run `ssh-keyscan -p 2222 127.0.0.1 >> /tmp/known_hosts` after checking the key.',
        '',
      ].join('\n'),
    )
  })

  it('shows a partial release’s own message beside the host errors', () => {
    const json = releaseJson(
      [
        releasedHost('web1'),
        releasedHost('web2', { status: 'failed', error: { message: 'disk full', exitCode: 1 } }),
      ],
      { ok: false, error: 'Release 12 was published on 1 of 2 hosts: disk full' },
    )
    const markdown = renderSummary('release', json, 9)
    expect(markdown).to.contain('**Error:**\n\n```\nRelease 12 was published on 1 of 2 hosts: disk full\n```')
    expect(markdown).to.contain('**Error on web2:**\n\n```\ndisk full\n```')
  })

  it('renders what deployer printed when it printed no JSON', () => {
    const markdown = renderSummary(
      'prune',
      {
        ok: false,
        error: {
          message: 'deployer exited with code 1 without printing a result.',
          output: 'TypeError: x\n    at y',
        },
      },
      1,
    )
    expect(markdown).to.contain('deployer printed:\n\n```\nTypeError: x\n    at y\n```')
  })

  it('renders a rollback with each host’s move, restart and whether it was done', () => {
    expect(rows(renderSummary('rollback', rollbackJson(ROLLBACK_HOSTS), 0))).to.deep.equal([
      ['host', 'release', 'restart', 'why', 'done'],
      ['web1', '12 → 11', 'phased', 'the code changed', 'yes'],
      ['web2', '12 → 11', '—', '—', 'yes'],
    ])
    const planned = renderSummary('rollback', rollbackJson(ROLLBACK_HOSTS, true), 0)
    expect(planned).to.match(/^### deployer rollback \(dry run, nothing changed\)/)
    expect(rows(planned)[1]?.[4]).to.equal('planned')
  })

  it('renders a prune with what went and what stayed, and who holds it', () => {
    expect(rows(renderSummary('prune', { ok: true, dryRun: false, hosts: PRUNE_HOSTS }, 0))).to.deep.equal([
      ['host', 'removed', 'kept'],
      ['web1', '7, 8', '9 (in use by pid 4242 (puma) via cwd /srv/shop/releases/9), 12 (current)'],
    ])
  })

  it('renders the releases on each host', () => {
    expect(rows(renderSummary('releases', { ok: true, hosts: LISTED_HOSTS }, 0))).to.deep.equal([
      ['host', 'current', 'releases', 'locked'],
      ['web1', '12', '11 previous, 12 live', 'no'],
      ['web2', '12', '12 live', 'yes'],
    ])
  })

  it('renders inputs so wrong there is no command', () => {
    expect(renderSummary(undefined, { ok: false, error: { message: 'bad', exitCode: 2 } }, 2)).to.match(
      /^### deployer\n\n\*\*Failed\*\* with exit code 2\.\n\n\*\*Error:\*\*/,
    )
  })

  it('keeps a hostile host name inside its cell', () => {
    const markdown = renderSummary('release', releaseJson([releasedHost('a|b<img src=x>\n# x')]), 0)
    expect(rows(markdown)[1]?.[0]).to.equal('a\\|b&lt;img src=x&gt;<br># x')
  })
})

describe('escapeMarkdown', () => {
  const cases: [text: string, markdown: string][] = [
    ['plain', 'plain'],
    ['a | b', 'a \\| b'],
    ['<b>&</b>', '&lt;b&gt;&amp;&lt;/b&gt;'],
    ['one\ntwo\r\nthree', 'one<br>two<br>three'],
    ['run `a >> b | c` then <d>', 'run `a >> b \\| c` then &lt;d&gt;'],
    ['an unclosed ` stays <escaped>', 'an unclosed ` stays &lt;escaped&gt;'],
  ]
  for (const [text, markdown] of cases) {
    it(`escapes ${JSON.stringify(text)}`, () => {
      expect(escapeMarkdown(text)).to.equal(markdown)
    })
  }
})

describe('fence', () => {
  it('uses three backticks for text without any', () => {
    expect(fence('a\nb')).to.equal('```\na\nb\n```')
  })
  it('uses a fence longer than any run of backticks inside', () => {
    expect(fence('x ```` y')).to.equal('`````\nx ```` y\n`````')
  })
})

describe('timings', () => {
  const cases: [phases: Record<string, number>, text: string][] = [
    [{}, '—'],
    [{ connect: 12.4 }, 'connect 12 ms · total 12 ms'],
    [{ upload: 999, install: 61_000 }, 'upload 999 ms · install 61.0 s · total 62.0 s'],
  ]
  for (const [phases, text] of cases) {
    it(`writes ${JSON.stringify(phases)} as ${JSON.stringify(text)}`, () => {
      expect(timings(phases)).to.equal(text)
    })
  }
})
