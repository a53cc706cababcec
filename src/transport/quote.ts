/**
 * Quotes a value for a POSIX shell: the one way any value reaches a remote command line.
 * Single quotes keep everything literal (`$()`, backticks, `;`, newlines); an embedded single quote is
 * closed, escaped and reopened. Plain words are left bare so that commands stay readable in logs.
 */
export function quote(value: string | number): string {
  const text = String(value)
  if (text !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(text)) return text
  return `'${text.replaceAll("'", `'\\''`)}'`
}

/** Quotes each value and joins them with spaces: `quoteAll(['rm', '-rf', '--', path])`. */
export function quoteAll(values: ReadonlyArray<string | number>): string {
  return values.map(quote).join(' ')
}
