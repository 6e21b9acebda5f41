// Bundles the web client's modules (web/app.js and what it imports, Preact +
// htm included) into one minified file, web/dist/app.js, with its source map.
// chirp embeds and serves that file as /app/app.js: one request instead of
// six module files, which a fresh page load otherwise fetches over HTTP/1.1's
// six connections before it can run anything (see web/README.md).
//
//   cd web/build && npm ci && node build.mjs           writes web/dist/
//   node build.mjs --check                             fails if web/dist/ is not what the sources give
//
// The output is committed, so that `cargo build` needs no Node.js; CI runs
// --check (tests/browser/run.sh) so the committed file cannot drift from its
// sources. esbuild is pinned to an exact version in package.json and its
// lockfile: another version may minify differently.

import * as esbuild from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const WEB = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DIST = path.join(WEB, 'dist');
const check = process.argv.includes('--check');

const result = await esbuild.build({
  absWorkingDir: WEB,
  entryPoints: ['app.js'],
  outfile: 'dist/app.js',
  bundle: true,
  format: 'esm', // app.js awaits at top level: the bundle stays a module script
  target: 'es2022',
  minify: true,
  sourcemap: 'linked',
  legalComments: 'none', // the notice below names the licences instead
  banner: {
    js: '/* chirp web client, bundled from web/*.js by web/build/build.mjs (esbuild); source map: app.js.map. '
      + 'Includes Preact (MIT) and htm (Apache-2.0): web/vendor/LICENSE-preact, web/vendor/LICENSE-htm */',
  },
  write: false,
  logLevel: 'warning',
});

let stale = 0;
for (const file of result.outputFiles) {
  const name = path.relative(WEB, file.path);
  const current = fs.existsSync(file.path) ? fs.readFileSync(file.path) : null;
  const same = current !== null && Buffer.compare(current, Buffer.from(file.contents)) === 0;
  if (check) {
    if (!same) { stale++; console.error(`web/${name} is not what web/build/build.mjs makes from the sources`); }
  } else if (!same) {
    fs.mkdirSync(DIST, { recursive: true });
    fs.writeFileSync(file.path, file.contents);
    console.log(`wrote web/${name} (${file.contents.length} bytes)`);
  } else {
    console.log(`web/${name} is up to date (${file.contents.length} bytes)`);
  }
}
if (stale) {
  console.error('rebuild it: cd web/build && npm ci && node build.mjs (then rebuild chirp), and commit web/dist/');
  process.exit(1);
}
if (check) console.log(`web/dist/ matches the sources (${result.outputFiles.length} files)`);
