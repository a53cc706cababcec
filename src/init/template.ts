/**
 * A placeholder is `{{name}}` with a lowercase name and no spaces, so GitHub's own `${{ expression }}`
 * (always written with spaces in our templates) passes through untouched.
 */
const PLACEHOLDER = /\{\{([a-z][a-z0-9_]*)\}\}/g

/** The placeholder names a template uses, each once, in order of first use. */
export function placeholdersIn(template: string): string[] {
  return [...new Set([...template.matchAll(PLACEHOLDER)].map((match) => match[1] as string))]
}

/**
 * Fills every `{{name}}` in `template` from `values`, as is: values must already be safe where the template
 * puts them (see settings.ts). A placeholder without a value is a template and its values out of step, a
 * bug in deployer rather than something the user can fix, so it throws a plain Error naming them all.
 */
export function renderTemplate(template: string, values: Readonly<Record<string, string>>): string {
  const missing = placeholdersIn(template).filter((name) => !Object.hasOwn(values, name))
  if (missing.length > 0) {
    throw new Error(
      `The template has placeholders without a value: ${missing.map((n) => `{{${n}}}`).join(', ')}.`,
    )
  }
  return template.replace(PLACEHOLDER, (_match, name: string) => values[name] as string)
}
