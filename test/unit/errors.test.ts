import { expect } from 'chai'
import { diskFullError, ExitCode, RemoteCommandError } from '../../src/errors.js'

describe('diskFullError', () => {
  const cases: Array<[string, string, string | null]> = [
    [
      'tar on a full disk',
      'tar: public/asset.bin: Cannot write: No space left on device\ntar: Exiting with failure status due to previous errors',
      'No space left on device',
    ],
    ['a shell redirection over quota', 'sh: 1: cannot create x: Disk quota exceeded', 'Disk quota exceeded'],
    ['another failure', 'tar: invalid tar magic', null],
    ['no output', '', null],
  ]
  for (const [name, output, expected] of cases) {
    it(`finds ${expected ?? 'nothing'} in ${name}`, () => {
      expect(diskFullError(output)).to.equal(expected)
    })
  }
})

describe('RemoteCommandError', () => {
  const result = { code: 2, stdout: '', stderr: 'tar: x: Cannot write: No space left on device' }

  it('names the host, the step, the exit code and the output', () => {
    const error = new RemoteCommandError('web1', 'uploading release 2', result)
    expect(error.message).to.equal(
      'Host web1: uploading release 2 failed (exit 2):\n    tar: x: Cannot write: No space left on device',
    )
    expect(error.exitCode).to.equal(ExitCode.failure)
  })

  it('shows the first lines as well as the last of long output (rake prints the exception first)', () => {
    const rake = [
      'rake aborted!',
      'ActiveRecord::NoDatabaseError: database "shop" does not exist',
      ...Array.from({ length: 60 }, (_, index) => `/gems/activerecord/lib/x.rb:${index}:in 'block'`),
      'Tasks: TOP => db:migrate',
    ].join('\n')
    const error = new RemoteCommandError('web1', 'the install', { code: 1, stdout: '', stderr: rake })
    expect(error.message).to.contain('NoDatabaseError: database "shop" does not exist')
    expect(error.message).to.contain('Tasks: TOP => db:migrate')
    expect(error.message).to.contain('(33 lines left out)')
    expect(error.message).to.not.contain('x.rb:20:')
  })

  it('says why when the cause is known', () => {
    const error = new RemoteCommandError('web1', 'uploading release 2', result, {
      because: 'the disk holding /srv/shop is full (No space left on device)',
    })
    expect(error.message.split('\n')[0]).to.equal(
      'Host web1: uploading release 2 failed (exit 2) because the disk holding /srv/shop is full (No space left on device):',
    )
  })
})
