import type { DeployConfig } from '../config/types.js'
import type { Finding } from './findings.js'
import type { RemoteFacts, RequiredTool } from './host-facts.js'

/*
 * `check`'s findings about the programs on the host's PATH (host-facts.ts lists which a config needs):
 * part of assessHost, pure, tested through it.
 */

/** The parts of deployer.yml the tool checks read. */
type ToolConfig = Pick<DeployConfig, 'install' | 'health'>

/** The programs a release runs on the host: found, missing (how badly) or not the GNU ones it needs. */
export function toolFindings(
  tools: readonly RequiredTool[],
  remote: RemoteFacts,
  user: string,
  config: ToolConfig,
  pumaRunning: boolean,
): Finding[] {
  const findings: Finding[] = []
  const found: string[] = []
  for (const tool of tools) {
    if (tool.inRelease) {
      findings.push({
        check: 'tool',
        severity: 'info',
        message: `${tool.from} runs ${tool.name} from the release: it arrives with the upload, so it is not checked here.`,
      })
      continue
    }
    const path = remote.tools[tool.name]
    if (!path) {
      findings.push(missingTool(tool, user, config, pumaRunning))
      continue
    }
    const gnu = gnuFinding(tool.name, path, remote.versions)
    if (gnu) findings.push(gnu)
    else
      found.push(tool.name === 'tar' || tool.name === 'cp' ? describeVersion(tool.name, remote) : tool.name)
  }
  const unknownInstall = config.install && !tools.some((tool) => tool.from === 'install.command')
  if (unknownInstall) {
    findings.push({
      check: 'tool',
      severity: 'info',
      message: `install.command (\`${config.install?.commandAsWritten ?? config.install?.command}\`) starts with something only the shell can resolve; its program is not checked.`,
    })
  }
  if (found.length > 0)
    findings.unshift({ check: 'tool', severity: 'ok', message: `Found ${found.join(', ')}.` })
  return findings
}

function missingTool(tool: RequiredTool, user: string, config: ToolConfig, pumaRunning: boolean): Finding {
  const source = tool.from
    ? `${tool.from} needs ${tool.name}`
    : `A release needs ${tool.name}, which ${tool.use}`
  const message = `${source}, but the non-interactive SSH shell of ${user} does not find it on its PATH.`
  const hint = `Install it on the host, or make it reachable for non-interactive SSH commands (PATH set before ~/.bashrc’s interactive guard${tool.from ? `, or a full path in ${tool.from}` : ''}).`
  // The probe falls back to the running master's own Ruby; the health check and a later start cannot.
  if (tool.name === 'ruby' && pumaRunning && !config.health) {
    return {
      check: 'tool',
      severity: 'warning',
      message: `${message} deployer reads Puma through the running master’s own Ruby, which it cannot once Puma stops.`,
      hint,
    }
  }
  if (tool.from === 'server.start' && pumaRunning) {
    return {
      check: 'tool',
      severity: 'warning',
      message: `${message} Puma runs now, but a release could not start it after it stops.`,
      hint,
    }
  }
  return { check: 'tool', severity: 'blocking', message, hint }
}

function gnuFinding(name: string, path: string, versions: RemoteFacts['versions']): Finding | undefined {
  if (name === 'tar' && !versions.tar?.includes('GNU tar')) {
    return {
      check: 'tool',
      severity: 'blocking',
      message: `${path} is not GNU tar (${versions.tar ? `it says "${versions.tar}"` : '`tar --version` prints nothing'}); deployer unpacks uploads with GNU tar's options.`,
      hint: 'Install GNU tar on the host (the `tar` package) and put it first on the PATH.',
    }
  }
  if (name === 'cp' && !versions.cp?.includes('GNU coreutils')) {
    return {
      check: 'tool',
      severity: 'warning',
      message: `${path} is not GNU cp (${versions.cp ? `it says "${versions.cp}"` : '`cp --version` prints nothing'}); repeat releases hard-link unchanged files with \`cp -l --parents -t\`, which other cp implementations may lack.`,
      hint: 'Install GNU coreutils on the host.',
    }
  }
  return undefined
}

function describeVersion(name: 'tar' | 'cp', remote: RemoteFacts): string {
  const version = /(\d+(?:\.\d+)+)\s*$/.exec(remote.versions[name] ?? '')?.[1]
  return version ? `${name} (GNU ${version})` : name
}
