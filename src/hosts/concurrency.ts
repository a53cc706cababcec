/**
 * Runs `task` over `items` with at most `limit` at once, and waits for all of them: one host's failure
 * never leaves another host's step running unobserved. Results keep the order of `items`.
 */
export async function settleAll<T, R>(
  items: readonly T[],
  limit: number,
  task: (item: T, index: number) => Promise<R>,
): Promise<PromiseSettledResult<R>[]> {
  const results: PromiseSettledResult<R>[] = new Array(items.length)
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const index = next++
      try {
        results[index] = { status: 'fulfilled', value: await task(items[index] as T, index) }
      } catch (reason) {
        results[index] = { status: 'rejected', reason }
      }
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker))
  return results
}

/** The first rejection's reason, for when any host's failure fails the whole step. */
export function firstFailure(results: readonly PromiseSettledResult<unknown>[]): unknown {
  const failed = results.find((result) => result.status === 'rejected')
  return failed ? (failed as PromiseRejectedResult).reason : undefined
}
