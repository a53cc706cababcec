/**
 * The two SSH clients behind `ssh.client`, measured on their own over the real sshd on 127.0.0.1: a
 * command's round trip on an open connection, and the upload bench's tree streamed as a tar archive
 * through exec's stdin (how releases upload), next to `tar c | ssh tar x` by hand in the same run. Each
 * upload is checked on the host (file count and bytes), so a fast figure cannot hide lost data.
 */
import { execFile, spawn } from 'node:child_process'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { HostConfig } from '../src/config/types.js'
import { OpenSshTransport } from '../src/transport/openssh.js'
import { SshTransport } from '../src/transport/ssh.js'
import type { Transport } from '../src/transport/transport.js'
import { DEPLOY_USER, makeWorkspace } from '../test/support/fixture.js'
import { startSshd } from '../test/support/sshd.js'
import { median, timed, writeSyntheticApp } from './upload.js'

const run = promisify(execFile)
const REPEAT = Number(process.env.BENCH_REPEAT ?? 5)
const ROUND_TRIPS = 30

export interface TransportFigures {
  files: number
  bytes: number
  clients: { client: string; roundTripMs: number; uploadSeconds: number }[]
  referenceSeconds: number
}

const CLIENTS = [
  { client: 'builtin', make: (host: HostConfig): Transport => new SshTransport(host) },
  {
    client: 'openssh',
    make: (host: HostConfig): Transport =>
      new OpenSshTransport({ ...host, ssh: { ...host.ssh, client: 'openssh' } }),
  },
] as const

/** What a directory on the host holds: regular files and their bytes, as `COUNT BYTES`. */
const treeSize = (dir: string) =>
  `find ${dir} -type f -printf '%s\\n' | awk '{ s += $1 } END { print NR, s }'`

export async function benchTransport(): Promise<TransportFigures> {
  const sshd = await startSshd({ user: DEPLOY_USER, createUser: true })
  const ws = await makeWorkspace(DEPLOY_USER)
  try {
    await writeSyntheticApp(ws.source)
    const local = (await run('bash', ['-c', treeSize(ws.source)])).stdout.trim()
    const [files, bytes] = local.split(' ').map(Number) as [number, number]
    const figures: TransportFigures = { files, bytes, clients: [], referenceSeconds: 0 }

    for (const { client, make } of CLIENTS) {
      const transport = make(sshd.hostConfig({ deployTo: ws.deployTo }))
      try {
        await transport.connect?.()
        const trips: number[] = []
        for (let index = 0; index < ROUND_TRIPS; index++)
          trips.push(await timed(() => transport.exec('true')))
        const uploads: number[] = []
        for (let round = 0; round < REPEAT; round++) {
          const dir = join(ws.deployTo, `${client}${round}`)
          uploads.push(
            await timed(async () => {
              const tar = spawn('tar', ['c', '-C', ws.source, '.'], { stdio: ['ignore', 'pipe', 'inherit'] })
              const result = await transport.exec(`mkdir -p ${dir} && tar x -C ${dir}`, { stdin: tar.stdout })
              if (result.code !== 0) throw new Error(`${client} upload failed: ${result.stderr}`)
            }),
          )
          const remote = (await transport.exec(treeSize(dir))).stdout.trim()
          if (remote !== local)
            throw new Error(`${client} upload lost data: ${remote} on the host, ${local} here`)
        }
        figures.clients.push({ client, roundTripMs: median(trips) * 1000, uploadSeconds: median(uploads) })
      } finally {
        await transport.close()
      }
    }

    const ssh = `ssh -p ${sshd.port} -i ${sshd.clientKeyPath} -o UserKnownHostsFile=${sshd.knownHostsPath} -o StrictHostKeyChecking=yes -o BatchMode=yes ${sshd.user}@127.0.0.1`
    const reference: number[] = []
    for (let round = 0; round < REPEAT; round++) {
      const dir = join(ws.deployTo, `reference${round}`)
      reference.push(
        await timed(() =>
          run('bash', ['-c', `tar c -C ${ws.source} . | ${ssh} 'mkdir -p ${dir} && tar x -C ${dir}'`]),
        ),
      )
    }
    figures.referenceSeconds = median(reference)
    return figures
  } finally {
    await rm(ws.dir, { recursive: true, force: true })
    await sshd.stop()
  }
}

export function renderTransport(figures: TransportFigures): string {
  const mb = (figures.bytes / 1024 / 1024).toFixed(1)
  return [
    `${figures.files} files, ${mb} MB as an uncompressed tar stream through exec's stdin; medians of ${REPEAT} uploads and ${ROUND_TRIPS} round trips; every upload checked on the host`,
    '',
    '| ssh.client | `exec("true")` on an open connection | upload | `tar c \\| ssh tar x` (same run) | ratio |',
    '| --- | ---: | ---: | ---: | ---: |',
    ...figures.clients.map(
      (row) =>
        `| ${row.client} | ${row.roundTripMs.toFixed(1)} ms | ${row.uploadSeconds.toFixed(2)} s | ${figures.referenceSeconds.toFixed(2)} s | ${(row.uploadSeconds / figures.referenceSeconds).toFixed(2)}× |`,
    ),
  ].join('\n')
}
