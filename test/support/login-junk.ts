import { execFile } from 'node:child_process'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

/** What the login files print on stdout (JSON-looking, to tempt a parser) and on stderr. */
export const JUNK_OUT = 'LOGIN-JUNK-OUT {"release": 999}'
export const JUNK_ERR = 'LOGIN-JUNK-ERR'
const posixJunk = `echo '${JUNK_OUT}'; echo ${JUNK_ERR} >&2\n`
// csh has no `>&2`.
const cshJunk = `echo '${JUNK_OUT}'\necho ${JUNK_ERR} > /dev/stderr\n`

/** The startup file each login shell reads for every command sshd runs (`$SHELL -c CMD`). */
const STARTUP_FILES: Record<string, string> = {
  bash: '.bashrc',
  rbash: '.bashrc',
  zsh: '.zshenv',
  fish: '.config/fish/config.fish',
  tcsh: '.tcshrc',
  csh: '.cshrc',
}

export async function homeOf(user: string): Promise<string> {
  const { stdout } = await run('getent', ['passwd', user])
  return stdout.trim().split(':')[5]!
}

/**
 * Makes every SSH command of `user` print junk on stdout and stderr before it runs, like rvm, nvm or a
 * banner would: from ~/.ssh/rc (sshd runs it unless PermitUserRC no) and the startup file of `shell`.
 */
export async function writeLoginJunk(user: string, shell: string): Promise<void> {
  const home = await homeOf(user)
  await mkdir(join(home, '.ssh'), { recursive: true })
  // sshd runs ~/.ssh/rc with /bin/sh whatever the login shell.
  await writeFile(join(home, '.ssh', 'rc'), posixJunk)
  const name = shell.split('/').pop()!
  const startup = STARTUP_FILES[name]
  if (startup) {
    await mkdir(join(home, startup, '..'), { recursive: true })
    await writeFile(join(home, startup), name.endsWith('csh') ? cshJunk : posixJunk)
  }
  await run('chown', ['-R', `${user}:`, home])
}
