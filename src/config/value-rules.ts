/**
 * The rules a value must follow whatever key it sits under: names, deploy_to, paths inside a release,
 * on the host and on this machine, URLs. The pure checks are exported for `deployer init`; the readers
 * apply them to a node and report.
 */
import path from 'node:path'
import { type Ctx, type Field, readText, readTexts, report, show, type Text } from './yaml-reader.js'

/** Exactly these directories; their subdirectories (`/var/www/shop`, `/home/deploy/shop`) are fine. */
const SYSTEM_DIRS = new Set([
  '/bin',
  '/boot',
  '/dev',
  '/etc',
  '/home',
  '/lib',
  '/lib64',
  '/proc',
  '/root',
  '/run',
  '/sbin',
  '/sys',
  '/usr',
  '/var',
  '/tmp',
])

/** What `app:` may hold: letters, digits, `.`, `_` and `-`, starting with a letter or digit. */
export const APP_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*$/
/** POSIX portable user names; no leading `-` so a name can never read as an option. */
export const USER_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/
/** Host names as deployer accepts them; no leading `-` either. */
export const HOSTNAME_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/
// Hex groups, embedded IPv4 and an optional zone (`fe80::1%eth0`); must contain a colon to be IPv6 at all.
export const IPV6_PATTERN = /^(?=[^%]*:)[0-9A-Fa-f:.]+(%[A-Za-z0-9_.-]+)?$/

/**
 * Why `deployTo` is unsafe to release into, or undefined when it is fine. Releases are created, flipped
 * and pruned (`rm -rf`) under it, so a typo must never aim that at `/`, a system directory or a path
 * that means something else once the remote shell or `..` gets at it.
 */
export function deployToProblem(deployTo: string): string | undefined {
  if (deployTo === '') return 'must not be empty'
  if (/[\x00-\x1f\x7f]/.test(deployTo)) return 'must not contain control characters such as newlines'
  if (!deployTo.startsWith('/')) return 'must be an absolute path'
  if (deployTo.split('/').includes('..')) return 'must not contain .. segments'
  if (path.posix.normalize(deployTo) === '/') return 'must not be / itself'
  if (path.posix.normalize(deployTo) !== deployTo || deployTo.endsWith('/')) {
    return 'must be normalised: no //, no /./ and no trailing /'
  }
  if (SYSTEM_DIRS.has(deployTo)) return 'is a system directory: use a directory of its own, such as /srv/APP'
  return undefined
}

/** A list of paths inside a release (`exclude`, `shared.files`). */
export function readRelativePaths(ctx: Ctx, field: Field | undefined): string[] | undefined {
  const texts = readTexts(ctx, field)
  if (!texts) return undefined
  const paths = texts.map((text) => relativePath(ctx, text))
  return paths.every((entry) => entry !== undefined) ? paths : undefined
}

/** A path inside a release: relative, never climbing out with `..`, stored normalised. */
export function relativePath(ctx: Ctx, text: Text): string | undefined {
  const problem = relativePathProblem(text.value)
  if (problem) {
    report(ctx, text, `${show(text)} ${problem}`)
    return undefined
  }
  return path.posix.normalize(text.value).replace(/\/+$/, '')
}

/** Why `value` is not a usable path inside a release, or undefined. */
export function relativePathProblem(value: string): string | undefined {
  if (/[\x00-\x1f\x7f]/.test(value)) return 'must not contain control characters such as newlines'
  if (value.startsWith('/')) return 'must be a relative path, not an absolute one'
  if (value.split('/').includes('..')) return 'must not contain .. segments'
  if (path.posix.normalize(value).replace(/\/+$/, '') === '.') return 'must name something inside the release'
  return undefined
}

/** A path on the host: absolute, or relative to deploy_to (`shared/tmp/pids/puma.pid`). */
export function hostPath(ctx: Ctx, text: Text): string | undefined {
  if (!text.value.startsWith('/')) return relativePath(ctx, text)
  if (/[\x00-\x1f\x7f]/.test(text.value)) {
    report(ctx, text, `${show(text)} must not contain control characters such as newlines`)
    return undefined
  }
  return text.value
}

/** A path on this machine: `~` and `~/` are the home directory; relative paths start at the config's directory. */
export function readLocalPath(ctx: Ctx, text: Text): string {
  const value = text.value
  if (value === '~') return ctx.homeDir
  if (value.startsWith('~/')) return path.join(ctx.homeDir, value.slice(2))
  if (value.startsWith('~'))
    report(ctx, text, `${show(text)}: only ~ and ~/ are expanded; write the full path`)
  return path.resolve(ctx.configDir, value)
}

/** `deploy_to`, refused with a suggestion when deployToProblem finds it unsafe. */
export function readDeployTo(ctx: Ctx, field: Field | undefined): string | undefined {
  const text = readText(ctx, field)
  if (!text) return undefined
  const problem = deployToProblem(text.value)
  if (!problem) return text.value
  const normalised = path.posix.normalize(text.value).replace(/(.)\/+$/, '$1')
  // Suggesting the fix would repeat an expanded value, so only values written in the file get one.
  const fix =
    !text.fromEnv && normalised !== text.value && !deployToProblem(normalised) ? `; write ${normalised}` : ''
  report(ctx, text, `${show(text)} ${problem}${fix}`)
  return undefined
}

/** An http:// or https:// URL with a host. */
export function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value)
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== ''
  } catch {
    return false
  }
}
