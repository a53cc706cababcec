import { readdir } from 'node:fs/promises'
import { expect } from 'chai'
import { COMMANDS } from '../../../src/cli/commands.js'

describe('COMMANDS, the command map the bundles hand to oclif', () => {
  it('holds exactly the commands in commands/, each by its file name', async () => {
    const files = (await readdir(new URL('../../../commands/', import.meta.url)))
      .filter((name) => name.endsWith('.ts'))
      .map((name) => name.slice(0, -'.ts'.length))
      .sort()
    expect(Object.keys(COMMANDS).sort()).to.deep.equal(files)
    for (const [id, command] of Object.entries(COMMANDS)) {
      const module = (await import(`../../../commands/${id}.js`)) as {
        default: { name: string; summary?: string }
      }
      // The same class (compared by name and summary: the loader may hand out a second module instance).
      expect([command.name, command.summary], id).to.deep.equal([module.default.name, module.default.summary])
    }
  })
})
