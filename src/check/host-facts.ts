import type { DeployConfig } from '../config/types.js'
import { quote } from '../transport/quote.js'

/*
 * What `deployer check` reads from a host besides its releases and its Puma: whether deploy_to can be
 * written, the free space of its filesystem, and the tools a release runs. One read-only round trip:
 * writability is asked with `test -w` (access(2), so ACLs and read-only mounts count), never by writing.
 */

/** A program a release runs on the host. */
export interface RequiredTool {
  name: string
  /** What a release uses it for, as a sentence fragment: `unpacks every upload`. */
  use: string
  /** The config key that names it, when it is the user's choice. */
  from?: 'install.command' | 'server.start'
  /** A path relative to the release (`bin/setup`): it arrives with the upload, so the host cannot have it yet. */
  inRelease?: boolean
}

/** The remote side of one host, as hostFactsCommand prints it. */
export interface RemoteFacts {
  /** The SSH user (`id -un`). */
  user: string | null
  /** deploy_to is a symlink to nothing: `mkdir -p` would fail on it. */
  danglingLink: boolean
  /** deploy_to when it exists, else its nearest existing parent (what a release's `mkdir -p` starts from). */
  target: string
  targetIsDir: boolean
  /** The SSH user may create entries in `target` (write and search permission, a writable mount). */
  targetWritable: boolean
  /** deployer's own directories inside deploy_to that exist, and whether the SSH user can write them. */
  subdirs: { name: string; writable: boolean }[]
  /** The filesystem of `target`; null when `stat -f` could not tell. */
  fs: FsFacts | null
  /** Each asked-for tool and where `command -v` found it (null: not found). */
  tools: Record<string, string | null>
  /** First lines of `tar --version` and `cp --version` (null when they print nothing). */
  versions: { tar: string | null; cp: string | null }
}

/** The filesystem deploy_to lives on (or would be created on). */
export interface FsFacts {
  /** Bytes an unprivileged user may still write. */
  availableBytes: number
  freeInodes: number
  /** 0 on filesystems without a fixed inode table (btrfs, some network filesystems). */
  totalInodes: number
  /** The filesystem type as stat names it (`ext2/ext3`, `xfs`, `tmpfs`). */
  type: string
}

/** deployer's directories in deploy_to that every release writes into. */
export const DEPLOY_SUBDIRS = ['releases', 'shared', '.deployer'] as const

const BASE_TOOLS: readonly RequiredTool[] = [
  { name: 'sh', use: 'runs every command deployer sends' },
  { name: 'tar', use: 'unpacks every upload (GNU tar)' },
  { name: 'cp', use: 'hard-links unchanged files from the previous release (GNU cp)' },
  { name: 'xargs', use: 'feeds the unchanged files to cp' },
  { name: 'find', use: 'cleans up partial releases left by killed runs' },
]

/** The programs a release with this config runs on the host, in the order they are reported. */
export function requiredTools(config: Pick<DeployConfig, 'install' | 'server'>): RequiredTool[] {
  const tools = [...BASE_TOOLS]
  const add = (tool: RequiredTool) => {
    if (!tools.some((known) => known.name === tool.name)) tools.push(tool)
  }
  // As written: a program named by `${VAR}` is left to the shell, and its expanded name is never shown.
  const install =
    config.install && firstCommandWord(config.install.commandAsWritten ?? config.install.command)
  if (install) add({ ...commandTool(install, 'install.command'), use: 'runs the install' })
  if (config.server) {
    add({ name: 'ruby', use: 'reads Puma’s state and config, and runs the health check' })
    const start = config.server.start && firstCommandWord(config.server.start)
    if (start) add({ ...commandTool(start, 'server.start'), use: 'starts Puma when it is not running' })
  }
  return tools
}

function commandTool(word: string, from: RequiredTool['from']): Omit<RequiredTool, 'use'> {
  const inRelease = word.includes('/') && !word.startsWith('/')
  return inRelease ? { name: word, from, inRelease } : { name: word, from }
}

/** Words that run the next word: `exec puma`, `env RAILS_ENV=production bundle install`. */
const WRAPPERS = new Set(['exec', 'env', 'command', 'nohup'])

/**
 * The program a shell command line runs first, past variable assignments and wrappers such as `exec`
 * and `env` (`RAILS_ENV=production bundle install` → `bundle`). Null when it cannot be told without
 * running a shell: a variable, a substitution, or nothing at all.
 */
export function firstCommandWord(command: string): string | null {
  let afterWrapper = false
  for (const raw of command.trim().split(/\s+/)) {
    const word = raw
      .replace(/^[({]+/, '')
      .replace(/[;)}&|]+$/, '')
      .replace(/^(["'])(.*)\1$/, '$2')
    if (word === '') continue
    if (/^[A-Za-z_][A-Za-z0-9_]*=/.test(word)) continue
    if (afterWrapper && word.startsWith('-')) continue
    if (WRAPPERS.has(word)) {
      afterWrapper = true
      continue
    }
    return /[$`"'\\*?]/.test(word) ? null : word
  }
  return null
}

/** One read-only round trip: deploy_to's writability, its filesystem's free space, and `tools`. */
export function hostFactsCommand(deployTo: string, tools: readonly string[]): string {
  return [
    `d=${quote(deployTo)}`,
    `printf 'user\\t%s\\n' "$(id -un 2>/dev/null)"`,
    'if [ -L "$d" ] && [ ! -e "$d" ]; then echo dangling; fi',
    // What a release's `mkdir -p` would start from: deploy_to itself, or its nearest existing parent.
    'p=$d',
    'while [ ! -e "$p" ]; do p=$(dirname -- "$p"); done',
    // deploy_to itself is named by a word, not printed back: a newline in it would split the line.
    `if [ "$p" = "$d" ]; then echo target-self; else printf 'target\\t%s\\n' "$p"; fi`,
    'if [ -d "$p" ]; then echo target-dir; fi',
    'if [ -w "$p" ] && [ -x "$p" ]; then echo target-writable; fi',
    `for s in ${DEPLOY_SUBDIRS.join(' ')}; do`,
    '  if [ -e "$d/$s" ] || [ -L "$d/$s" ]; then',
    `    if [ -d "$d/$s" ] && [ -w "$d/$s" ] && [ -x "$d/$s" ]; then printf 'sub\\t%s\\tyes\\n' "$s"; else printf 'sub\\t%s\\tno\\n' "$s"; fi`,
    '  fi',
    'done',
    // stat -f, not df: fixed fields, no wrapped lines, no mount point with spaces to split.
    `printf 'fs\\t%s\\n' "$(stat -f -c '%a %S %d %c %T' -- "$p" 2>/dev/null)"`,
    `for t in ${tools.map(quote).join(' ')}; do printf 'tool\\t%s\\t%s\\n' "$t" "$(command -v "$t" 2>/dev/null | head -n 1)"; done`,
    `printf 'version\\ttar\\t%s\\n' "$(tar --version 2>/dev/null | head -n 1)"`,
    `printf 'version\\tcp\\t%s\\n' "$(cp --version 2>/dev/null | head -n 1)"`,
  ].join('\n')
}

/** Parses hostFactsCommand's output for `deployTo`. */
export function parseHostFacts(output: string, deployTo: string): RemoteFacts {
  const facts: RemoteFacts = {
    user: null,
    danglingLink: false,
    target: '',
    targetIsDir: false,
    targetWritable: false,
    subdirs: [],
    fs: null,
    tools: {},
    versions: { tar: null, cp: null },
  }
  for (const line of output.split('\n')) {
    const [tag = '', ...fields] = line.split('\t')
    const rest = fields.join('\t')
    switch (tag) {
      case 'user':
        facts.user = rest || null
        break
      case 'dangling':
        facts.danglingLink = true
        break
      case 'target-self':
        facts.target = deployTo
        break
      case 'target':
        facts.target = rest
        break
      case 'target-dir':
        facts.targetIsDir = true
        break
      case 'target-writable':
        facts.targetWritable = true
        break
      case 'sub':
        facts.subdirs.push({ name: fields[0] ?? '', writable: fields[1] === 'yes' })
        break
      case 'fs':
        facts.fs = parseFs(rest)
        break
      case 'tool':
        facts.tools[fields[0] ?? ''] = fields.slice(1).join('\t') || null
        break
      case 'version':
        if (fields[0] === 'tar' || fields[0] === 'cp')
          facts.versions[fields[0]] = fields.slice(1).join('\t') || null
        break
    }
  }
  return facts
}

/** `stat -f -c '%a %S %d %c %T'`: available blocks, block size, free inodes, total inodes, type. */
function parseFs(text: string): FsFacts | null {
  const match = /^(\d+) (\d+) (\d+) (\d+) (.*)$/.exec(text.trim())
  if (!match) return null
  const [, available, blockSize, freeInodes, totalInodes, type] = match
  return {
    availableBytes: Number(available) * Number(blockSize),
    freeInodes: Number(freeInodes),
    totalInodes: Number(totalInodes),
    type: type ?? '',
  }
}
