// A small runner for the console's end-to-end scenarios on playwright-core and the system's
// Chromium (no browser download): each scenario gets a fresh browser context, every request to
// another origin is refused and reported, console errors fail the scenario, and `check(page,
// name)` runs axe (0 serious or critical violations) and saves a screenshot.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import AxeBuilder from '@axe-core/playwright';
import { chromium } from 'playwright-core';

export const BASE = process.env.SANKALPA_CONSOLE_URL ?? 'http://127.0.0.1:8080';
const ARTIFACTS = process.env.SANKALPA_E2E_ARTIFACTS ?? 'e2e-artifacts';
const CHROMIUM = process.env.SANKALPA_CHROMIUM ?? '/usr/bin/chromium';
/** How long a person would wait for one thing to show. */
export const TIMEOUT_MS = Number(process.env.SANKALPA_E2E_TIMEOUT_MS ?? 30_000);

const scenarios = [];

export function scenario(name, run) {
  scenarios.push({ name, run });
}

function slug(text) {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
}

/** Axe on the page as it is now; throws on serious or critical violations. */
async function audit(page, name) {
  const results = await new AxeBuilder({ page }).analyze();
  const blocking = results.violations.filter((violation) =>
    ['serious', 'critical'].includes(violation.impact ?? ''),
  );
  if (blocking.length > 0) {
    const described = blocking
      .map((violation) => `${violation.id} (${violation.impact}): ${violation.help} at ${violation.nodes.map((node) => node.target.join(' ')).join(', ')}`)
      .join('\n  ');
    throw new Error(`axe found ${blocking.length} serious or critical violations on ${name}:\n  ${described}`);
  }
  return results.violations.length;
}

export async function run() {
  // Only this run's screenshots: a failure's picture from an earlier run would mislead.
  rmSync(ARTIFACTS, { recursive: true, force: true });
  mkdirSync(ARTIFACTS, { recursive: true });
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Root in a container has no user namespace for the sandbox.
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
  });
  const only = process.env.SANKALPA_E2E_ONLY;
  const started = Date.now();
  let passed = 0;
  let failed = 0;
  const audited = [];
  for (const { name, run: body } of scenarios) {
    if (only && !name.includes(only)) continue;
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
    context.setDefaultTimeout(TIMEOUT_MS);
    const foreign = [];
    await context.route('**/*', (route) => {
      const url = route.request().url();
      if (url.startsWith(BASE) || url.startsWith('blob:') || url.startsWith('data:')) return route.continue();
      foreign.push(url);
      return route.abort();
    });
    const began = Date.now();
    const errors = [];
    const refused = [];
    // The API calls in the order they were answered, for a failure's report.
    const calls = [];
    const shots = [];
    const watch = (page) => {
      // Scenarios provoke some (401, 403, 404): only a failure's report lists them.
      page.on('response', (response) => {
        const call = `${response.status()} ${response.request().method()} ${response.url()}`;
        if (response.status() >= 400) refused.push(call);
        if (response.url().startsWith(`${BASE}/api/`)) calls.push(`${((Date.now() - began) / 1000).toFixed(1)} s ${call}`);
      });
      page.on('requestfailed', (request) => {
        calls.push(`${((Date.now() - began) / 1000).toFixed(1)} s failed (${request.failure()?.errorText}) ${request.method()} ${request.url()}`);
      });
      page.on('console', (message) => {
        // A refused request (401, 403, 404 a scenario provokes) is the app's to show, not an error.
        if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) {
          errors.push(message.text());
        }
      });
      page.on('pageerror', (error) => errors.push(String(error)));
    };
    context.on('page', watch);
    const check = async (page, label) => {
      // Settled, or 2 s at most: a page following a live stream is never idle.
      await page.waitForLoadState('networkidle', { timeout: 2_000 }).catch(() => {});
      const file = join(ARTIFACTS, `${slug(name)}--${slug(label)}.png`);
      await page.screenshot({ path: file, fullPage: true });
      shots.push(file);
      const minor = await audit(page, label);
      audited.push({ page: label, minor });
    };
    try {
      await body({ browser, context, check, newPage: () => context.newPage() });
      if (foreign.length > 0) throw new Error(`requests to other origins: ${foreign.join(', ')}`);
      if (errors.length > 0) throw new Error(`console errors:\n  ${errors.join('\n  ')}`);
      passed += 1;
      console.log(`PASS ${name} (${((Date.now() - began) / 1000).toFixed(1)} s)`);
    } catch (error) {
      failed += 1;
      console.log(`FAIL ${name} (${((Date.now() - began) / 1000).toFixed(1)} s)\n  ${error.stack ?? error}`);
      if (refused.length > 0) console.log(`  responses of 400 and above:\n    ${refused.join('\n    ')}`);
      if (errors.length > 0) console.log(`  console errors:\n    ${errors.join('\n    ')}`);
      console.log(`  the last API calls:\n    ${calls.slice(-40).join('\n    ')}`);
      for (const page of context.pages()) {
        // What the page told the person: the first clue to a failure seen only in CI.
        const alerts = await page.getByRole('alert').allInnerTexts().catch(() => []);
        console.log(`  ${page.url()} shows ${alerts.length} alerts${alerts.map((text) => `\n    ${text.replace(/\s+/g, ' ')}`).join('')}`);
        await page
          .screenshot({ path: join(ARTIFACTS, `${slug(name)}--failure.png`), fullPage: true })
          .catch(() => {});
      }
    } finally {
      await context.close();
    }
  }
  await browser.close();
  writeFileSync(join(ARTIFACTS, 'axe.json'), JSON.stringify(audited, null, 2));
  console.log(`axe: ${audited.length} pages checked, 0 serious or critical violations allowed`);
  console.log(`e2e: ${((Date.now() - started) / 1000).toFixed(1)} s; screenshots in ${ARTIFACTS}`);
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed === 0 && passed > 0 ? 0 : 1);
}
