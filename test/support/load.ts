import { get } from 'node:http'
import { expect } from 'chai'
import { type ReliabilityCase, recordCase } from './reliability.js'
import { waitFor } from './wait.js'

/** What a load run saw: answers per release served, and the requests that failed. */
export interface LoadCounts {
  ok: number
  failed: number
  /** Answers per `release=N` in the body (the fixture apps name their release). */
  releases: Record<string, number>
  /** The first few failures, to say why in an assertion message. */
  errors: string[]
  /** The longest time without any answer, from the start or between two answers (the outage a user saw). */
  longestGapMs: number
}

/** HTTP load on one Puma, running until `stop()`. */
export interface Load {
  port: number
  counts(): LoadCounts
  /** Waits until at least `requests` answers came back, so a fault lands on a serving Puma. */
  warmUp(requests?: number): Promise<void>
  /** Ends every client loop after its request in flight and returns the totals. */
  stop(): Promise<LoadCounts>
}

const KEPT_ERRORS = 5

/** Where a load ends by itself even if nobody stops it (a long run, a test that dies). */
export interface LoadLimits {
  /** Stop after this many requests in all (answered or failed). */
  maxRequests?: number
  /** Stop after this long. */
  maxSeconds?: number
}

/**
 * Starts `clients` loops of GETs to 127.0.0.1:`port`, one TCP connection per request (agent: false,
 * like `wrk -H 'Connection: close'`): with `queue_requests false` Puma then fails none of them across a
 * phased or hot restart (bench/zero-downtime.ts), so every failure counted here is the fault's doing.
 * A non-200 answer counts as failed.
 */
export function startLoad(port: number, clients = 4, limits: LoadLimits = {}): Load {
  const counts: LoadCounts = { ok: 0, failed: 0, releases: {}, errors: [], longestGapMs: 0 }
  let lastAnswer = Date.now()
  const { maxRequests = Number.POSITIVE_INFINITY, maxSeconds = Number.POSITIVE_INFINITY } = limits
  const endsAt = Date.now() + maxSeconds * 1000
  let stopping = false
  const done = () => stopping || counts.ok + counts.failed >= maxRequests || Date.now() >= endsAt
  const fail = (why: string) => {
    counts.failed++
    if (counts.errors.length < KEPT_ERRORS) counts.errors.push(why)
  }
  const loop = async () => {
    while (!done()) {
      try {
        const { status, body } = await request(port)
        if (status !== 200) {
          fail(`HTTP ${status}: ${body.slice(0, 100)}`)
          continue
        }
        counts.ok++
        const now = Date.now()
        counts.longestGapMs = Math.max(counts.longestGapMs, now - lastAnswer)
        lastAnswer = now
        const release = /release=(\S+)/.exec(body)?.[1] ?? '?'
        counts.releases[release] = (counts.releases[release] ?? 0) + 1
      } catch (error) {
        fail((error as Error).message)
      }
    }
  }
  const loops = Array.from({ length: clients }, loop)
  return {
    port,
    counts: () => counts,
    warmUp: (requests = 20) =>
      waitFor(() => counts.ok >= requests || counts.failed > 0, {
        what: `${requests} answers from 127.0.0.1:${port}`,
      }),
    async stop() {
      stopping = true
      await Promise.all(loops)
      return counts
    },
  }
}

function request(port: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = get({ host: '127.0.0.1', port, path: '/', agent: false, timeout: 10_000 }, (response) => {
      let body = ''
      response.on('data', (chunk: Buffer) => {
        body += chunk.toString('utf8')
      })
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }))
      response.on('error', reject)
    })
    req.on('error', reject)
    req.on('timeout', () => req.destroy(new Error('no answer within 10 s')))
  })
}

/** Several loads seen as one (a fleet's Pumas): counts summed, `stop()` stops them all. */
export function combineLoads(loads: readonly Load[]): Load {
  const sum = (all: readonly LoadCounts[]): LoadCounts => {
    const total: LoadCounts = { ok: 0, failed: 0, releases: {}, errors: [], longestGapMs: 0 }
    all.forEach((counts, index) => {
      total.ok += counts.ok
      total.longestGapMs = Math.max(total.longestGapMs, counts.longestGapMs)
      total.failed += counts.failed
      for (const [release, count] of Object.entries(counts.releases))
        total.releases[release] = (total.releases[release] ?? 0) + count
      total.errors.push(...counts.errors.map((error) => `port ${loads[index]?.port}: ${error}`))
    })
    return total
  }
  return {
    port: loads[0]?.port ?? 0,
    counts: () => sum(loads.map((load) => load.counts())),
    warmUp: async (requests) => {
      await Promise.all(loads.map((load) => load.warmUp(requests)))
    },
    stop: async () => sum(await Promise.all(loads.map((load) => load.stop()))),
  }
}

/** A one-line account of a load run for `recordCase`'s observed text. */
export function describeLoad(counts: LoadCounts): string {
  const served = Object.entries(counts.releases)
    .map(([release, count]) => `release ${release}: ${count}`)
    .join(', ')
  return `${counts.ok + counts.failed} requests under load (${served}), ${counts.failed} failed`
}

/**
 * Ends a fault case that ran under `load`: stops it, asserts that no request failed, and records the
 * case with what the load saw appended to `observed`.
 */
export async function recordUnderLoad(
  load: Load,
  entry: Omit<ReliabilityCase, 'kind' | 'failedRequests'>,
): Promise<LoadCounts> {
  const counts = await load.stop()
  expect(counts.failed, counts.errors.join('\n')).to.equal(0)
  await recordCase({
    kind: 'fault',
    ...entry,
    observed: `${entry.observed}; ${describeLoad(counts)}`,
    failedRequests: counts.failed,
  })
  return counts
}
