import type { Strategy } from '../config/types.js'

export interface WavePlanOptions {
  strategy: Strategy
  /** Hosts per wave for `rolling` (and after the canary with `canaryThen: rolling`). */
  batch: number
  canaryThen: 'parallel' | 'rolling'
}

/**
 * The order in which built hosts go live, as waves of host indices: a wave goes live together, and the
 * next starts only when every host of the one before is verified. `parallel` is one wave, `rolling`
 * cuts the hosts into batches, `canary` puts the first host alone in front of the others.
 */
export function planWaves(hostCount: number, options: WavePlanOptions): number[][] {
  const hosts = Array.from({ length: hostCount }, (_, index) => index)
  if (hosts.length === 0) return []
  const batches = (indices: number[], size: number) => {
    const waves: number[][] = []
    for (let start = 0; start < indices.length; start += size) waves.push(indices.slice(start, start + size))
    return waves
  }
  switch (options.strategy) {
    case 'parallel':
      return [hosts]
    case 'rolling':
      return batches(hosts, Math.max(1, options.batch))
    case 'canary': {
      const [canary, ...rest] = hosts as [number, ...number[]]
      if (rest.length === 0) return [[canary]]
      return [
        [canary],
        ...(options.canaryThen === 'rolling' ? batches(rest, Math.max(1, options.batch)) : [rest]),
      ]
    }
  }
}
