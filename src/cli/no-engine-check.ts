/**
 * Imported first by the self-contained CLI, before @oclif/core loads: oclif then checks Node's version
 * against its own package.json, read from beside its source, which a bundle does not have. In a single
 * executable that read makes Node warn on every run that require() loads only Node's own modules.
 * deployer's own `engines` are checked by npm, and the executable carries its Node.
 */
process.env.OCLIF_DISABLE_ENGINE_WARNING = '1'
