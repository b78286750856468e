// Node-RED settings for bench/compare/run.sh: headless (no editor, no admin API, no HTTP
// listener at all), flows and user data in the temporary directory that run.sh passes in
// KILN_NR_USERDIR, no credential encryption, nothing fetched from outside.
const path = require('path')
const userDir = process.env.KILN_NR_USERDIR
if (!userDir) throw new Error('KILN_NR_USERDIR is not set')

module.exports = {
  userDir,
  flowFile: path.join(userDir, 'flows.json'),
  flowFilePretty: false,
  credentialSecret: false,
  httpAdminRoot: false,
  httpNodeRoot: false,
  disableEditor: true,
  diagnostics: { enabled: false, ui: false },
  runtimeState: { enabled: false, ui: false },
  telemetry: { enabled: false, updateNotification: false },
  externalModules: { autoInstall: false, palette: { allowInstall: false } },
  functionExternalModules: false,
  exportGlobalContextKeys: false,
  logging: { console: { level: 'info', metrics: false, audit: false } }
}
