/**
 * The YAML reader kit: each reader checks one node of deployer.yml, reports what is wrong with it (with
 * its key path and offset, turned into line and column at the end), and returns undefined when the value
 * is unusable, so one pass collects every problem. Nothing here knows deployer.yml's keys.
 */
import {
  type Document,
  isAlias,
  isMap,
  isNode,
  isScalar,
  isSeq,
  type LineCounter,
  type YAMLError,
} from 'yaml'
import { expandEnv } from './env-expand.js'
import { didYouMean } from './suggest.js'

export interface Ctx {
  readonly doc: Document
  readonly env: NodeJS.ProcessEnv
  readonly homeDir: string
  readonly configDir: string
  readonly problems: Problem[]
}

/** A problem before it is given a line: `offset` is a character offset into the file. */
export interface Problem {
  offset: number
  path: string
  message: string
}

/** A node of the file with its key path (`hosts[2].deploy_to`) and where problems about it point. */
export interface Entry {
  node: unknown
  path: string
  offset: number
}

/** A value under a key; `keyOffset` is where the key itself is, for problems about the key. */
export interface Field extends Entry {
  keyOffset: number
}

/** A string value after `${VAR}` expansion; `raw` is what the file says, the only form safe to show. */
export interface Text extends Entry {
  value: string
  raw: string
  fromEnv: boolean
}

/**
 * The fields of a mapping, each checked against `allowed`. `sections` names where keys found at the
 * wrong level belong (`known_hosts` at the top level belongs under `ssh:`), for the unknown-key message.
 */
export function readMap(
  ctx: Ctx,
  entry: Entry,
  allowed: readonly string[],
  sections: Record<string, readonly string[]> = {},
): Map<string, Field> | undefined {
  const node = deref(ctx, entry.node)
  if (!isMap(node)) {
    const what = entry.path === '' ? 'the top level must be a mapping' : 'must be a mapping'
    report(ctx, entry, `${what} with keys such as ${allowed.slice(0, 3).join(', ')}`)
    return undefined
  }
  const fields = new Map<string, Field>()
  for (const pair of node.items) {
    const keyOffset = offsetOf(pair.key, entry.offset)
    const key = isScalar(pair.key) ? pair.key.value : undefined
    if (typeof key !== 'string') {
      report(ctx, { ...entry, offset: keyOffset }, 'has a key that is not a plain word')
      continue
    }
    const keyPath = joinPath(entry.path, key)
    if (!allowed.includes(key)) {
      report(ctx, { path: keyPath, offset: keyOffset }, unknownKeyMessage(key, allowed, entry.path, sections))
      continue
    }
    fields.set(key, { node: pair.value, path: keyPath, offset: offsetOf(pair.value, keyOffset), keyOffset })
  }
  return fields
}

function unknownKeyMessage(
  key: string,
  allowed: readonly string[],
  parentPath: string,
  sections: Record<string, readonly string[]>,
): string {
  const suggestion = didYouMean(key, allowed)
  if (suggestion) return `unknown key; did you mean ${suggestion}?`
  if (parentPath === '') {
    const section = Object.keys(sections).find((name) => sections[name]?.includes(key))
    if (section) return `unknown key at the top level; did you mean ${section}.${key} (under ${section}:)?`
  }
  return `unknown key; expected one of ${allowed.join(', ')}`
}

/** A key's field when it has a value; `key:` with nothing after it counts as absent. */
export function optional(fields: Map<string, Field> | undefined, key: string): Field | undefined {
  const field = fields?.get(key)
  return field && !isNull(field.node) ? field : undefined
}

/** A key's field; a missing key or one without a value is reported against its parent or key. */
export function required(
  ctx: Ctx,
  fields: Map<string, Field> | undefined,
  key: string,
  parent: Entry,
): Field | undefined {
  // No fields means the parent was not a mapping at all, which is already reported.
  if (!fields) return undefined
  const field = fields.get(key)
  if (field && !isNull(field.node)) return field
  if (field) report(ctx, { ...field, offset: field.keyOffset }, 'needs a value')
  else report(ctx, { ...parent, path: joinPath(parent.path, key) }, 'is required')
  return undefined
}

/** A string (or number as written), `${VAR}`-expanded; empty strings are problems. */
export function readText(ctx: Ctx, entry: Entry | undefined): Text | undefined {
  if (!entry) return undefined
  const node = deref(ctx, entry.node)
  let raw: string
  if (isScalar(node) && typeof node.value === 'string') raw = node.value
  // `app: 2048` or `expect: 200`: keep the digits exactly as written (`0123` would otherwise become 123).
  else if (isScalar(node) && typeof node.value === 'number' && node.source) raw = node.source
  else {
    report(ctx, entry, `must be a string, not ${describe(node)}`)
    return undefined
  }
  const expansion = expandEnv(raw, ctx.env)
  for (const problem of expansion.problems) report(ctx, entry, problem)
  if (expansion.problems.length > 0) return undefined
  if (expansion.value === '') {
    report(ctx, entry, expansion.fromEnv ? 'is empty once ${...} is expanded' : 'must not be empty')
    return undefined
  }
  return { ...entry, value: expansion.value, raw, fromEnv: expansion.fromEnv }
}

/** A list of strings; undefined when any item is unusable. */
export function readTexts(ctx: Ctx, field: Field | undefined): Text[] | undefined {
  if (!field) return undefined
  const node = deref(ctx, field.node)
  if (!isSeq(node)) {
    report(ctx, field, `must be a list, not ${describe(node)} (write [a, b] or one "- item" per line)`)
    return undefined
  }
  const texts = node.items.map((item, index) =>
    readText(ctx, { node: item, path: `${field.path}[${index}]`, offset: offsetOf(item, field.offset) }),
  )
  return texts.every((text) => text !== undefined) ? texts : undefined
}

/** A whole number in [min, max]; `${VAR}` may supply it. */
export function readInteger(
  ctx: Ctx,
  field: Field | undefined,
  min: number,
  max?: number,
): number | undefined {
  if (!field) return undefined
  const node = deref(ctx, field.node)
  let value: number
  let shown: string
  if (isScalar(node) && typeof node.value === 'number') {
    value = node.value
    shown = String(node.value)
  } else if (isScalar(node) && typeof node.value === 'string' && node.value.includes('${')) {
    // `concurrency: ${DEPLOY_CONCURRENCY}`: a string in YAML, a number once expanded.
    const text = readText(ctx, field)
    if (!text) return undefined
    value = /^\d+$/.test(text.value) ? Number(text.value) : Number.NaN
    shown = JSON.stringify(text.raw)
  } else {
    report(ctx, field, `must be a whole number, not ${describe(node)}`)
    return undefined
  }
  if (!Number.isInteger(value)) {
    report(ctx, field, `must be a whole number, not ${shown}`)
    return undefined
  }
  if (value < min || (max !== undefined && value > max)) {
    const range = max === undefined ? `at least ${min}` : `between ${min} and ${max}`
    report(ctx, field, `must be ${range}, not ${shown}`)
    return undefined
  }
  return value
}

/** Seconds, from `60`, `"60s"`, `"2m"`, `"1.5h"`. */
export function readDuration(ctx: Ctx, field: Field | undefined): number | undefined {
  if (!field) return undefined
  const node = deref(ctx, field.node)
  const expected = 'must be a duration above 0, such as 60s, 2m or a number of seconds'
  let seconds: number
  let shown: string
  if (isScalar(node) && typeof node.value === 'number') {
    seconds = node.value
    shown = String(node.value)
  } else if (isScalar(node) && typeof node.value === 'string') {
    const text = readText(ctx, field)
    if (!text) return undefined
    const match = /^(\d+(?:\.\d+)?)\s*(s|m|h)?$/.exec(text.value)
    seconds = match
      ? Number(match[1]) * SECONDS_PER[(match[2] ?? 's') as keyof typeof SECONDS_PER]
      : Number.NaN
    shown = show(text)
  } else {
    report(ctx, field, `${expected}, not ${describe(node)}`)
    return undefined
  }
  if (!(seconds > 0 && Number.isFinite(seconds))) {
    report(ctx, field, `${expected}, not ${shown}`)
    return undefined
  }
  return seconds
}

const SECONDS_PER = { s: 1, m: 60, h: 3600 } as const

/** One of `values`, with a did-you-mean for a near miss written in the file. */
export function readEnum<T extends string>(
  ctx: Ctx,
  field: Field | undefined,
  values: readonly T[],
): T | undefined {
  const text = readText(ctx, field)
  if (!text) return undefined
  if ((values as readonly string[]).includes(text.value)) return text.value as T
  const suggestion = text.fromEnv ? undefined : didYouMean(text.value, values)
  const hint = suggestion ? `; did you mean ${suggestion}?` : ''
  report(ctx, text, `must be one of ${values.join(', ')}, not ${show(text)}${hint}`)
  return undefined
}

/** Records one problem at a node; reading goes on. */
export function report(ctx: Ctx, at: { path: string; offset: number }, message: string): void {
  ctx.problems.push({ path: at.path, offset: at.offset, message })
}

/** How a value may appear in a message: as written in the file when `${VAR}` filled it, since it may be a secret. */
export function show(text: Text): string {
  return text.fromEnv ? `${JSON.stringify(text.raw)} (expanded)` : JSON.stringify(text.value)
}

/** The node an alias (`*name`) points at, or the node itself. */
export function deref(ctx: Ctx, node: unknown): unknown {
  return isAlias(node) ? node.resolve(ctx.doc) : node
}

/** Absent, or `key:` with nothing after it. */
export function isNull(node: unknown): boolean {
  return node === null || node === undefined || (isScalar(node) && node.value === null)
}

/** Where a node starts in the file, or `fallback` for nodes without a range. */
export function offsetOf(node: unknown, fallback: number): number {
  return isNode(node) && node.range ? node.range[0] : fallback
}

/** `ssh` + `user` → `ssh.user`; the top level has the empty path. */
export function joinPath(parent: string, key: string): string {
  return parent === '' ? key : `${parent}.${key}`
}

/** What a node is, for `must be X, not Y` messages; never its value. */
export function describe(node: unknown): string {
  if (isMap(node)) return 'a mapping'
  if (isSeq(node)) return 'a list'
  if (isScalar(node)) {
    if (node.value === null) return 'empty'
    if (typeof node.value === 'boolean') return `${node.value} (quote it to mean the word)`
    if (typeof node.value === 'number') return 'a number'
    if (typeof node.value === 'string') return 'a string'
  }
  return 'this value'
}

/** `{ key: value }`, or nothing when the section is absent, so optional keys stay out of the config. */
export function optionalSection<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V }
}

/** A YAML parse error as a problem at its offset. */
export function syntaxProblem(error: YAMLError): Problem {
  const message =
    error.code === 'MULTIPLE_DOCS'
      ? 'holds more than one YAML document (a second ---); deployer.yml must be a single document'
      : `YAML syntax: ${error.message}`
  return { offset: error.pos[0], path: '', message }
}

/** Problems as `file:line:col: key.path: message`, in file order. */
export function formatProblems(file: string, lines: LineCounter, problems: readonly Problem[]): string[] {
  // Sorted by position so the list reads top to bottom like the file; sort is stable for same-spot problems.
  return [...problems]
    .sort((a, b) => a.offset - b.offset)
    .map((problem) => {
      const { line, col } = lines.linePos(problem.offset)
      const where = `${file}:${Math.max(line, 1)}:${Math.max(col, 1)}`
      return problem.path === ''
        ? `${where}: ${problem.message}`
        : `${where}: ${problem.path}: ${problem.message}`
    })
}
