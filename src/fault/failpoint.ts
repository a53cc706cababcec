/**
 * Named points in a run where the fault suite stops deployer to kill it, cut its connection or fill
 * the disk at a known moment instead of racing a timer. Off unless `DEPLOYER_FAILPOINT` names one:
 * `upload`, or `upload@web2` for one host, several separated by commas. At a matching point deployer
 * prints `failpoint NAME HOST` on stderr and waits until it gets SIGUSR2 (it carries on, e.g. after the
 * test cut a host off), the run is interrupted (SIGINT/SIGTERM: it carries on as an interrupt arriving
 * there would) or it is killed.
 */
export type FailpointName = 'lock' | 'upload' | 'install' | 'publish' | 'flip' | 'restart' | 'verify'

export const FAILPOINT_ENV = 'DEPLOYER_FAILPOINT'

/** Whether `name` on `host` is one of the points `spec` (the env value) names. Pure. */
export function failpointMatches(spec: string | undefined, name: FailpointName, host: string): boolean {
  if (!spec) return false
  return spec
    .split(',')
    .map((entry) => entry.trim())
    .some((entry) => {
      const [point, onHost] = entry.split('@')
      return point === name && (onHost === undefined || onHost === host)
    })
}

export async function failpoint(
  name: FailpointName,
  host: string,
  signal?: AbortSignal,
  env: NodeJS.ProcessEnv = process.env,
): Promise<void> {
  if (!failpointMatches(env[FAILPOINT_ENV], name, host)) return
  process.stderr.write(`failpoint ${name} ${host}\n`)
  if (signal?.aborted) return
  await new Promise<void>((resolve) => {
    // The timer keeps the process alive while nothing else is pending.
    const keepAlive = setInterval(() => {}, 60_000)
    const done = () => {
      clearInterval(keepAlive)
      process.off('SIGUSR2', done)
      signal?.removeEventListener('abort', done)
      resolve()
    }
    process.once('SIGUSR2', done)
    signal?.addEventListener('abort', done, { once: true })
  })
}
