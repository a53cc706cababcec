import { quote } from '../transport/quote.js'

/**
 * ENOSPC ("No space left on device") means either no free blocks or no free inodes: the same error,
 * different fixes (delete big files, or delete many files). Asked only after a command failed with it.
 */
export function spaceCommand(dir: string): string {
  // The nearest existing directory: a failed first release may not have created deploy_to.
  return [
    `d=${quote(dir)}`,
    'while [ ! -d "$d" ] && [ "$d" != / ]; do d=$(dirname -- "$d"); done',
    'df -P -i -- "$d" | tail -n 1',
    'df -P -k -- "$d" | tail -n 1',
  ].join('\n')
}

export interface SpaceReading {
  inodes: number
  inodesFree: number
  kib: number
  kibFree: number
}

/** The two `df -P` lines spaceCommand prints; null when they do not parse. Pure. */
export function parseSpace(output: string): SpaceReading | null {
  const [inodeLine, blockLine] = output.trim().split('\n')
  const fields = (line: string | undefined) => line?.trim().split(/\s+/) ?? []
  // Filesystem Inodes IUsed IFree IUse% Mounted-on / Filesystem 1024-blocks Used Available Capacity Mounted-on
  const inode = fields(inodeLine)
  const block = fields(blockLine)
  const numbers = [inode[1], inode[3], block[1], block[3]].map((value) => Number(value))
  if (numbers.some((value) => !Number.isFinite(value)) || inode.length < 6 || block.length < 6) return null
  const [inodes, inodesFree, kib, kibFree] = numbers as [number, number, number, number]
  return { inodes, inodesFree, kib, kibFree }
}

/**
 * Whether ENOSPC came from the inodes running out: nearly none free while space is left. Filesystems
 * without an inode limit (btrfs reports 0 inodes) count as a full disk. Pure.
 */
export function outOfInodes(reading: SpaceReading | null): boolean {
  if (reading === null || reading.inodes <= 0) return false
  const fewInodes = reading.inodesFree <= Math.max(16, reading.inodes * 0.001)
  const spaceLeft = reading.kibFree >= Math.max(1024, reading.kib * 0.01)
  return fewInodes && spaceLeft
}

/** The `because` and `hint` of an error whose command ran out of inodes on the disk holding `deployTo`. */
export function inodesError(deployTo: string, reading: SpaceReading, error: string) {
  return {
    because: `the disk holding ${deployTo} has no free inodes left (${error}: ${reading.inodesFree} of ${reading.inodes} inodes free, while ${Math.floor(reading.kibFree / 1024)} MiB of space is free)`,
    hint: `Every file and directory takes an inode: delete many small files on that disk (\`df -i ${quote(deployTo)}\` on the host; \`deployer prune --keep N\` deletes old releases, each holding one inode per file), then run the command again.`,
  }
}
