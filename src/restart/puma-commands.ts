import { posix } from 'node:path'
import { quote } from '../transport/quote.js'

/*
 * Pure builders of the commands that drive Puma on a host. Signals go straight to the master pid, read
 * from the pidfile and checked to be a live `puma` process: never `pumactl restart`, which starts Puma
 * inside itself when the pid is gone (docs/puma-restarts.md F22).
 */

/** Sends `signal` to the master named by the pidfile, only if that pid is a live Puma. */
export function signalMasterCommand(pidfile: string, signal: 'USR1' | 'USR2' | 'TERM'): string {
  return [
    `pid=$(cat ${quote(pidfile)} 2>/dev/null) || { echo "no pidfile at ${pidfile.replaceAll('"', '')}" >&2; exit 3; }`,
    `case "$(tr '\\0' ' ' < /proc/$pid/cmdline 2>/dev/null)" in puma*) ;; *) echo "pid $pid from the pidfile is not a running Puma" >&2; exit 3;; esac`,
    `kill -${signal} "$pid" && echo "$pid"`,
  ].join('\n')
}

/**
 * Starts Puma detached in the `current` symlink path with PWD set to it, so Puma's restart directory is
 * the symlink and later signals follow the flip (§3.1). Output goes to `log` so a boot failure can be
 * shown; the command returns at once.
 */
export function startCommand(currentPath: string, start: string, log: string): string {
  return [
    `mkdir -p ${quote(posix.dirname(log))}`,
    `cd ${quote(currentPath)}`,
    `export PWD=${quote(currentPath)}`,
    `printf '\\n== deployer: starting Puma at %s\\n' "$(date -u +%FT%TZ)" >> ${quote(log)}`,
    // The command reaches the detached shell in its environment, not its argv: `${VAR}` values in
    // server.start must not show in `ps` on the host. It is unset again before Puma inherits it.
    `DEPLOYER_START=${quote(start)} nohup setsid /bin/sh -c 'c=$DEPLOYER_START; unset DEPLOYER_START; eval "$c"' >> ${quote(log)} 2>&1 < /dev/null &`,
    'echo started',
  ].join('\n')
}

/** True (exit 0) while the pid is still alive: the poll target after a TERM. */
export function isAliveCommand(pid: number): string {
  return `kill -0 ${Math.trunc(pid)} 2>/dev/null`
}

/** The user's full restart (e.g. `sudo systemctl restart shop`), run in the `current` path. */
export function fullRestartCommand(currentPath: string, command: string): string {
  return `cd ${quote(currentPath)} && export PWD=${quote(currentPath)} && ( ${command}\n)`
}

/** The last lines of Puma's log (the start log, or `stdout_redirect`), for failure reports. */
export function tailLogCommand(logs: readonly string[], lines: number): string {
  return logs
    .map(
      (log) =>
        `if [ -r ${quote(log)} ]; then echo "== ${log.replaceAll('"', '')}"; tail -n ${Math.trunc(lines)} ${quote(log)}; fi`,
    )
    .join('\n')
}

/**
 * One hash over `server.env_files` as they are on the host (a missing file hashes as missing). Only the
 * hash leaves the host: the files hold secrets.
 */
export function envFilesHashCommand(files: readonly string[]): string {
  const lines = files.map(
    (file) =>
      `if [ -r ${quote(file)} ]; then sha256sum < ${quote(file)}; else echo ${quote(`missing ${file}`)}; fi`,
  )
  return `{ ${lines.join('; ')}; } | sha256sum | cut -c1-64`
}

/**
 * Fetches the health URL on the host (it is usually a loopback address there), prints the status code on
 * the first line and at most 4 KiB of body. Ruby's Net::HTTP, since Ruby is on every Puma host.
 */
export function healthCheckCommand(url: string, timeoutSeconds: number): string {
  const script = [
    'require "net/http"; require "uri"',
    'uri = URI(ENV.fetch("DEPLOYER_HEALTH_URL")); t = Float(ARGV[0])',
    'begin',
    '  res = Net::HTTP.start(uri.host, uri.port, use_ssl: uri.scheme == "https", open_timeout: t, read_timeout: t) { |h| h.request(Net::HTTP::Get.new(uri)) }',
    '  puts res.code; print res.body.to_s[0, 4096]',
    'rescue => e',
    '  puts "000"; print "#{e.class}: #{e.message}"',
    'end',
  ].join('\n')
  // The URL goes in the environment, not ruby's argv: a `${VAR}` in health.url must not show in `ps`.
  // No RubyGems: the standard library is enough, and a start costs a sixth of the CPU without it.
  return `DEPLOYER_HEALTH_URL=${quote(url)} ruby --disable-gems -e ${quote(script)} ${quote(timeoutSeconds)}`
}

/** Parses healthCheckCommand's output. */
export function parseHealth(output: string): { status: number; body: string } {
  const newline = output.indexOf('\n')
  const status = Number(newline === -1 ? output : output.slice(0, newline))
  return {
    status: Number.isFinite(status) ? status : 0,
    body: newline === -1 ? '' : output.slice(newline + 1),
  }
}
