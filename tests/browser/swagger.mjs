#!/usr/bin/env node
// Headless Swagger UI check: opens the server's /swagger/ in Debian's Chromium (playwright-core),
// waits for the operations the UI rendered from /swagger/doc.json, then expands one operation,
// presses "Try it out" and "Execute" as a user would, and prints ONE JSON line:
//
//   {"ok": true, "operations": ["get /streams", ...], "executed": "get /config", "status": "200"}
//
//   node tests/browser/swagger.mjs --url http://127.0.0.1:PORT/swagger/ \
//        [--execute 'get /config'] [--timeout 20] [--chromium PATH]
//
// Exit 0 when ok, 1 otherwise (2 on bad arguments). Diagnostics go to stderr, never stdout.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

function parseArgs(argv) {
  const opts = { execute: 'get /config', timeout: 20, chromium: '/usr/bin/chromium' };
  for (let i = 0; i < argv.length; i += 2) {
    const [key, value] = [argv[i], argv[i + 1]];
    if (value === undefined) usage(`${key} needs a value`);
    if (key === '--url') opts.url = value;
    else if (key === '--execute') opts.execute = value;
    else if (key === '--timeout') opts.timeout = Number(value);
    else if (key === '--chromium') opts.chromium = value;
    else usage(`unknown argument ${key}`);
  }
  if (!opts.url) usage('--url is required');
  return opts;
}

function usage(why) {
  process.stderr.write(`swagger.mjs: ${why}\n`);
  process.exit(2);
}

const opts = parseArgs(process.argv.slice(2));
const report = { ok: false, url: opts.url, operations: [], executed: opts.execute, status: null, reason: null };
let context;
try {
  let chromium;
  try {
    ({ chromium } = require('playwright-core'));
  } catch {
    throw new Error('playwright-core is not installed: run `npm ci --prefix tests/browser`');
  }
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-swagger-'));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: opts.chromium,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
  });
  const page = await context.newPage();
  const limit = opts.timeout * 1000;
  await page.goto(opts.url, { timeout: limit });
  await page.locator('.opblock').first().waitFor({ timeout: limit });
  report.operations = await page.$$eval('.opblock', (blocks) =>
    blocks.map((b) => {
      const method = b.querySelector('.opblock-summary-method')?.textContent?.trim().toLowerCase();
      const p = b.querySelector('.opblock-summary-path')?.getAttribute('data-path');
      return `${method} ${p}`;
    }),
  );
  const [method, opPath] = opts.execute.split(' ');
  const block = page.locator(`.opblock-${method}`).filter({
    has: page.locator(`.opblock-summary-path[data-path="${opPath}"]`),
  });
  await block.locator('.opblock-summary').first().click();
  await block.locator('.try-out__btn').click({ timeout: limit });
  await block.locator('.execute').click({ timeout: limit });
  const status = block.locator('.live-responses-table tbody .response-col_status').first();
  await status.waitFor({ timeout: limit });
  report.status = (await status.textContent()).trim();
  report.ok = report.operations.length > 0 && /^[1-5]\d\d$/.test(report.status);
} catch (e) {
  report.reason = String(e && e.message ? e.message : e);
} finally {
  if (context) await context.close().catch(() => {});
}
process.stdout.write(JSON.stringify(report) + '\n');
process.exit(report.ok ? 0 : 1);
