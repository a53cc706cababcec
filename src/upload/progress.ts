import { pipeline, type Readable, Transform } from 'node:stream'

/**
 * Passes `source` through unchanged, calling `report` with the bytes seen so far at most every
 * `intervalMs` and once at the end. Errors travel on (pipeline), so an aborted upload still fails.
 */
export function countBytes(
  source: Readable,
  report: (bytes: number) => void,
  options: { intervalMs?: number; pauseAfterFirstChunk?: () => Promise<void> } = {},
): Readable {
  const intervalMs = options.intervalMs ?? 250
  let bytes = 0
  let reportedAt = 0
  let chunks = 0
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      // The fault suite's `upload` failpoint: the host has part of the stream when the run stops.
      if (++chunks === 2 && options.pauseAfterFirstChunk) {
        options.pauseAfterFirstChunk().then(() => this._transform(chunk, _encoding, done), done)
        return
      }
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
