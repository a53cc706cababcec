import { expect } from 'chai'
import type { ProgressEvent } from '../../../src/progress.js'
import {
  applyProgress,
  newHostProgress,
  progressSteps,
  progressTitle,
} from '../../../src/ui/host-progress.js'

const fold = (events: ProgressEvent[]) => events.reduce(applyProgress, newHostProgress('web1'))

describe('host progress', () => {
  it('titles a host by the step it runs, with the bytes sent so far', () => {
    const progress = fold([
      { kind: 'phase', host: 'web1', phase: 'prepare', status: 'start' },
      { kind: 'phase', host: 'web1', phase: 'prepare', status: 'done', ms: 12 },
      { kind: 'phase', host: 'web1', phase: 'upload', status: 'start' },
      { kind: 'progress', host: 'web1', phase: 'upload', detail: '3.0 MiB of ~57.0 MiB' },
    ])
    expect(progressTitle(progress, false)).to.equal('web1  upload 3.0 MiB of ~57.0 MiB')
    expect(progressSteps(progress)).to.equal('prepare 12ms')
  })

  it('lists finished steps with their timings and keeps details and warnings as notes', () => {
    const progress = fold([
      { kind: 'phase', host: 'web1', phase: 'upload', status: 'start' },
      { kind: 'phase', host: 'web1', phase: 'upload', status: 'done', ms: 1200, detail: '2.0 KiB sent' },
      { kind: 'warn', host: 'web1', message: 'preload is on' },
      { kind: 'phase', host: 'web1', phase: 'publish', status: 'start' },
    ])
    expect(progressTitle(progress, false)).to.equal('web1  publish…')
    expect(progressSteps(progress)).to.equal('upload 1.2s')
    expect(progress.notes).to.deep.equal(['upload: 2.0 KiB sent', 'warning: preload is on'])
  })

  it('marks a failed step and the host as failed when it ends', () => {
    const progress = fold([
      { kind: 'phase', host: 'web1', phase: 'install', status: 'start' },
      { kind: 'phase', host: 'web1', phase: 'install', status: 'failed', ms: 300 },
    ])
    expect(progress.failed).to.equal(true)
    expect(progressSteps(progress)).to.equal('install 300ms FAILED')
    expect(progressTitle(progress, true)).to.equal('web1  failed in 300ms')
  })

  it('says done with the total time when every step succeeded', () => {
    const progress = fold([
      { kind: 'phase', host: 'web1', phase: 'inspect', status: 'done', ms: 20 },
      { kind: 'phase', host: 'web1', phase: 'publish', status: 'done', ms: 30 },
    ])
    expect(progressTitle(progress, true)).to.equal('web1  done in 50ms')
  })
})
