/** `npm run bench`: every benchmark, each printing its figures next to a reference measured in the same run. */

import { benchRails, renderRails } from './rails.js'
import { benchAllRestartsUnderLoad, renderRestartsUnderLoad, verdicts } from './restarts-under-load.js'
import { benchStartup, renderStartup } from './startup.js'
import { benchTransport, renderTransport } from './transport.js'
import { benchUpload, renderUpload } from './upload.js'
import { benchZeroDowntime, PUMA_VARIANTS, renderZeroDowntime } from './zero-downtime.js'

const only = process.argv[2]
if (!only || only === 'startup') {
  console.log('## Start-up (deployer --help, deployer releases on a local host)\n')
  console.log(renderStartup(await benchStartup()))
  console.log('')
}
if (!only || only === 'upload') {
  console.log('## Fast releases (deploy time, real sshd on 127.0.0.1)\n')
  console.log(renderUpload(await benchUpload()))
  console.log('')
}
if (!only || only === 'transport') {
  console.log('## The two SSH clients (`ssh.client`), real sshd on 127.0.0.1\n')
  console.log(renderTransport(await benchTransport()))
  console.log('')
}
if (!only || only === 'zero-downtime') {
  console.log('## Zero downtime under load (wrk, 16 connections, real Puma 2 workers over real sshd)\n')
  const rows = []
  for (const variant of PUMA_VARIANTS) rows.push(...(await benchZeroDowntime(variant)))
  console.log(renderZeroDowntime(rows))
  console.log(
    '\nfailed = wrk socket errors (connect, read, write, timeout) + non-2xx answers; every figure above comes from this run.',
  )
}
if (!only || only === 'under-load') {
  console.log(
    '\n## Restarts on a busy machine (a CPU hog per core, HTTP load, 200-gem app, 2 workers, preload_app! false)\n',
  )
  const rows = await benchAllRestartsUnderLoad()
  console.log(renderRestartsUnderLoad(rows))
  console.log(
    '\nfailed = requests (one connection each, 4 clients) refused, reset, timed out (10 s) or not 200; restart s = signal to every worker booted (deployer: its own restart step, signal to verified, health check included); no answer s = the longest time without any answer (the outage clients saw). Deployer and the hand-sent signal take turns going first.',
  )
  for (const line of verdicts(rows)) console.log(`- ${line}`)
}
if (!only || only === 'rails') {
  console.log('\n## A Rails 6.1 app: restart durations and the outage of a full restart\n')
  console.log(renderRails(await benchRails()))
  console.log(
    "\nrestart s = deployer's restart step (signal to verified) or, by hand, signal to both workers booted; refused s = longest run of refused connect() calls during the full restart; no answer s = longest gap between two HTTP answers.",
  )
}
