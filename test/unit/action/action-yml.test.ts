import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { expect } from 'chai'
import { parse } from 'yaml'
import { INPUT_ENV, parseInputs } from '../../../src/action/inputs.js'
import { actionOutputs } from '../../../src/action/result.js'

const root = fileURLToPath(new URL('../../../', import.meta.url))

interface ActionYml {
  inputs: Record<string, { description: string; default?: string }>
  outputs: Record<string, { description: string; value: string }>
  runs: { using: string; steps: { id?: string; shell: string; run: string; env?: Record<string, string> }[] }
}

const action = parse(readFileSync(`${root}action.yml`, 'utf8')) as ActionYml

/** action.yml's input names for INPUT_ENV's keys: `sshPrivateKey` is `ssh-private-key`. */
const inputName = (key: string) => key.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`)

describe('action.yml', () => {
  it('is a composite action whose steps all name their shell', () => {
    expect(action.runs.using).to.equal('composite')
    for (const step of action.runs.steps) expect(step.shell).to.equal('bash')
  })

  it('installs nothing at run time: its one step runs the committed bundle', () => {
    expect(action.runs.steps).to.have.length(1)
    expect(action.runs.steps[0]?.run).to.not.match(/\bnpm\b/)
  })

  it('declares exactly the inputs the entry script reads, each with a description', () => {
    expect(Object.keys(action.inputs)).to.deep.equal(Object.keys(INPUT_ENV).map(inputName))
    for (const input of Object.values(action.inputs))
      expect(input.description).to.be.a('string').and.not.empty
  })

  it('passes every input to the entry script in the variable it reads', () => {
    const step = action.runs.steps.find((candidate) => candidate.id === 'deployer')
    expect(step?.run).to.equal('node "$GITHUB_ACTION_PATH/dist-action/main.cjs"')
    expect(existsSync(`${root}dist-action/main.cjs`)).to.equal(true)
    expect(step?.env).to.deep.equal(
      Object.fromEntries(
        Object.entries(INPUT_ENV).map(([key, variable]) => [variable, `\${{ inputs.${inputName(key)} }}`]),
      ),
    )
  })

  it('has the same defaults as the entry script', () => {
    const defaults = Object.fromEntries(
      Object.entries(INPUT_ENV).map(([key, variable]) => [variable, action.inputs[inputName(key)]?.default]),
    )
    const parsed = parseInputs({})
    expect(parsed.ok).to.equal(true)
    expect(parseInputs(defaults)).to.deep.equal(parsed)
  })

  it('declares exactly the outputs the entry script writes, from the deployer step', () => {
    const written = Object.keys(actionOutputs('release', { ok: true }))
    expect(Object.keys(action.outputs)).to.deep.equal(written)
    for (const name of written) {
      expect(action.outputs[name]?.value).to.equal(`\${{ steps.deployer.outputs.${name} }}`)
    }
  })
})
