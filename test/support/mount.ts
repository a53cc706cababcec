import { execFile } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { userIds } from './fixture.js'

const run = promisify(execFile)

/** Whether this machine lets the tests mount a tmpfs (root in a container may lack CAP_SYS_ADMIN). */
export async function canMount(): Promise<boolean> {
  const probe = await mkdtemp(join(tmpdir(), 'deployer-mount-probe-'))
  try {
    await run('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'deployer-probe', probe])
    await run('umount', [probe])
    return true
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? ''
    if (/permission denied|not permitted|must be superuser|EPERM/i.test(stderr)) return false
    throw error
  } finally {
    await rm(probe, { recursive: true, force: true })
  }
}

/** Mounts a tmpfs owned by `user` on `dir` with extra options (`size=8m`, `nr_inodes=100`). */
export async function mountTmpfs(
  dir: string,
  user: string,
  options: string,
  name = 'deployer-faults',
): Promise<void> {
  const { uid, gid } = await userIds(user)
  await run('mount', ['-t', 'tmpfs', '-o', `${options},uid=${uid},gid=${gid},mode=0755`, name, dir])
}

export async function unmount(dir: string): Promise<void> {
  await run('umount', [dir])
}
