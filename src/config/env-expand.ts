/**
 * `${VAR}` expansion of deployer.yml's string values: the one place the environment reaches a value.
 */

/**
 * Expands `${VAR}` and `${VAR:-default}` (default when VAR is unset or empty) from `env`; `$${` is a
 * literal `${` so shell commands can keep their own `${...}`. `$VAR` without braces is left alone for the
 * same reason. Problems name variables only: their values may be secrets.
 */
export function expandEnv(
  text: string,
  env: NodeJS.ProcessEnv,
): { value: string; fromEnv: boolean; problems: string[] } {
  const problems: string[] = []
  let fromEnv = false
  const value = text.replace(
    /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\{/g,
    (match, name: string | undefined, fallback: string | undefined) => {
      if (match === '$${') return '${'
      if (name === undefined) {
        problems.push('has a ${ that is not ${NAME} or ${NAME:-default} (write $${ for a literal ${)')
        return match
      }
      fromEnv = true
      const set = env[name]
      if (fallback !== undefined) return set ? set : fallback
      if (set === undefined) {
        problems.push(`\${${name}} is not set: set it in the environment or write \${${name}:-default}`)
        return match
      }
      return set
    },
  )
  return { value, fromEnv, problems }
}
