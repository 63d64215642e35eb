// Measures the initial JavaScript of the built console: the scripts index.html loads and the
// modules they preload, gzipped, against the budget (docs/console.md). Exits 1 over budget.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

const BUDGET_BYTES = 200 * 1024;
const dir = process.argv[2] ?? 'dist';
const html = await readFile(join(dir, 'index.html'), 'utf8');
const initial = [
  ...html.matchAll(/<script[^>]+src="([^"]+\.js)"/g),
  ...html.matchAll(/<link[^>]+rel="modulepreload"[^>]+href="([^"]+\.js)"/g),
].map((match) => match[1]);

let total = 0;
for (const src of new Set(initial)) {
  const gzipped = gzipSync(await readFile(join(dir, src)), { level: 9 }).length;
  total += gzipped;
  console.log(`${(gzipped / 1024).toFixed(1).padStart(8)} KB  ${src}`);
}
console.log(
  `initial JS: ${(total / 1024).toFixed(1)} KB gzip (budget ${BUDGET_BYTES / 1024} KB)`,
);
if (total > BUDGET_BYTES) {
  console.error('size: the initial JavaScript is over budget');
  process.exit(1);
}
