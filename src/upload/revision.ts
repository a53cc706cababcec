import { quote } from '../transport/quote.js'
import type { Transport } from '../transport/transport.js'

/**
 * The source's git commit when it is inside a git checkout (`+dirty` when tracked files differ from
 * that commit, so REVISION never claims a commit the release does not match); otherwise null.
 */
export async function readGitRevision(local: Transport, source: string): Promise<string | null> {
  const head = await local.exec(`git -C ${quote(source)} rev-parse --verify -q HEAD 2>/dev/null`)
  const commit = head.stdout.trim()
  if (head.code !== 0 || !/^[0-9a-f]{40,64}$/.test(commit)) return null
  const status = await local.exec(
    `git -C ${quote(source)} status --porcelain --untracked-files=no -- . 2>/dev/null`,
  )
  return status.code === 0 && status.stdout.trim() !== '' ? `${commit}+dirty` : commit
}
