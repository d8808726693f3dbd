// Builds the console: src/main.ts (and the CSS it imports) → dist/assets/
// with content-hashed names, and dist/index.html that loads them. No inline
// script (the server's CSP forbids it). Run by scripts/webui.sh.
import * as esbuild from 'esbuild';
import { rmSync, mkdirSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';

rmSync('dist', { recursive: true, force: true });
mkdirSync('dist/assets', { recursive: true });
const res = await esbuild.build({
  entryPoints: ['src/main.ts'],
  bundle: true,
  minify: true,
  sourcemap: false,
  format: 'esm',
  target: ['chrome110', 'firefox115', 'safari16'],
  outdir: 'dist/assets',
  entryNames: '[name]-[hash]',
  assetNames: '[name]-[hash]',
  metafile: true,
  legalComments: 'none',
  logLevel: 'warning',
});
let js = '', css = '';
for (const out of Object.keys(res.metafile.outputs)) {
  if (out.endsWith('.js')) js = basename(out);
  if (out.endsWith('.css')) css = basename(out);
}
if (!js || !css) throw new Error('build: missing js or css output');
writeFileSync('dist/index.html', `<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>雪亮 xueliang</title>
<link rel="stylesheet" href="/assets/${css}">
<script type="module" src="/assets/${js}"></script>
</head>
<body><div id="app"></div></body>
</html>
`);
console.log(`built dist/assets/${js} dist/assets/${css}`);
