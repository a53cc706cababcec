/**
 * The text formats of GitHub Actions' runner files and workflow commands, as documented in "Workflow
 * commands for GitHub Actions". No I/O: main.ts writes what these return.
 */

/**
 * The content to append to `$GITHUB_OUTPUT` for `outputs`. Every value uses the multi-line form
 * (`name<<DELIMITER`, the value, `DELIMITER`), so newlines in a value cannot start a new output. The
 * delimiter must be random per run: a value that contained it could still forge outputs, so such a
 * value is refused.
 */
export function formatOutputs(outputs: Readonly<Record<string, string>>, delimiter: string): string {
  if (!/^[A-Za-z0-9_-]{16,}$/.test(delimiter))
    throw new Error('The output delimiter must be 16+ safe characters.')
  return Object.entries(outputs)
    .map(([name, value]) => {
      if (!/^[A-Za-z_][A-Za-z0-9_-]*$/.test(name))
        throw new Error(`Invalid output name ${JSON.stringify(name)}.`)
      if (value.includes(delimiter)) throw new Error(`The value of output ${name} contains the delimiter.`)
      return `${name}<<${delimiter}\n${value}\n${delimiter}\n`
    })
    .join('')
}

/**
 * A workflow command line such as `::error title=deployer::message`. `%`, CR and LF in the message (and
 * also `:` and `,` in property values) are escaped as the runner expects, so a multi-line message stays
 * one annotation and cannot inject a command of its own.
 */
export function workflowCommand(
  command: 'error' | 'warning' | 'notice',
  message: string,
  properties: Readonly<Record<string, string>> = {},
): string {
  const escapeData = (text: string) => text.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A')
  const escapeProperty = (text: string) => escapeData(text).replace(/:/g, '%3A').replace(/,/g, '%2C')
  const props = Object.entries(properties)
    .map(([key, value]) => `${key}=${escapeProperty(value)}`)
    .join(',')
  return `::${command}${props ? ` ${props}` : ''}::${escapeData(message)}`
}
