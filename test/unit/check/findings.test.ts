import { expect } from 'chai'
import { checkExitCode, type HostCheck, type Severity, worstSeverity } from '../../../src/check/findings.js'
import { ExitCode } from '../../../src/errors.js'

function host(status: Severity, reachable = true, exitCode?: HostCheck['exitCode']): HostCheck {
  return { host: 'h', deployTo: '/srv', status, reachable, exitCode, findings: [] }
}

describe('worstSeverity', () => {
  const table: [Severity[], Severity][] = [
    [[], 'ok'],
    [['ok', 'info'], 'info'],
    [['warning', 'info', 'ok'], 'warning'],
    [['ok', 'blocking', 'warning'], 'blocking'],
  ]
  for (const [severities, worst] of table) {
    it(`is ${worst} for [${severities.join(', ')}]`, () => {
      expect(worstSeverity(severities.map((severity) => ({ severity })))).to.equal(worst)
    })
  }
})

describe('checkExitCode', () => {
  const table: { name: string; hosts: HostCheck[]; code: number }[] = [
    { name: 'every host ready', hosts: [host('ok'), host('warning'), host('info')], code: ExitCode.ok },
    { name: 'a blocking finding', hosts: [host('ok'), host('blocking')], code: ExitCode.failure },
    {
      name: 'an unreachable host over a blocking one',
      hosts: [host('blocking'), host('blocking', false, ExitCode.connection)],
      code: ExitCode.connection,
    },
    {
      name: 'a refused host key over an unreachable host',
      hosts: [host('blocking', false, ExitCode.connection), host('blocking', false, ExitCode.hostKey)],
      code: ExitCode.hostKey,
    },
  ]
  for (const row of table) {
    it(`exits ${row.code} with ${row.name}`, () => {
      expect(checkExitCode(row.hosts)).to.equal(row.code)
    })
  }
})
