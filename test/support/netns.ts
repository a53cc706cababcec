import { execFile } from 'node:child_process'
import { randomInt } from 'node:crypto'
import { promisify } from 'node:util'

const run = promisify(execFile)

/**
 * A network namespace this test owns, joined to this machine by one veth pair: a server that listens on
 * the namespace's 127.0.0.1 can only be reached from inside it, i.e. through a jump host that listens on
 * `nsAddress` there. Needs root (CI runs as root).
 */
export interface TestNetns {
  name: string
  /** The namespace's end of the veth pair: where a jump host listens for this machine. */
  nsAddress: string
  /** Deletes the veth pair and the namespace. Stop the servers inside first. */
  destroy(): Promise<void>
}

export async function createNetns(): Promise<TestNetns> {
  // Names and a /30 of their own, so that parallel test runs on the machine do not collide.
  const id = `${process.pid % 10000}${randomInt(100)}`
  const name = `deployer-test-${id}`
  const outside = `dpa${id}`
  const inside = `dpb${id}`
  const subnet = `10.${200 + randomInt(50)}.${randomInt(256)}`
  const created: Array<() => Promise<unknown>> = []
  const destroy = async () => {
    for (const undo of created.reverse()) await undo().catch(() => {})
  }
  try {
    await run('ip', ['netns', 'add', name])
    created.push(() => run('ip', ['netns', 'delete', name]))
    await run('ip', ['netns', 'exec', name, 'ip', 'link', 'set', 'lo', 'up'])
    await run('ip', ['link', 'add', outside, 'type', 'veth', 'peer', 'name', inside])
    created.push(() => run('ip', ['link', 'delete', outside]))
    await run('ip', ['link', 'set', inside, 'netns', name])
    await run('ip', ['addr', 'add', `${subnet}.1/30`, 'dev', outside])
    await run('ip', ['link', 'set', outside, 'up'])
    await run('ip', ['netns', 'exec', name, 'ip', 'addr', 'add', `${subnet}.2/30`, 'dev', inside])
    await run('ip', ['netns', 'exec', name, 'ip', 'link', 'set', inside, 'up'])
  } catch (error) {
    await destroy()
    throw error
  }
  return { name, nsAddress: `${subnet}.2`, destroy }
}
