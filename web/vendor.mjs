// Copies the browser builds of the dashboard's libraries from web/node_modules into
// src/riskstream/web/static/vendor/, keeping each package's own folder layout (the Perspective builds find
// their WebAssembly next to themselves by relative URL), and writes vendor/manifest.json: every package's
// version and the files the pages import. Run by `make web` after `npm ci --prefix web`; no bundler.
//
//   node web/vendor.mjs            copy (replaces the vendor folder)
//   node web/vendor.mjs --check    exit 1 when a file the pages import is missing

import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const modules = join(here, "node_modules");
const out = join(here, "..", "src", "riskstream", "web", "static", "vendor");

// package → folders (relative to the package) copied whole; files ending in .d.ts, .cjs or .cjs.map are left out.
const PACKAGES = {
    "@perspective-dev/client": ["dist/cdn"],
    // The in-browser engine (perspective.worker()) only; a page on the service's websocket never fetches it.
    "@perspective-dev/server": ["dist/wasm"],
    "@perspective-dev/viewer": ["dist/cdn", "dist/wasm", "dist/css"],
    "@perspective-dev/viewer-datagrid": ["dist/cdn", "dist/css"],
    "chart.js": ["dist/chart.js", "dist/chart.js.map", "dist/chunks", "dist/helpers.js", "dist/chart.umd.min.js"],
    "@kurkle/color": ["dist/color.esm.js"],
};

// What the pages import (grid.js and the dashboard): URL under /vendor/ by name. An import map of the page maps
// the bare specifiers "chart.js" and "@kurkle/color" (chart.js imports the latter) to these.
const ENTRIES = {
    "perspective": "@perspective-dev/client/dist/cdn/perspective.js",
    "perspective-viewer": "@perspective-dev/viewer/dist/cdn/perspective-viewer.js",
    "perspective-viewer-wasm": "@perspective-dev/viewer/dist/wasm/perspective-viewer.wasm",
    "perspective-viewer-datagrid": "@perspective-dev/viewer-datagrid/dist/cdn/perspective-viewer-datagrid.js",
    "perspective-themes": "@perspective-dev/viewer/dist/css/themes.css",
    "perspective-server-wasm": "@perspective-dev/server/dist/wasm/perspective-server.wasm",
    "chart.js": "chart.js/dist/chart.js",
    "chart.js-umd": "chart.js/dist/chart.umd.min.js",
    "@kurkle/color": "@kurkle/color/dist/color.esm.js",
};

const skipped = (path) => /\.d\.ts$|\.cjs$|\.cjs\.map$/.test(path);

function check() {
    const missing = Object.values(ENTRIES).filter((file) => !existsSync(join(out, file)));
    if (missing.length) {
        console.error(`vendor: missing in ${relative(process.cwd(), out)}: ${missing.join(", ")} (run \`make web\`)`);
        process.exit(1);
    }
}

if (process.argv.includes("--check")) {
    check();
    process.exit(0);
}

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const versions = {};
for (const [pkg, parts] of Object.entries(PACKAGES)) {
    const root = join(modules, pkg);
    if (!existsSync(root)) {
        console.error(`vendor: ${pkg} is not installed in ${modules} (run \`npm ci --prefix web\`)`);
        process.exit(1);
    }
    versions[pkg] = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).version;
    for (const part of parts) {
        const from = join(root, part);
        if (!existsSync(from)) {
            console.error(`vendor: ${pkg} has no ${part}`);
            process.exit(1);
        }
        cpSync(from, join(out, pkg, part), { recursive: true, filter: (src) => !skipped(src) });
    }
}
writeFileSync(join(out, "manifest.json"), JSON.stringify({ versions, entries: ENTRIES }, null, 2) + "\n");
check();
console.log(`vendor: ${Object.keys(versions).length} packages → ${relative(process.cwd(), out)}`);
