// The pivot grid: a <perspective-viewer> on the caller's own Perspective server (/grid/ws), which holds only
// the rows the risk store's reports give that user (entitlements are applied on the server, never here).
//
//   import { mountGrid } from "/grid.js";
//   const grid = await mountGrid(document.getElementById("pivot"), token);        // table "risk"
//   await grid.show("diff");                                                       // day-over-day changes
//   await grid.close();
//
// The libraries come from /vendor (`make web` copies the npm builds there); no bundler, no import map needed.

const VENDOR = "/vendor/@perspective-dev";

export const URLS = Object.freeze({
    client: `${VENDOR}/client/dist/cdn/perspective.js`,
    viewer: `${VENDOR}/viewer/dist/cdn/perspective-viewer.js`,
    datagrid: `${VENDOR}/viewer-datagrid/dist/cdn/perspective-viewer-datagrid.js`,
    themes: `${VENDOR}/viewer/dist/css/themes.css`,
});

// Grid defaults. `risk` is long (one row per cell and measure): rows desk → book, one column per measure.
// `diff`: rows desk → book, each measure's change (latest − previous business date) and the latest value.
export const DEFAULTS = Object.freeze({
    risk: {
        title: "Risk by desk and book (latest business date)",
        plugin: "Datagrid",
        group_by: ["desk", "book"],
        split_by: ["measure"],
        columns: ["value"],
        aggregates: { value: "sum" },
        sort: [],
        filter: [],
    },
    diff: {
        title: "Day-over-day change (previous → latest business date)",
        plugin: "Datagrid",
        group_by: ["desk", "book"],
        split_by: [],
        sort: [["var_99_1d_contribution_sum_change", "desc"]],
        filter: [],
    },
});

let libraries = null;

function stylesheet(href) {
    if (!document.querySelector(`link[rel="stylesheet"][href="${href}"]`)) {
        const link = document.createElement("link");
        link.rel = "stylesheet";
        link.href = href;
        document.head.appendChild(link);
    }
}

/** Load the client, the viewer and the datagrid plugin once; resolves to the client module. */
export function loadPerspective() {
    if (!libraries) {
        stylesheet(URLS.themes);
        libraries = (async () => {
            const [client] = await Promise.all([import(URLS.client), import(URLS.viewer)]);
            await import(URLS.datagrid); // registers itself with <perspective-viewer>
            await customElements.whenDefined("perspective-viewer");
            await customElements.whenDefined("perspective-viewer-datagrid");
            return client;
        })();
        libraries.catch(() => {
            libraries = null; // a failed load may be retried
        });
    }
    return libraries;
}

function socketUrl(token) {
    const url = new URL("/grid/ws", window.location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    url.searchParams.set("access_token", token);
    return url.href;
}

async function configFor(client, table) {
    const config = { table, ...structuredClone(DEFAULTS[table] ?? { plugin: "Datagrid" }) };
    if (table === "diff") {
        // every measure's change and latest value, whatever measures the server's grid holds
        const schema = await (await client.open_table(table)).schema();
        const names = Object.keys(schema);
        const changes = names.filter((c) => c.endsWith("_change") && !c.endsWith("_pct_change"));
        config.columns = [...changes, ...names.filter((c) => c.endsWith("_right"))];
        config.aggregates = Object.fromEntries(config.columns.map((c) => [c, "sum"]));
        if (!changes.includes(config.sort[0]?.[0])) config.sort = [];
    }
    return config;
}

/**
 * Mount a pivot grid of the caller's `table` ("risk" or "diff") in `element`.
 *
 * @param {HTMLElement} element where the viewer goes (its children are replaced)
 * @param {string} token the caller's access token (JWT), sent as ?access_token= on the socket
 * @param {string} table "risk" or "diff"
 * @returns {Promise<{viewer: HTMLElement, client: object, show: (table: string) => Promise<void>,
 *   close: () => Promise<void>}>}
 */
export async function mountGrid(element, token, table = "risk") {
    const perspective = await loadPerspective();
    const client = await perspective.websocket(socketUrl(token));
    const viewer = document.createElement("perspective-viewer");
    viewer.setAttribute("data-testid", "grid-viewer");
    viewer.setAttribute("theme", "Pro Light");
    viewer.style.display = "block";
    viewer.style.width = "100%";
    viewer.style.height = "100%";
    viewer.style.minHeight = "400px";
    element.replaceChildren(viewer);
    await viewer.load(client);

    const show = async (name) => {
        await viewer.restore(await configFor(client, name));
        viewer.dataset.table = name;
    };
    await show(table);
    return {
        viewer,
        client,
        show,
        async close() {
            await viewer.delete();
            viewer.remove();
            await client.terminate?.();
        },
    };
}
