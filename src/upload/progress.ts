import { pipeline, type Readable, Transform } from 'node:stream'

/**
 * Passes `source` through unchanged, calling `report` with the bytes seen so far at most every
 * `intervalMs` and once at the end. Errors travel on (pipeline), so an aborted upload still fails.
 */
export function countBytes(source: Readable, report: (bytes: number) => void, intervalMs = 250): Readable {
  let bytes = 0
  let reportedAt = 0
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      bytes += chunk.length
      const now = Date.now()
      if (now - reportedAt >= intervalMs) {
        reportedAt = now
        report(bytes)
      }
      done(null, chunk)
    },
    flush(done) {
      report(bytes)
      done()
    },
  })
  pipeline(source, counter, () => {})
  return counter
}
