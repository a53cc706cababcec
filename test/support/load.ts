import { get } from 'node:http'

/** Requests answered and failed while a load ran, with the first few failures for the message. */
export interface LoadCounts {
  ok: number
  failed: number
  errors: string[]
}

export interface RunningLoad {
  /** Stops sending, waits for the requests in flight, and returns the counts. */
  stop(): Promise<LoadCounts>
}

/**
 * Keeps `connections` clients sending GET / to 127.0.0.1:port back to back, each request on a new
 * connection (the harshest case for a restart: every request needs an accept). A request fails on a
 * connection error, a timeout or a status other than 200.
 */
export function startLoad(port: number, connections = 4): RunningLoad {
  const counts: LoadCounts = { ok: 0, failed: 0, errors: [] }
  let stopping = false
  const once = () =>
    new Promise<void>((resolve) => {
      const fail = (why: string) => {
        counts.failed++
        if (counts.errors.length < 5) counts.errors.push(why)
        resolve()
      }
      const request = get(
        { host: '127.0.0.1', port, path: '/', agent: false, timeout: 10_000 },
        (response) => {
          response.resume()
          response.on('end', () => {
            if (response.statusCode === 200) counts.ok++
            else fail(`status ${response.statusCode}`)
            resolve()
          })
          response.on('error', (error) => fail(error.message))
        },
      )
      request.on('error', (error) => fail(error.message))
      request.on('timeout', () => request.destroy(new Error('timeout')))
    })
  const client = async () => {
    while (!stopping) await once()
  }
  const clients = Array.from({ length: connections }, client)
  return {
    async stop() {
      stopping = true
      await Promise.all(clients)
      return counts
    },
  }
}
