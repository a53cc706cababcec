import Check from '../../commands/check.js'
import Init from '../../commands/init.js'
import Prune from '../../commands/prune.js'
import Release from '../../commands/release.js'
import Releases from '../../commands/releases.js'
import Rollback from '../../commands/rollback.js'
import Unlock from '../../commands/unlock.js'

/**
 * Every command by its id, for oclif's explicit command strategy: the bundles hold all commands in one
 * module, so oclif cannot find them by globbing dist/commands. This file is the composition root (the
 * top of the CLI), which is why it, alone in src/, imports commands/. A unit test keeps it equal to
 * the files in commands/.
 */
export const COMMANDS = {
  check: Check,
  init: Init,
  prune: Prune,
  release: Release,
  releases: Releases,
  rollback: Rollback,
  unlock: Unlock,
}
