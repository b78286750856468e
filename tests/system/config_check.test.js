'use strict';
// `kiln-edge check`: the example config passes; a broken config fails with every error as
// file:line:column: key: message. --version and --help exit 0.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { withEnv, missingBinaries, runSync, REPO_ROOT } = require('./lib/harness');

const skip = missingBinaries(['kiln-edge']);
const EXAMPLE = path.join(REPO_ROOT, 'examples', 'edge.toml');

function show(r) {
  return `exit ${r.code} signal ${r.signal}${r.error ? ` error ${r.error.message}` : ''}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
}

test('check passes on examples/edge.toml', { skip: skip || (!fs.existsSync(EXAMPLE) && `${EXAMPLE} does not exist yet`) }, () => {
  const r = runSync('kiln-edge', ['check', '--config', EXAMPLE]);
  assert.equal(r.code, 0, show(r));
  assert.match(r.stdout, /\bOK\b/, show(r));
});

// Each broken line is marked with the key that must be reported for it.
const BROKEN = [
  '[node]',
  'group_id = "Plant/1"',                 // 2: group_id with '/'
  'edge_node_id = "gw-01"',
  '',
  '[mqtt]',                               // 5: url missing (reported at the table)
  '',
  '[[devices]]',
  'id = "press-3"',
  'driver = "modbus-tcp"',
  'address = "127.0.0.1:5020"',
  '  [[devices.tags]]',
  '  name = "Temperature"',
  '  register = "holding:x"',             // 13: bad register
  '  type = "float32"',
  '',
  '[[devices]]',
  'id = "press-3"',                       // 17: duplicate device id
  'driver = "modbus-tcp"',
  'address = "127.0.0.1:5021"',
  '  [[devices.tags]]',
  '  name = "Speed"',
  '  register = "input:0"',
  '  type = "int16"',
  '',
].join('\n');

const EXPECTED = [
  { what: "group id with '/'", line: 2, key: /group_id/ },
  { what: 'missing url', line: 5, key: /url/ },
  { what: 'bad register holding:x', line: 13, key: /register/ },
  { what: 'duplicate device id', line: 17, key: /(^|[.\]])id\b/ },
];

test('check reports every error of a broken config with file:line:column: key', { skip }, async (t) => {
  await withEnv(t, 'check', async (env) => {
    const file = path.join(env.dir, 'broken.toml');
    fs.writeFileSync(file, BROKEN);
    const r = runSync('kiln-edge', ['check', '--config', file]);
    assert.notEqual(r.code, 0, `check must fail:\n${show(r)}`);
    assert.ok(r.signal === null, show(r));
    assert.doesNotMatch(r.stdout, /\bOK\b/, show(r));
    const out = r.stdout + r.stderr;
    const errors = [];
    // One error per line; leading indentation (kiln-edge indents them under a summary line) is accepted.
    const re = new RegExp(`^\\s*${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:(\\d+):(\\d+): ([^:]+): (.*)$`, 'gm');
    for (let m = re.exec(out); m; m = re.exec(out)) errors.push({ line: Number(m[1]), column: Number(m[2]), key: m[3], message: m[4] });
    for (const e of EXPECTED) {
      const hit = errors.find((x) => x.line === e.line && e.key.test(x.key));
      assert.ok(hit, `${e.what}: expected an error at ${path.basename(file)}:${e.line} for key ${e.key}; got:\n${show(r)}`);
    }

    // Running with that config refuses to start too (no broker needed to find out).
    const run = runSync('kiln-edge', ['--config', file], { timeout: 10000 });
    assert.ok(run.code !== 0 && run.code !== null, `run with a broken config must exit non-zero:\n${show(run)}`);
  });
});

test('--version and --help exit 0', { skip }, () => {
  const v = runSync('kiln-edge', ['--version']);
  assert.equal(v.code, 0, show(v));
  assert.match(v.stdout.trim(), /^kiln-edge \S+$/, show(v));
  const h = runSync('kiln-edge', ['--help']);
  assert.equal(h.code, 0, show(h));
  assert.match(h.stdout, /kiln-edge/, show(h));
  assert.match(h.stdout, /--config/, show(h));
  assert.match(h.stdout, /\bcheck\b/, show(h));
});
