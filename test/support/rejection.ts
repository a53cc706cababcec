/** Resolves with the rejection of `promise`, failing the test if it fulfils. */
export async function rejectionOf<E extends Error = Error>(promise: Promise<unknown>): Promise<E> {
  try {
    await promise
  } catch (error) {
    return error as E
  }
  throw new Error('expected a rejection, but the promise fulfilled')
}
