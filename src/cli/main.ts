/**
 * The npm package's bundle (dist/deployer.js): every command and oclif in one module, so Node loads one
 * file instead of hundreds. bin/run.js imports `execute` from here, and oclif, told by package.json
 * (`oclif.commands`: strategy explicit, identifier COMMANDS), takes the commands from the same module.
 */
export { execute } from '@oclif/core'
export { COMMANDS } from './commands.js'
