'use strict';
// The dashboard in a real browser (Debian's Chromium, driven by playwright-core) against the
// real stack: Mosquitto, kiln-sim, kiln-edge and kiln-server. Checks what a person would see:
// the node and its devices online, live values, a chart of a metric's history, and a device
// that stops answering shown Bad and offline.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { withEnv, missingBinaries } = require('./lib/harness');
const { standardPlant } = require('./lib/plant');
const { startTap } = require('./lib/tap');
const { waitBirths } = require('./lib/scenario');

const CHROMIUM = process.env.KILN_CHROMIUM || '/usr/bin/chromium';
const skip = missingBinaries(['kiln-edge', 'kiln-sim', 'kiln-server']) ||
  (!fs.existsSync(CHROMIUM) && process.env.KILN_E2E_REQUIRE_BINARIES !== '1' && `no Chromium at ${CHROMIUM} (apt-get install chromium)`);

// Chromium stalls on this closed network without these flags and a fresh profile.
async function launch(env) {
  const { chromium } = require('playwright-core');
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-chromium-'));
  env.onClose(() => fs.rmSync(profile, { recursive: true, force: true }));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
    viewport: { width: 1400, height: 900 },
  });
  env.onClose(() => context.close());
  const page = context.pages()[0] || await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
  return { page, problems };
}

test('dashboard: a person sees the plant live, a chart, and a lost device turn Bad and offline', { skip, timeout: 90000 }, async (t) => {
  await withEnv(t, 'dashboard', async (env) => {
    const plant = standardPlant();
    const broker = await env.startMosquitto();
    const server = await env.startServer(env.serverConfig({ broker }));
    const tap = await startTap(env, broker);
    const sim = await env.startSim(plant.simConfig());
    await env.startEdge(env.edgeConfig({ broker, devices: plant.edgeDevices(sim) }));
    await waitBirths(env, tap, ['press-3', 'oven-1']);

    const { page, problems } = await launch(env);
    const byId = (id) => page.getByTestId(id);
    const shot = (name) => page.screenshot({ path: path.join(env.dir, `${name}.png`) }).catch(() => {});
    try {
      await page.goto(`${server.url}/`);
      await page.locator('[data-testid="connection"][data-state="connected"]').waitFor({ timeout: 30000 });
      assert.equal((await byId('node-status-Plant1/gw-01').textContent()).trim(), 'online');
      await byId('device-status-Plant1/gw-01/press-3').waitFor();
      assert.equal((await byId('device-status-Plant1/gw-01/press-3').textContent()).trim(), 'online');
      assert.equal((await byId('device-status-Plant1/gw-01/oven-1').textContent()).trim(), 'online');

      // The device view: every tag, the constant values as the simulator holds them, Good.
      await byId('device-Plant1/gw-01/press-3').click();
      const temp = 'Plant1/gw-01/press-3/Temperature';
      await byId(`metric-${temp}`).waitFor();
      for (const tag of plant.device('press-3').tags) await byId(`metric-Plant1/gw-01/press-3/${tag.name}`).waitFor();
      assert.equal((await byId(`value-${temp}`).textContent()).trim(), '21.5');
      assert.match(await byId(`quality-${temp}`).textContent(), /Good/);
      assert.doesNotMatch(await byId(`metric-${temp}`).getAttribute('class') || '', /quality-(bad|uncertain)/);

      // Live: the ramp's value on the page changes without a reload.
      const cycle = 'Plant1/gw-01/press-3/Cycle';
      const first = (await byId(`value-${cycle}`).textContent()).trim();
      await page.waitForFunction(([id, v]) => {
        const el = document.querySelector(`[data-testid="${id}"]`);
        return el && el.textContent.trim() !== v;
      }, [`value-${cycle}`, first], { timeout: 20000 });

      // The chart of Cycle: history from the server, with points.
      await byId(`metric-${cycle}`).click();
      await page.locator('[data-testid="chart"][data-state="ready"]').waitFor({ timeout: 20000 });
      const points = Number(await byId('chart').getAttribute('data-points'));
      assert.ok(points >= 2, `chart points: ${points}`);
      assert.match(await byId('chart-title').textContent(), /Cycle/);
      await shot('dashboard-chart');

      // The device stops answering: its values turn Bad, then it goes offline.
      await sim.cmd('fault press-3 drop');
      await page.waitForFunction((id) => {
        const el = document.querySelector(`[data-testid="${id}"]`);
        return el && el.textContent.trim() === 'offline';
      }, 'device-status-Plant1/gw-01/press-3', { timeout: 30000 });
      await page.waitForFunction((id) => {
        const el = document.querySelector(`[data-testid="${id}"]`);
        return el && el.classList.contains('quality-bad');
      }, `metric-${temp}`, { timeout: 20000 });
      assert.match(await byId(`quality-${temp}`).textContent(), /Bad/);
      assert.equal((await byId('device-status-Plant1/gw-01/oven-1').textContent()).trim(), 'online', 'the other device is unaffected');
      assert.equal((await byId('node-status-Plant1/gw-01').textContent()).trim(), 'online');
      assert.match(await byId('node-issues-Plant1/gw-01-bad').textContent(), /[1-9]\d* bad/);
      await shot('dashboard-bad');
      assert.deepEqual(problems, [], 'no errors in the page');
    } catch (e) {
      await shot('dashboard-failure');
      throw e;
    }
  });
});
