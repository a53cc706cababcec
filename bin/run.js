#!/usr/bin/env node
// The whole CLI is one bundled module (npm run build: scripts/bundle.mjs); package.json's
// oclif.commands tells oclif to take the commands from its COMMANDS export.
import { execute } from '../dist/deployer.js'

await execute({ dir: import.meta.url })
