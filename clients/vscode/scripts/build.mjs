// Bundles the extension with esbuild into dist/extension.cjs (CommonJS, as VS Code loads it;
// `vscode` left to the editor), or with --tests each test/*.test.ts into dist-test/ with `vscode`
// replaced by the stand-in test/vscode-stub.ts, since VS Code itself cannot run here.
import { readdirSync, rmSync } from 'node:fs';

import { build } from 'esbuild';

const common = { bundle: true, platform: 'node', target: 'node20', sourcemap: true, logLevel: 'warning' };

if (process.argv.includes('--tests')) {
  rmSync('dist-test', { recursive: true, force: true });
  const tests = readdirSync('test').filter((name) => name.endsWith('.test.ts'));
  await build({
    ...common,
    entryPoints: [...tests.map((name) => `test/${name}`), 'test/check-manifest.ts'],
    outdir: 'dist-test',
    outExtension: { '.js': '.mjs' },
    format: 'esm',
    alias: { vscode: './test/vscode-stub.ts' },
    // Bundled CommonJS dependencies call require(); ESM output has none of its own.
    banner: { js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);" },
  });
} else {
  await build({
    ...common,
    entryPoints: ['src/editor/extension.ts'],
    outfile: 'dist/extension.cjs',
    format: 'cjs',
    external: ['vscode'],
    minify: true,
  });
}
