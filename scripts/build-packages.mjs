#!/usr/bin/env node
// Builds every workspace package into its dist/: what the published packages ship and what the services run in
// production. In the workspace, sources run through tsx under the `netpay-source` export condition (set by
// scripts/test.mjs and the netpay command), so a build is never needed to develop or test.
//
// - Private packages (service-kit, bank, broker, newspaper, cli): tsc emits JavaScript and declarations file for file,
//   so paths taken from import.meta.url (../sites, ../bin, ../package.json) stay valid from dist/.
// - Published packages (protocol, vendor-sdk, wallet): tsc emits declarations; esbuild bundles each entry into one
//   ES module (dist/<entry>.js) and one CommonJS file (dist/<entry>.cjs). Third-party packages stay imports, listed in
//   the package's dependencies or peerDependencies (checked here); the vendor SDK takes in the few helpers it uses
//   from @netpay/service-kit, code and declarations, so its tarball depends on @netpay/protocol and npm packages only.
//
// Usage: node scripts/build-packages.mjs [--if-stale]
import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { builtinModules, createRequire } from 'node:module';
import { dirname, join, posix, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const { build } = require('esbuild');

/** Workspace packages in dependency order: each one's declarations are read by the ones after it. */
const ORDER = ['protocol', 'service-kit', 'bank', 'broker', 'vendor-sdk', 'newspaper', 'wallet', 'cli'];

/** The published packages: their bundled entries, whether an entry also gets CommonJS, and what they take in. */
const PUBLISHED = {
  protocol: { entries: { index: 'node-and-browser' }, inline: [] },
  'vendor-sdk': { entries: { index: 'node' }, inline: ['@netpay/service-kit'] },
  wallet: { entries: { index: 'node', browser: 'browser' }, inline: [] },
};

const SOURCE_CONDITION = 'netpay-source';
const BUILTINS = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));

function fail(message) {
  console.error(`build: ${message}`);
  process.exit(1);
}

function walk(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? walk(path) : [path];
  });
}

function packageDir(name) {
  return join(ROOT, 'packages', name);
}

function tsc(name) {
  const result = spawnSync(
    process.execPath,
    [require.resolve('typescript/bin/tsc'), '-p', join(packageDir(name), 'tsconfig.build.json')],
    { stdio: 'inherit', cwd: ROOT },
  );
  if (result.status !== 0) fail(`tsc failed for ${name}`);
}

/** Declarations keep the sources' `./x.ts` specifiers; a consumer's TypeScript wants the `./x.js` of the build. */
function fixDeclarationSpecifiers(dist) {
  for (const file of walk(dist).filter((f) => f.endsWith('.d.ts'))) {
    const text = readFileSync(file, 'utf8');
    const fixed = text.replace(/(['"])(\.{1,2}\/[^'"]+)\.ts\1/g, '$1$2.js$1');
    if (fixed !== text) writeFileSync(file, fixed);
  }
}

/** `foo`, `@scope/foo` from `foo/sub/path.js`. */
function packageName(specifier) {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

/**
 * esbuild plugin: bare imports are external, except the workspace packages a published package takes in (resolved
 * to their sources, whose modules count as free of side effects so the helpers it does not use are left out).
 */
function externals(inline) {
  return {
    name: 'netpay-externals',
    setup(b) {
      const inlined = inline.map((n) => join(packageDir(n.replace('@netpay/', '')), 'src') + sep);
      b.onResolve({ filter: /^[^./]/ }, (args) => {
        if (inline.includes(packageName(args.path))) return undefined;
        return { path: args.path, external: true };
      });
      b.onResolve({ filter: /.*/ }, async (args) => {
        if (args.pluginData === 'inlined') return undefined;
        const fromInlined = inlined.some((dir) => args.importer.startsWith(dir));
        const isInlinedPackage = inline.includes(args.path);
        if (!fromInlined && !isInlinedPackage) return undefined;
        const found = await b.resolve(args.path, {
          kind: args.kind,
          importer: args.importer,
          resolveDir: args.resolveDir,
          pluginData: 'inlined',
        });
        if (found.errors.length > 0) return { errors: found.errors };
        return { path: found.path, sideEffects: false };
      });
    },
  };
}

/** Bundles one published package's entries: ESM (shared chunks between entries) and CommonJS for Node entries. */
async function bundle(name, spec, manifest) {
  const dir = packageDir(name);
  const dist = join(dir, 'dist');
  const entries = Object.keys(spec.entries);
  const common = {
    absWorkingDir: dir,
    bundle: true,
    target: 'es2022',
    conditions: [SOURCE_CONDITION],
    logLevel: 'warning',
    legalComments: 'none',
    metafile: true,
    plugins: [externals(spec.inline)],
  };
  const outputs = [];
  const esm = await build({
    ...common,
    entryPoints: Object.fromEntries(entries.map((e) => [e, join(dir, 'src', `${e}.ts`)])),
    outdir: dist,
    format: 'esm',
    platform: 'neutral',
    splitting: entries.length > 1,
    chunkNames: 'chunks/[name]-[hash]',
  });
  outputs.push(esm);
  for (const entry of entries.filter((e) => spec.entries[e] !== 'browser')) {
    const cjs = await build({
      ...common,
      entryPoints: [join(dir, 'src', `${entry}.ts`)],
      outfile: join(dist, `${entry}.cjs`),
      format: 'cjs',
      platform: 'node',
      // Code that finds files or modules next to itself reads import.meta.url; CommonJS has __filename instead.
      define: { 'import.meta.url': '__netpay_import_meta_url' },
      banner: { js: "const __netpay_import_meta_url = require('node:url').pathToFileURL(__filename).href;" },
    });
    outputs.push(cjs);
  }
  const declared = new Set([
    ...Object.keys(manifest.dependencies ?? {}),
    ...Object.keys(manifest.peerDependencies ?? {}),
  ]);
  // What the bundles import (modules left out by tree shaking are parsed, but their imports are not in the output).
  const imported = new Set(
    outputs.flatMap((o) =>
      Object.values(o.metafile.outputs).flatMap((out) => out.imports.filter((i) => i.external).map((i) => i.path)),
    ),
  );
  const undeclared = [...imported].filter((s) => !BUILTINS.has(s) && !declared.has(packageName(s)));
  if (undeclared.length > 0) fail(`${name} imports ${undeclared.join(', ')}, not in its dependencies`);
  for (const dep of Object.keys(manifest.dependencies ?? {})) {
    if (dep.startsWith('@netpay/') && !PUBLISHED[dep.slice('@netpay/'.length)]) {
      fail(`${name} depends on the unpublished ${dep}`);
    }
  }
}

/** Export names a declaration file takes from `specifier` (named imports, re-exports and `import("…").Name`). */
function namesFrom(text, specifier) {
  const names = new Set();
  const quoted = `['"]${specifier.replace(/[/.]/g, '\\$&')}['"]`;
  for (const m of text.matchAll(
    new RegExp(`(?:import|export)\\s+(?:type\\s+)?\\{([^}]*)\\}\\s*from\\s*${quoted}`, 'g'),
  )) {
    for (const part of m[1].split(',')) {
      const local = part
        .trim()
        .replace(/^type\s+/, '')
        .split(/\s+as\s+/)[0];
      if (local) names.add(local);
    }
  }
  for (const m of text.matchAll(new RegExp(`import\\(${quoted}\\)\\.(\\w+)`, 'g'))) names.add(m[1]);
  if (/(?:import|export)\s+\*/.test(text) && new RegExp(`\\*[^;]*from\\s*${quoted}`).test(text)) {
    fail(`a namespace import of ${specifier} cannot be inlined`);
  }
  return names;
}

function relativeImports(text) {
  return [...text.matchAll(/(?:from\s*|import\()\s*['"](\.{1,2}\/[^'"]+)['"]/g)].map((m) => m[1]);
}

function bareImports(text) {
  return [...text.matchAll(/(?:from\s*|import\()\s*['"]([^./'"][^'"]*)['"]/g)].map((m) => m[1]);
}

/**
 * The declarations of a taken-in workspace package: copies the declaration files that declare the names the published
 * package uses (and what they import) into dist/internal/<package>/, behind an index that re-exports just them, and
 * points the published package's declarations there.
 */
function inlineDeclarations(name, internal, manifest) {
  const dist = join(packageDir(name), 'dist');
  const sourceDist = join(packageDir(internal.replace('@netpay/', '')), 'dist');
  const own = walk(dist).filter((f) => f.endsWith('.d.ts'));
  const wanted = new Set();
  for (const file of own) for (const n of namesFrom(readFileSync(file, 'utf8'), internal)) wanted.add(n);
  if (wanted.size === 0) return;
  const candidates = walk(sourceDist).filter((f) => f.endsWith('.d.ts') && !f.endsWith(`${sep}index.d.ts`));
  const declares = (text, n) =>
    new RegExp(
      `export\\s+(?:declare\\s+)?(?:abstract\\s+)?(?:function|class|const|let|interface|type|enum|namespace)\\s+${n}\\b`,
    ).test(text) || new RegExp(`export\\s*\\{[^}]*\\b${n}\\b[^}]*\\}`).test(text);
  const roots = new Set();
  for (const n of wanted) {
    const file = candidates.find((f) => declares(readFileSync(f, 'utf8'), n));
    if (!file) fail(`no declaration of ${n} in ${internal}`);
    roots.add(file);
  }
  const target = join(dist, 'internal', internal.replace('@netpay/', ''));
  const copied = new Set();
  const queue = [...roots];
  while (queue.length > 0) {
    const file = queue.pop();
    if (copied.has(file)) continue;
    copied.add(file);
    const text = readFileSync(file, 'utf8');
    for (const bare of bareImports(text)) {
      const pkg = packageName(bare);
      const allowed =
        BUILTINS.has(bare) || pkg in (manifest.dependencies ?? {}) || pkg in (manifest.peerDependencies ?? {});
      if (!allowed) fail(`${relative(ROOT, file)} (taken into ${name}) imports ${bare}, not a dependency of ${name}`);
    }
    for (const rel of relativeImports(text)) queue.push(resolve(dirname(file), rel.replace(/\.js$/, '.d.ts')));
  }
  for (const file of copied) {
    const out = join(target, relative(sourceDist, file));
    mkdirSync(dirname(out), { recursive: true });
    copyFileSync(file, out);
  }
  const index = [...roots]
    .map(
      (f) =>
        `export * from './${relative(sourceDist, f)
          .split(sep)
          .join('/')
          .replace(/\.d\.ts$/, '.js')}';`,
    )
    .sort()
    .join('\n');
  writeFileSync(join(target, 'index.d.ts'), `// The parts of ${internal} this package's declarations use.\n${index}\n`);
  const quoted = new RegExp(`(['"])${internal.replace(/[/.]/g, '\\$&')}\\1`, 'g');
  for (const file of own) {
    const text = readFileSync(file, 'utf8');
    let spec = posix.relative(dirname(file).split(sep).join('/'), join(target, 'index.js').split(sep).join('/'));
    if (!spec.startsWith('.')) spec = `./${spec}`;
    const fixed = text.replace(quoted, `$1${spec}$1`);
    if (fixed !== text) writeFileSync(file, fixed);
  }
}

/**
 * A project uses Fastify or Express, not both, so the declarations that name an optional peer must type-check without
 * it: each such line gets a @ts-ignore, and the peer's types are then `any` where they are absent (with them, the
 * full types as usual).
 */
function optionalPeerDeclarations(name, manifest) {
  const optional = Object.entries(manifest.peerDependenciesMeta ?? {}).flatMap(([peer, meta]) =>
    meta.optional ? [peer] : [],
  );
  if (optional.length === 0) return;
  const names = optional.map((p) => p.replace(/[/.]/g, '\\$&')).join('|');
  const peerImport = new RegExp(`(?:from\\s*|import\\(|declare module\\s*)['"](?:${names})(?:/[^'"]*)?['"]`);
  for (const file of walk(join(packageDir(name), 'dist')).filter((f) => f.endsWith('.d.ts'))) {
    const lines = readFileSync(file, 'utf8').split('\n');
    const out = lines.flatMap((line) =>
      peerImport.test(line) && !/^\s*\*/.test(line)
        ? [`${line.match(/^\s*/)[0]}// @ts-ignore an optional peer dependency, absent unless the project uses it`, line]
        : [line],
    );
    if (out.length !== lines.length) writeFileSync(file, out.join('\n'));
  }
}

/** CommonJS declarations: a `.d.cts` beside every `.d.ts`, its relative imports naming `.cjs` files. */
function commonJsDeclarations(name) {
  for (const file of walk(join(packageDir(name), 'dist')).filter((f) => f.endsWith('.d.ts'))) {
    const text = readFileSync(file, 'utf8').replace(/(['"])(\.{1,2}\/[^'"]+)\.js\1/g, '$1$2.cjs$1');
    writeFileSync(file.replace(/\.d\.ts$/, '.d.cts'), text);
  }
}

function checkLicense(name) {
  const root = readFileSync(join(ROOT, 'LICENSE'), 'utf8');
  let own = '';
  try {
    own = readFileSync(join(packageDir(name), 'LICENSE'), 'utf8');
  } catch {}
  if (own !== root) fail(`packages/${name}/LICENSE must be a copy of the repository's LICENSE`);
}

/**
 * Every package a built file imports is among the package's dependencies or peers, so an install without dev
 * dependencies (`npm prune --omit=dev`) still runs it. Test helpers (service-kit's testing entries) are exempt, and so
 * is the benchmark (`bench*.js`), which needs a development install anyway (it starts its load generator through tsx).
 */
function checkRuntimeImports(name, manifest) {
  const declared = new Set([
    ...Object.keys(manifest.dependencies ?? {}),
    ...Object.keys(manifest.peerDependencies ?? {}),
    manifest.name,
  ]);
  const testing = new Set(
    Object.values(manifest.exports ?? {}).flatMap((e) => (e.default?.includes('/testing') ? [e.default] : [])),
  );
  for (const file of walk(join(packageDir(name), 'dist')).filter((f) => /\.(c?js)$/.test(f))) {
    const local = `./${relative(packageDir(name), file).split(sep).join('/')}`;
    if (testing.has(local) || /(^|\/)bench[^/]*\.js$/.test(local)) continue;
    const text = readFileSync(file, 'utf8');
    const specifiers = [
      ...text.matchAll(/(?:^|[\s;])(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]/g),
      ...text.matchAll(/\b(?:import|require)\(\s*['"]([^'"]+)['"]\s*\)/g),
      ...text.matchAll(/^import\s*['"]([^'"]+)['"]/gm),
    ].map((m) => m[1]);
    for (const specifier of specifiers) {
      if (specifier.startsWith('.') || specifier.startsWith('/') || BUILTINS.has(specifier)) continue;
      if (!declared.has(packageName(specifier))) {
        fail(`${relative(ROOT, file)} imports ${specifier}, not among the dependencies of ${manifest.name}`);
      }
    }
  }
}

// `--if-stale`: nothing to do when every package's dist/ is newer than everything a build reads.
const STAMP = '.build-stamp';
function upToDate() {
  let built = Number.POSITIVE_INFINITY;
  for (const name of ORDER) {
    try {
      built = Math.min(built, statSync(join(packageDir(name), 'dist', STAMP)).mtimeMs);
    } catch {
      return false;
    }
  }
  const inputs = [
    ...['LICENSE', 'package.json', 'package-lock.json', 'tsconfig.base.json', 'tsconfig.build-base.json'].map((f) =>
      join(ROOT, f),
    ),
    fileURLToPath(import.meta.url),
    ...ORDER.flatMap((name) => [
      ...walk(join(packageDir(name), 'src')),
      ...['package.json', 'tsconfig.build.json', 'LICENSE']
        .map((f) => join(packageDir(name), f))
        .filter((f) => existsSync(f)),
    ]),
  ];
  return inputs.every((f) => statSync(f).mtimeMs < built);
}

if (process.argv.includes('--if-stale') && upToDate()) {
  console.log('build: every dist/ is up to date');
  process.exit(0);
}
const started = Date.now();
for (const name of ORDER) {
  const dir = packageDir(name);
  const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  rmSync(join(dir, 'dist'), { recursive: true, force: true });
  tsc(name);
  fixDeclarationSpecifiers(join(dir, 'dist'));
  const spec = PUBLISHED[name];
  if (spec) {
    if (manifest.private) fail(`${name} is published but marked private`);
    checkLicense(name);
    await bundle(name, spec, manifest);
    for (const internal of spec.inline) inlineDeclarations(name, internal, manifest);
    optionalPeerDeclarations(name, manifest);
    commonJsDeclarations(name);
  }
  checkRuntimeImports(name, manifest);
  console.log(`built ${manifest.name}`);
}
for (const name of ORDER) writeFileSync(join(packageDir(name), 'dist', STAMP), `${new Date().toISOString()}\n`);
console.log(`build: done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
