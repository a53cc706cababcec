import type { WriteStatus } from '../init/plan.js'
import type { InitResult } from '../init/run.js'

const DONE: Record<WriteStatus, string> = { create: 'created', overwrite: 'overwrote', refuse: 'exists' }
const PLANNED: Record<WriteStatus, string> = {
  create: 'create',
  overwrite: 'overwrite',
  refuse: 'exists, refused without --force',
}

/** What `deployer init` wrote (or would write, or refused), then the next steps when files were written. */
export function renderInit(result: InitResult): string {
  const head = result.written
    ? `Wrote ${result.files.length} file(s) in ${result.dir}:`
    : result.dryRun
      ? `Would write ${result.files.length} file(s) in ${result.dir} (dry run: nothing was changed):`
      : `Wrote nothing in ${result.dir}:`
  const words = result.written ? DONE : PLANNED
  const width = Math.max(...result.files.map((file) => words[file.status].length))
  const lines = [head, ...result.files.map((file) => `  ${words[file.status].padEnd(width)}  ${file.path}`)]
  if (result.written || (result.dryRun && !result.error)) {
    lines.push(
      result.written ? 'Next steps:' : 'Then:',
      ...result.nextSteps.map((step, index) => `  ${index + 1}. ${step}`),
    )
  }
  return lines.join('\n')
}
