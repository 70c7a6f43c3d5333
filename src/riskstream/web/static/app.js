// riskstream dashboard: login (development identity provider), live risk tree over /ws/live, node detail
// (intraday VaR/ES, scenario P&L distribution, top contributors), pivot grid and standard reports, stress
// heat-table and VaR back-test. Plain ES module, no bundler; Chart.js and the Perspective viewer come from
// /vendor (web/vendor.mjs).
//
// Conventions shown on screen: VaR and ES are positive losses in the reporting currency; P&L is positive for a
// gain, so the distribution marks VaR and ES at −VaR and −ES; utilisation = VaR / limit.

const TOKEN_KEY = "riskstream.token";
const THEME_KEY = "riskstream.theme";
const DETAIL_REFRESH_MS = 4000;
const STALE_AFTER_MS = 5000;
const MAX_ALERTS = 200;
const BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 15000];

// ---------------------------------------------------------------------------------------------------------
// Formatting

const fmt0 = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
const fmt2 = new Intl.NumberFormat("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const fmtPct1 = new Intl.NumberFormat("en-US", { style: "percent", minimumFractionDigits: 1, maximumFractionDigits: 1 });
const fmtPct2 = new Intl.NumberFormat("en-US", { style: "percent", minimumFractionDigits: 2, maximumFractionDigits: 2 });
const fmtCompact = new Intl.NumberFormat("en-US", { notation: "compact", maximumFractionDigits: 1 });
// Axis ticks: enough digits that neighbouring ticks of a narrow range still differ.
const fmtTick = new Intl.NumberFormat("en-US", { notation: "compact", maximumSignificantDigits: 4 });

const isNum = (v) => typeof v === "number" && Number.isFinite(v);
const money = (v) => (isNum(v) ? fmt0.format(v) : "—");
const pct = (v) => (isNum(v) ? fmtPct1.format(v) : "—");
const compact = (v) => (isNum(v) ? fmtCompact.format(v) : "—");

function timeOf(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return d.toLocaleTimeString("en-GB", { hour12: false });
}

/** CLEAR / WARNING / BREACH from the service's limit state (``ok``/``clear``/``warning``/``breach``, any case). */
function limitState(raw) {
  const s = String(raw ?? "").toUpperCase();
  if (s === "BREACH") return "BREACH";
  if (s === "WARNING" || s === "WARN") return "WARNING";
  if (s === "" || s === "NONE" || s === "NULL" || s === "UNDEFINED") return "NONE";
  return "CLEAR";
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(node.dataset, v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c);
  return node;
}

const $ = (id) => document.getElementById(id);
const cssVar = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

// ---------------------------------------------------------------------------------------------------------
// Toasts and API

function toast(message, kind = "error") {
  const box = $("toasts");
  const t = el("div", { class: `toast toast-${kind}`, "data-testid": "toast", role: "status" }, message);
  t.addEventListener("click", () => t.remove());
  box.prepend(t);
  while (box.children.length > 5) box.lastChild.remove();
  setTimeout(() => t.classList.add("toast-out"), 6000);
  setTimeout(() => t.remove(), 6600);
}

class ApiError extends Error {
  constructor(status, body) {
    super(body?.reason || body?.error || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

const state = {
  token: sessionStorage.getItem(TOKEN_KEY),
  me: null,
  nodes: new Map(), // id -> {id, name, level, parent, positions, children: []}
  roots: [],
  live: new Map(), // id -> latest live row
  updated: new Map(), // id -> ISO time of the snapshot that last changed it
  expanded: new Set(),
  selected: null,
  alerts: [],
  ws: null,
  wsAttempt: 0,
  wsTimer: null,
  lastSnapshotAt: 0,
  asOf: null,
  timers: [],
  charts: {},
  tab: "live",
  grid: null,
  gridTable: "risk",
  reportsLoaded: false,
  stressLoaded: false,
  btLoaded: false,
  detailSeq: 0,
  epoch: 0, // bumped at logout so late responses of a previous session are dropped
};

/** fetch against the service: JSON in and out; 401 → back to the login screen; errors → toast + ApiError. */
async function api(path, { method = "GET", json, form, quiet = false } = {}) {
  const headers = { Accept: "application/json" };
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form !== undefined) {
    body = new URLSearchParams(form);
  }
  const epoch = state.epoch;
  let resp;
  try {
    resp = await fetch(path, { method, headers, body });
  } catch (exc) {
    if (!quiet) toast(`Service unreachable: ${exc.message}`);
    throw new ApiError(0, { error: "network", reason: exc.message });
  }
  let data = null;
  const text = await resp.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { error: "http_error", reason: text.slice(0, 200) };
    }
  }
  if (epoch !== state.epoch) throw new ApiError(0, { error: "stale", reason: "session changed" });
  if (!resp.ok) {
    const err = new ApiError(resp.status, data);
    if (resp.status === 401 && state.token) {
      logout(`Session ended: ${err.message}`);
    } else if (!quiet) {
      toast(err.message);
    }
    throw err;
  }
  return data;
}

// ---------------------------------------------------------------------------------------------------------
// Login / logout

async function showLogin(message) {
  $("app").hidden = true;
  $("login").hidden = false;
  const err = $("login-error");
  err.hidden = !message;
  err.textContent = message || "";
  const select = $("login-user");
  if (!select.options.length) {
    try {
      const users = normaliseUsers(await api("/auth/dev/users", { quiet: true }));
      for (const u of users) select.append(el("option", { value: u.user, dataset: { desc: u.description || "" } }, u.user));
      const last = localStorage.getItem("riskstream.lastUser");
      if (last && users.some((u) => u.user === last)) select.value = last;
      describeUser();
    } catch (exc) {
      err.hidden = false;
      err.textContent = `The development identity provider is not available: ${exc.message}`;
    }
  }
  $("login-password").focus();
}

function normaliseUsers(data) {
  const list = Array.isArray(data) ? data : data?.users ?? data;
  if (Array.isArray(list)) {
    return list.map((u) => (typeof u === "string" ? { user: u } : { user: u.user ?? u.username ?? u.name, description: u.description ?? u.desc ?? "" }));
  }
  if (list && typeof list === "object") return Object.entries(list).map(([user, description]) => ({ user, description: String(description) }));
  return [];
}

function describeUser() {
  const opt = $("login-user").selectedOptions[0];
  $("login-desc").textContent = opt?.dataset.desc || "";
}

async function login(event) {
  event.preventDefault();
  const user = $("login-user").value;
  const password = $("login-password").value;
  const err = $("login-error");
  err.hidden = true;
  $("login-button").disabled = true;
  try {
    const resp = await fetch("/auth/dev/token", {
      method: "POST",
      headers: { Accept: "application/json" },
      body: new URLSearchParams({ grant_type: "password", username: user, password }),
    });
    const data = await resp.json().catch(() => ({}));
    if (!resp.ok || !data.access_token) {
      err.textContent = data.reason || data.error_description || data.error || `Sign-in failed (HTTP ${resp.status})`;
      err.hidden = false;
      return;
    }
    state.token = data.access_token;
    sessionStorage.setItem(TOKEN_KEY, state.token);
    localStorage.setItem("riskstream.lastUser", user);
    $("login-password").value = "";
    await start();
  } catch (exc) {
    err.textContent = `Sign-in failed: ${exc.message}`;
    err.hidden = false;
  } finally {
    $("login-button").disabled = false;
  }
}

function logout(message) {
  state.epoch += 1;
  sessionStorage.removeItem(TOKEN_KEY);
  state.token = null;
  state.me = null;
  stopLive();
  teardownViews();
  showLogin(message);
}

// ---------------------------------------------------------------------------------------------------------
// Start: identity, hierarchy, first live values, socket

async function start() {
  state.me = await api("/auth/me");
  $("whoami").textContent = `logged in as ${state.me.user} (${rolesOf(state.me).join(", ") || "no role"})`;
  $("login").hidden = true;
  $("app").hidden = false;
  selectTab(state.tab === "live" ? "live" : state.tab);
  await loadHierarchy();
  try {
    const live = await api("/api/v1/live");
    applySnapshot(live);
    const alerts = Array.isArray(live.alerts) ? live.alerts : [];
    for (const a of alerts.slice().reverse()) addAlert(a, false);
  } catch {
    /* the socket fills in */
  }
  connectLive();
  state.timers.push(setInterval(tickStatus, 1000));
}

function rolesOf(me) {
  const roles = me.roles ?? me.role ?? [];
  const list = Array.isArray(roles) ? roles : [roles];
  return list.map((r) => (typeof r === "string" ? r : r.name ?? r.role ?? JSON.stringify(r)));
}

async function loadHierarchy() {
  const data = await api("/api/v1/hierarchy");
  state.nodes.clear();
  for (const n of data.nodes || []) state.nodes.set(n.id, { ...n, children: [] });
  state.roots = [];
  for (const n of state.nodes.values()) {
    const parent = n.parent && state.nodes.get(n.parent);
    if (parent) parent.children.push(n);
    else state.roots.push(n);
  }
  const order = (a, b) => a.name.localeCompare(b.name);
  for (const n of state.nodes.values()) n.children.sort(order);
  state.roots.sort(order);
  state.expanded = new Set(state.roots.map((r) => r.id));
  // A single desk (a trader) opens down to its books.
  if (state.roots.length === 1) for (const c of state.roots[0].children) if (c.children.length && state.roots[0].children.length <= 3) state.expanded.add(c.id);
  $("tree-count").textContent = `${fmt0.format(state.nodes.size)} nodes`;
  renderTree();
}

// ---------------------------------------------------------------------------------------------------------
// Tree

function depthOf(node) {
  let d = 0;
  for (let p = state.nodes.get(node.parent); p; p = state.nodes.get(p.parent)) d += 1;
  return d;
}

function visibleOrder() {
  const out = [];
  const walk = (n) => {
    out.push(n);
    if (state.expanded.has(n.id)) for (const c of n.children) walk(c);
  };
  for (const r of state.roots) walk(r);
  return out;
}

function renderTree() {
  const body = $("tree-body");
  body.replaceChildren();
  const rows = visibleOrder();
  $("tree-empty").hidden = rows.length > 0;
  for (const n of rows) body.append(treeRow(n));
  for (const n of rows) paintRow(n.id, false);
}

function treeRow(n) {
  const depth = depthOf(n);
  const hasKids = n.children.length > 0;
  const open = state.expanded.has(n.id);
  const caret = el(
    "button",
    {
      class: `caret${hasKids ? "" : " caret-leaf"}`,
      "data-testid": "toggle",
      "aria-label": open ? "collapse" : "expand",
      tabindex: "-1",
      onclick: (e) => {
        e.stopPropagation();
        if (hasKids) toggle(n.id);
      },
    },
    hasKids ? (open ? "▾" : "▸") : "",
  );
  const tr = el(
    "tr",
    {
      class: `tree-row lvl-${n.level}${state.selected === n.id ? " selected" : ""}`,
      "data-node": n.id,
      "data-level": n.level,
      "data-testid": "tree-row",
      tabindex: "0",
      "aria-expanded": hasKids ? String(open) : null,
      onclick: () => select(n.id),
      ondblclick: () => hasKids && toggle(n.id),
      onkeydown: (e) => treeKey(e, n),
    },
    el(
      "td",
      { class: "col-node", style: `--depth:${depth}` },
      caret,
      el("span", { class: `lvl-tag lvl-tag-${n.level}`, text: levelTag(n.level) }),
      el("span", { class: "node-name", text: n.name, title: n.id }),
    ),
    el("td", { class: "num muted", text: isNum(n.positions) ? fmt0.format(n.positions) : "" }),
    el("td", { class: "num muted", "data-testid": "pv" }),
    el("td", { class: "num strong", "data-testid": "var" }),
    el("td", { class: "num", "data-testid": "es" }),
    el("td", { class: "num muted", "data-testid": "limit" }),
    el(
      "td",
      { class: "col-util", "data-testid": "util" },
      el("div", { class: "util" }, el("div", { class: "util-track" }, el("div", { class: "util-bar" }), el("i", { class: "util-warn" }), el("i", { class: "util-max" })), el("span", { class: "util-txt" })),
    ),
    el("td", { "data-testid": "state" }, el("span", { class: "pill" })),
    el("td", { class: "num muted small", "data-testid": "updated" }),
  );
  return tr;
}

function levelTag(level) {
  return { firm: "F", desk: "D", book: "B", trader: "T" }[level] || String(level || "?").slice(0, 1).toUpperCase();
}

function rowOf(id) {
  return $("tree-body").querySelector(`tr[data-node="${CSS.escape(id)}"]`);
}

function paintRow(id, flash = true) {
  const tr = rowOf(id);
  if (!tr) return;
  const r = state.live.get(id);
  const cell = (name) => tr.querySelector(`td[data-testid="${name}"]`);
  const varCell = cell("var");
  const before = varCell.textContent;
  const text = money(r?.var);
  varCell.textContent = text;
  cell("pv").textContent = money(r?.pv);
  cell("es").textContent = money(r?.es);
  cell("limit").textContent = money(r?.limit);
  const st = limitState(r?.state);
  const util = utilisationOf(r);
  const utilCell = cell("util");
  utilCell.querySelector(".util-bar").style.width = isNum(util) ? `${(Math.min(Math.max(util, 0), 1.25) / 1.25) * 100}%` : "0";
  utilCell.dataset.state = st;
  utilCell.querySelector(".util-txt").textContent = isNum(util) ? pct(util) : "";
  const pill = cell("state").firstChild;
  pill.textContent = st === "NONE" ? "" : st;
  pill.className = `pill pill-${st.toLowerCase()}`;
  tr.dataset.state = st;
  cell("updated").textContent = timeOf(state.updated.get(id));
  const prevVar = parseFloat(before.replaceAll(",", ""));
  // Flash moves of at least 0.1 %: a snapshot arrives every half second and smaller moves would flicker.
  if (flash && isNum(prevVar) && isNum(r?.var) && Math.abs(r.var - prevVar) >= 0.001 * Math.abs(prevVar)) {
    const up = prevVar < r.var;
    varCell.classList.remove("flash-up", "flash-down");
    void varCell.offsetWidth; // restart the animation
    varCell.classList.add(up ? "flash-up" : "flash-down");
  }
}

/** VaR / limit of a live row (the service's own figure when it sends one). */
function utilisationOf(r) {
  if (!r) return null;
  if (isNum(r.utilisation)) return r.utilisation;
  return isNum(r.var) && isNum(r.limit) && r.limit > 0 ? r.var / r.limit : null;
}

function toggle(id, open) {
  const want = open ?? !state.expanded.has(id);
  if (want) state.expanded.add(id);
  else state.expanded.delete(id);
  renderTree();
  rowOf(id)?.focus({ preventScroll: true });
}

function treeKey(e, n) {
  const rows = [...$("tree-body").rows];
  const i = rows.findIndex((r) => r.dataset.node === n.id);
  const go = (j) => rows[Math.max(0, Math.min(rows.length - 1, j))]?.focus();
  if (e.key === "ArrowDown") go(i + 1);
  else if (e.key === "ArrowUp") go(i - 1);
  else if (e.key === "ArrowRight" && n.children.length) toggle(n.id, true);
  else if (e.key === "ArrowLeft") {
    if (state.expanded.has(n.id) && n.children.length) toggle(n.id, false);
    else if (n.parent && state.nodes.has(n.parent)) rowOf(n.parent)?.focus();
  } else if (e.key === "Enter" || e.key === " ") select(n.id);
  else return;
  e.preventDefault();
}

function expandAll(open) {
  if (open) {
    for (const n of state.nodes.values()) if (n.children.length) state.expanded.add(n.id);
  } else {
    state.expanded = new Set(state.roots.map((r) => r.id));
  }
  renderTree();
}

// ---------------------------------------------------------------------------------------------------------
// Live: snapshots and alerts over the socket

function applySnapshot(msg) {
  const rows = msg.nodes || [];
  const asOf = msg.as_of || null;
  for (const r of rows) {
    const id = r.node ?? r.id;
    const prev = state.live.get(id);
    state.live.set(id, r);
    const at = isNum(r.as_of_us) ? new Date(r.as_of_us / 1000).toISOString() : asOf;
    if (!prev || prev.var !== r.var || prev.es !== r.es || !state.updated.has(id)) state.updated.set(id, at);
    paintRow(id, true);
  }
  if (asOf) {
    state.asOf = asOf;
    $("asof").textContent = timeOf(asOf);
  }
  state.lastSnapshotAt = Date.now();
  if (state.selected) paintKpis();
}

function addAlert(a, fresh = true) {
  state.alerts.unshift(a);
  if (state.alerts.length > MAX_ALERTS) state.alerts.length = MAX_ALERTS;
  const st = limitState(a.state);
  const li = el(
    "li",
    { class: `alert alert-${st.toLowerCase()}${fresh ? " alert-new" : ""}`, "data-testid": "alert", "data-node": a.node, onclick: () => reveal(a.node) },
    el("span", { class: "alert-time", text: timeOf(a.as_of) }),
    el("span", { class: `pill pill-${st.toLowerCase()}`, text: st }),
    el("span", { class: "alert-node", text: a.node, title: a.node }),
    el("span", { class: "alert-measure muted", text: a.measure || "" }),
    el("span", { class: "alert-val num", text: `${compact(a.value)} / ${compact(a.limit)}` }),
    el("span", { class: "alert-util num", text: pct(a.utilisation) }),
  );
  const list = $("alerts");
  list.prepend(li);
  while (list.children.length > MAX_ALERTS) list.lastChild.remove();
  $("alert-count").textContent = fmt0.format(list.children.length);
  $("alert-count").dataset.state = st;
}

function connectLive() {
  if (!state.token) return;
  clearTimeout(state.wsTimer);
  const proto = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${proto}://${location.host}/ws/live?access_token=${encodeURIComponent(state.token)}`);
  state.ws = ws;
  setConn("connecting", "connecting");
  ws.onopen = () => setConn("connecting", "subscribed");
  ws.onmessage = (ev) => {
    let msg;
    try {
      msg = JSON.parse(ev.data);
    } catch {
      return;
    }
    if (msg.type === "snapshot") {
      state.wsAttempt = 0;
      applySnapshot(msg);
      setConn("live", "live");
    } else if (msg.type === "alert") {
      addAlert(msg.alert ?? msg, true);
    } else if (msg.type === "error") {
      toast(msg.reason || "live feed error");
    }
  };
  ws.onclose = async (ev) => {
    if (state.ws !== ws) return; // replaced or stopped
    state.ws = null;
    // A policy close (1008 or 44xx) means the token was refused: check it once before retrying.
    if (ev.code === 1008 || (ev.code >= 4400 && ev.code < 4500)) {
      try {
        await api("/auth/me", { quiet: true });
      } catch {
        return; // api() has sent the user back to the login screen on 401
      }
    }
    scheduleReconnect();
  };
}

function scheduleReconnect() {
  if (!state.token) return;
  const base = BACKOFF_MS[Math.min(state.wsAttempt, BACKOFF_MS.length - 1)];
  const delay = Math.round(base * (0.8 + Math.random() * 0.4));
  state.wsAttempt += 1;
  const due = Date.now() + delay;
  setConn("down", `reconnecting in ${Math.ceil(delay / 1000)} s`);
  state.reconnectDue = due;
  state.wsTimer = setTimeout(connectLive, delay);
}

function setConn(kind, text) {
  const c = $("conn");
  c.dataset.state = kind;
  c.lastChild.textContent = text;
}

function tickStatus() {
  const c = $("conn");
  if (c.dataset.state === "live" && Date.now() - state.lastSnapshotAt > STALE_AFTER_MS) setConn("stale", "stale");
  if (c.dataset.state === "down" && state.reconnectDue) {
    setConn("down", `reconnecting in ${Math.max(0, Math.ceil((state.reconnectDue - Date.now()) / 1000))} s`);
  }
}

function stopLive() {
  clearTimeout(state.wsTimer);
  const ws = state.ws;
  state.ws = null;
  if (ws) ws.close(1000, "logout");
  for (const t of state.timers) clearInterval(t);
  state.timers = [];
}

// ---------------------------------------------------------------------------------------------------------
// Selected node: KPIs, intraday series, distribution, contributors

function reveal(id) {
  if (!state.nodes.has(id)) return;
  for (let p = state.nodes.get(state.nodes.get(id).parent); p; p = state.nodes.get(p.parent)) state.expanded.add(p.id);
  selectTab("live");
  renderTree();
  select(id);
  rowOf(id)?.scrollIntoView({ block: "nearest" });
}

function select(id) {
  if (state.selected !== id) {
    rowOf(state.selected)?.classList.remove("selected");
    state.selected = id;
    rowOf(id)?.classList.add("selected");
    clearInterval(state.detailTimer);
    state.detailTimer = setInterval(() => refreshDetail(false), DETAIL_REFRESH_MS);
  }
  rowOf(id)?.focus({ preventScroll: true });
  $("detail-empty").hidden = true;
  $("detail-body").hidden = false;
  $("detail").dataset.node = id;
  const n = state.nodes.get(id);
  $("detail-title").textContent = n?.name ?? id;
  const crumbs = $("crumbs");
  crumbs.replaceChildren();
  const chain = [];
  for (let p = n; p; p = state.nodes.get(p.parent)) chain.unshift(p);
  chain.forEach((p, i) => {
    if (i) crumbs.append(el("span", { class: "crumb-sep", text: "›" }));
    crumbs.append(el("a", { href: "#", class: "crumb", text: p.name, onclick: (e) => (e.preventDefault(), reveal(p.id)) }));
  });
  paintKpis();
  refreshDetail(true);
}

function paintKpis() {
  const id = state.selected;
  const n = state.nodes.get(id);
  const r = state.live.get(id) || {};
  const st = limitState(r.state);
  const util = utilisationOf(r);
  const kpi = (label, value, cls = "", testid) => el("div", { class: `kpi ${cls}`, "data-testid": testid }, el("span", { class: "kpi-label", text: label }), el("span", { class: "kpi-value", text: value }));
  const conf = state.confLabels || {};
  $("kpis").replaceChildren(
    kpi(`VaR${conf.var ? " " + conf.var : ""}`, money(r.var), "kpi-main", "kpi-var"),
    kpi(`ES${conf.es ? " " + conf.es : ""}`, money(r.es), "", "kpi-es"),
    kpi("Limit", money(r.limit), "", "kpi-limit"),
    kpi("Utilisation", pct(util), `kpi-state-${st.toLowerCase()}`, "kpi-util"),
    kpi("State", st === "NONE" ? "—" : st, `kpi-state-${st.toLowerCase()}`, "kpi-state"),
    kpi("Positions", isNum(n?.positions) ? fmt0.format(n.positions) : "—", "", "kpi-positions"),
  );
}

async function refreshDetail(first) {
  const id = state.selected;
  if (!id || state.tab !== "live" || !state.token) return;
  const seq = ++state.detailSeq;
  const path = `/api/v1/live/nodes/${id.split("/").map(encodeURIComponent).join("/")}`;
  const quiet = !first; // a failing periodic refresh toasts once, at selection
  const [series, dist, contrib] = await Promise.allSettled([
    api(`${path}/series?points=600`, { quiet }),
    api(`${path}/distribution?bins=50`, { quiet }),
    api(`${path}/contributors?top=10`, { quiet }),
  ]);
  if (seq !== state.detailSeq || id !== state.selected) return;
  const Chart = await loadChart();
  if (series.status === "fulfilled") drawSeries(Chart, series.value);
  if (dist.status === "fulfilled") drawDistribution(Chart, dist.value);
  if (contrib.status === "fulfilled") drawContributors(contrib.value);
}

function drawSeries(Chart, s) {
  const labels = (s.t || []).map(timeOf);
  const canvas = $("chart-series");
  const data = {
    labels,
    datasets: [
      { label: "VaR", data: s.var || [], borderColor: cssVar("--accent"), backgroundColor: cssVar("--accent-fill"), fill: true, borderWidth: 1.5, pointRadius: 0, tension: 0.15 },
      { label: "ES", data: s.es || [], borderColor: cssVar("--es"), borderWidth: 1.5, pointRadius: 0, tension: 0.15, borderDash: [4, 3] },
    ],
  };
  const limit = state.live.get(s.node)?.limit;
  if (isNum(limit)) data.datasets.push({ label: "Limit", data: labels.map(() => limit), borderColor: cssVar("--breach"), borderWidth: 1, pointRadius: 0, borderDash: [2, 2] });
  upsertChart(Chart, "series", canvas, {
    type: "line",
    data,
    options: baseOptions({
      scales: { x: { ticks: { maxTicksLimit: 5, autoSkip: true, maxRotation: 0 } }, y: { ticks: { callback: (v) => fmtTick.format(v) } } },
      plugins: { tooltip: { mode: "index", intersect: false, callbacks: { label: (c) => `${c.dataset.label}: ${money(c.parsed.y)}` } } },
      interaction: { mode: "index", intersect: false },
    }),
  });
  canvas.dataset.points = String(labels.length);
  $("series-note").textContent = labels.length ? `${fmt0.format(labels.length)} points since ${labels[0]}` : "no points yet";
}

/** Vertical marker lines at data values of the x scale: [{value, label, color}] in options.plugins.markers. */
const markerPlugin = {
  id: "markers",
  afterDatasetsDraw(chart, _args, opts) {
    const { ctx, chartArea, scales } = chart;
    for (const m of opts?.lines || []) {
      if (!isNum(m.value)) continue;
      const x = scales.x.getPixelForValue(m.value);
      if (x < chartArea.left || x > chartArea.right) continue;
      ctx.save();
      ctx.strokeStyle = m.color;
      ctx.lineWidth = 1.5;
      ctx.setLineDash(m.dash || []);
      ctx.beginPath();
      ctx.moveTo(x, chartArea.top);
      ctx.lineTo(x, chartArea.bottom);
      ctx.stroke();
      ctx.setLineDash([]);
      ctx.fillStyle = m.color;
      ctx.font = "600 11px system-ui, sans-serif";
      ctx.textAlign = m.align || "right";
      ctx.fillText(m.label, x + (m.align === "left" ? 4 : -4), chartArea.top + 12 + (m.row || 0) * 14);
      ctx.restore();
    }
  },
};

function drawDistribution(Chart, d) {
  const edges = d.edges || [];
  const counts = d.counts || [];
  const points = counts.map((c, i) => ({ x: (edges[i] + edges[i + 1]) / 2, y: c }));
  const varLoss = -d.var;
  const esLoss = -d.es;
  const width = edges.length > 1 ? Math.abs(edges[1] - edges[0]) : 1;
  const tail = cssVar("--breach");
  const body = cssVar("--bar");
  const confVar = isNum(d.confidence) ? `${+(d.confidence * 100).toFixed(2)}%` : "";
  const confEs = isNum(d.es_confidence) ? `${+(d.es_confidence * 100).toFixed(2)}%` : "";
  state.confLabels = { var: confVar, es: confEs };
  $("th-var").textContent = confVar ? `VaR ${confVar}` : "VaR";
  $("th-es").textContent = confEs ? `ES ${confEs}` : "ES";
  const canvas = $("chart-dist");
  upsertChart(Chart, "dist", canvas, {
    type: "bar",
    data: {
      datasets: [
        {
          label: "scenarios",
          data: points,
          backgroundColor: points.map((p) => (isNum(varLoss) && p.x <= varLoss ? tail : body)),
          barPercentage: 1,
          categoryPercentage: 1,
          borderWidth: 0,
        },
      ],
    },
    options: baseOptions({
      scales: {
        x: { type: "linear", offset: false, min: edges[0], max: edges[edges.length - 1], ticks: { callback: (v) => compact(v), maxTicksLimit: 8 } },
        y: { beginAtZero: true, ticks: { precision: 0 } },
      },
      plugins: {
        legend: { display: false },
        tooltip: { callbacks: { title: (items) => `P&L ${money(items[0].parsed.x - width / 2)} … ${money(items[0].parsed.x + width / 2)}`, label: (c) => `${c.parsed.y} scenarios` } },
        markers: {
          lines: [
            { value: varLoss, label: `−VaR ${confVar} ${compact(d.var)}`, color: cssVar("--warning"), align: "left", row: 0 },
            { value: esLoss, label: `−ES ${confEs} ${compact(d.es)}`, color: cssVar("--breach"), dash: [4, 3], align: "left", row: 1 },
          ],
        },
      },
    }),
  });
  canvas.dataset.points = String(counts.length);
  canvas.dataset.var = String(d.var);
  $("dist-note").textContent = isNum(d.scenarios) ? `${fmt0.format(d.scenarios)} scenarios · gain > 0` : "gain > 0";
  paintKpis();
}

function drawContributors(c) {
  const fill = (tbodyId, rows, key, total) => {
    const tb = $(tbodyId);
    tb.replaceChildren();
    for (const r of rows || []) {
      const share = isNum(r.share) ? r.share : isNum(r.var) && isNum(total) && total ? r.var / total : null;
      const name = r[key] ?? r.id ?? r.factor ?? r.name;
      tb.append(
        el(
          "tr",
          { "data-testid": "contributor" },
          el("td", { class: "ellipsis", title: String(name), text: String(name) }),
          el("td", { class: `num ${r.var < 0 ? "neg-good" : ""}`, text: money(r.var) }),
          el("td", { class: "num muted", text: money(r.es) }),
          el(
            "td",
            { class: "col-share" },
            el("div", { class: "share" }, el("div", { class: `share-bar${share < 0 ? " share-neg" : ""}`, style: `width:${Math.min(Math.abs(share ?? 0), 1) * 100}%` }), el("span", { text: pct(share) })),
          ),
        ),
      );
    }
    if (!tb.children.length) tb.append(el("tr", {}, el("td", { colspan: "4", class: "muted", text: "no contributors" })));
  };
  fill("contrib-positions", c.positions, "id", c.var);
  fill("contrib-factors", c.factors, "factor", c.var);
  const u = c.unexplained;
  $("contrib-unexplained").textContent = u && (isNum(u.var) || isNum(u.share)) ? `Not attributed to the listed factors: VaR ${money(u.var)}${isNum(u.share) ? ` (${pct(u.share)})` : ""}` : "";
}

// ---------------------------------------------------------------------------------------------------------
// Charts

let chartModule = null;
async function loadChart() {
  if (!chartModule) {
    chartModule = import("chart.js").then(({ Chart, registerables }) => {
      Chart.register(...registerables, markerPlugin);
      return Chart;
    });
    chartModule.catch((exc) => {
      chartModule = null;
      toast(`Charts unavailable (Chart.js not found under /vendor: run \`make web\`): ${exc.message}`);
    });
  }
  return chartModule;
}

function baseOptions(extra) {
  const grid = cssVar("--grid-line");
  const text = cssVar("--text-dim");
  const merge = (a, b) => {
    for (const [k, v] of Object.entries(b)) a[k] = v && typeof v === "object" && !Array.isArray(v) && a[k] && typeof a[k] === "object" ? merge(a[k], v) : v;
    return a;
  };
  return merge(
    {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      color: text,
      scales: { x: { grid: { color: grid }, ticks: { color: text, font: { size: 10 } } }, y: { grid: { color: grid }, ticks: { color: text, font: { size: 10 } } } },
      plugins: { legend: { labels: { color: text, boxWidth: 12, font: { size: 11 } } } },
    },
    extra,
  );
}

function upsertChart(Chart, key, canvas, config) {
  const existing = state.charts[key];
  if (existing && existing.config.type === config.type && existing.canvas === canvas) {
    existing.data = config.data;
    existing.options = config.options;
    existing.update("none");
  } else {
    existing?.destroy();
    state.charts[key] = new Chart(canvas, config);
  }
  canvas.dataset.ready = "1";
}

function destroyCharts() {
  for (const c of Object.values(state.charts)) c.destroy();
  state.charts = {};
}

// ---------------------------------------------------------------------------------------------------------
// Tabs

function selectTab(tab) {
  state.tab = tab;
  for (const b of document.querySelectorAll(".tab")) b.setAttribute("aria-selected", String(b.dataset.tab === tab));
  for (const v of document.querySelectorAll(".view")) v.hidden = v.dataset.view !== tab;
  if (tab === "live" && state.selected) refreshDetail(false);
  if (tab === "pivot") openPivot();
  if (tab === "stress") openStress();
  if (tab === "backtest") openBacktest();
}

function teardownViews() {
  clearInterval(state.detailTimer);
  destroyCharts();
  state.grid?.close?.();
  state.grid = null;
  $("grid-host").replaceChildren();
  state.nodes.clear();
  state.roots = [];
  state.live.clear();
  state.updated.clear();
  state.selected = null;
  state.alerts = [];
  state.reportsLoaded = state.stressLoaded = state.btLoaded = false;
  $("tree-body").replaceChildren();
  $("alerts").replaceChildren();
  $("alert-count").textContent = "0";
  $("detail-empty").hidden = false;
  $("detail-body").hidden = true;
  $("report-select").replaceChildren();
  for (const id of ["diff-table", "stress-table"]) for (const part of $(id).children) part.replaceChildren();
  $("scenario-list").replaceChildren();
  $("bt-side").replaceChildren();
  $("whoami").textContent = "";
  $("asof").textContent = "—";
  state.tab = "live";
}

// ---------------------------------------------------------------------------------------------------------
// Pivot grid (grid.js) and standard reports

async function openPivot() {
  if (!state.grid) mountPivot(state.gridTable);
  if (!state.reportsLoaded) {
    state.reportsLoaded = true;
    try {
      const reports = await api("/api/v1/reports");
      const list = Array.isArray(reports) ? reports : reports.reports || [];
      const select = $("report-select");
      select.replaceChildren();
      for (const r of list) select.append(el("option", { value: r.name, title: r.title || "" }, `${r.title || r.name}${r.kind ? ` · ${r.kind}` : ""}`));
      const diff = list.find((r) => r.name === "day_over_day") || list.find((r) => r.kind === "diff");
      if (diff) select.value = diff.name;
      if (select.value) runReport();
    } catch {
      state.reportsLoaded = false;
    }
  }
}

async function mountPivot(table) {
  const host = $("grid-host");
  state.gridTable = table;
  for (const b of document.querySelectorAll(".seg-btn")) b.setAttribute("aria-pressed", String(b.dataset.table === table));
  host.dataset.table = table;
  try {
    if (state.grid?.show) {
      await state.grid.show(table);
    } else {
      delete host.dataset.ready;
      host.replaceChildren(el("div", { class: "grid-loading", text: `loading ${table} …` }));
      const epoch = state.epoch;
      const { mountGrid } = await import("./grid.js");
      const grid = await mountGrid(host, state.token, table);
      if (epoch !== state.epoch) return grid?.close?.(); // signed out meanwhile
      state.grid = grid;
    }
    themeGrid();
    host.dataset.ready = "1";
  } catch (exc) {
    state.grid = null;
    host.replaceChildren(el("div", { class: "grid-loading", text: `Pivot grid unavailable: ${exc.message || exc}` }));
    toast(`Pivot grid: ${exc.reason || exc.message || exc}`);
  }
}

/** The viewer follows the page's theme. */
function themeGrid() {
  const viewer = state.grid?.viewer;
  if (!viewer) return;
  const theme = document.documentElement.dataset.theme === "light" ? "Pro Light" : "Pro Dark";
  viewer.setAttribute("theme", theme);
  viewer.restore?.({ theme }).catch(() => {});
}

async function runReport() {
  const name = $("report-select").value;
  if (!name) return;
  const table = $("diff-table");
  table.dataset.report = name;
  delete table.dataset.ready;
  $("report-meta").textContent = "running …";
  let res;
  const started = performance.now();
  try {
    res = await api(`/api/v1/reports/${encodeURIComponent(name)}/run`);
  } catch (exc) {
    $("report-meta").textContent = exc.message;
    return;
  }
  const ms = performance.now() - started;
  const cols = res.columns || [];
  const head = el("tr", {}, cols.map((c) => el("th", { class: numericColumn(res.rows, cols.indexOf(c)) ? "num" : "", text: headerLabel(c), title: c })));
  table.tHead.replaceChildren(head);
  const body = table.tBodies[0];
  body.replaceChildren();
  for (const row of res.rows || []) {
    body.append(
      el(
        "tr",
        { "data-testid": "report-row" },
        row.map((v, i) => {
          const c = cols[i];
          if (isNum(v)) {
            const change = /change|diff|delta/.test(c);
            const isPct = /pct/.test(c);
            // A rise in a risk measure (VaR, ES) is the adverse move; for values (PV, P&L) a fall is.
            const good = /(^|_)(var|es)(_|$)/.test(c) ? v < 0 : v > 0;
            return el("td", { class: `num${change && v !== 0 ? (good ? " pos" : " neg") : ""}`, text: isPct ? `${fmt2.format(v)}%` : Math.abs(v) < 100 && !Number.isInteger(v) ? fmt2.format(v) : money(v) });
          }
          return el("td", { class: v === null ? "masked" : "", text: v === null ? "" : String(v), title: v === null ? "masked or not available" : null });
        }),
      ),
    );
  }
  table.dataset.ready = "1";
  const bits = [res.kind, res.business_date && `business date ${res.business_date}`, res.version !== undefined && `version ${res.version}`, `${fmt0.format((res.rows || []).length)} rows`, `${fmt0.format(ms)} ms`];
  $("report-meta").textContent = bits.filter(Boolean).join(" · ");
}

function numericColumn(rows, i) {
  return (rows || []).some((r) => isNum(r[i]));
}

function headerLabel(c) {
  return String(c).replaceAll("_", " ").replace(/\bpct\b/, "%").replace(/\bvar (\d+)/, "VaR $1").replace(/\bes (\d+)/, "ES $1").replace(/\bpv\b/, "PV");
}

// ---------------------------------------------------------------------------------------------------------
// Stress

async function openStress() {
  if (state.stressLoaded) return;
  state.stressLoaded = true;
  try {
    const data = await api("/api/v1/stress/scenarios");
    const list = (Array.isArray(data) ? data : data.scenarios || []).map((s) => (typeof s === "string" ? { name: s } : s));
    const box = $("scenario-list");
    box.replaceChildren();
    for (const s of list) {
      box.append(
        el(
          "label",
          { class: "chip", title: s.description || s.title || "" },
          el("input", { type: "checkbox", value: s.name, checked: true, "data-testid": "scenario" }),
          el("span", { text: s.title || s.name }),
        ),
      );
    }
    runStress();
  } catch {
    state.stressLoaded = false;
  }
}

/** {scenarios, rows: [{node, values: {scenario: pnl}}], losers} from the service's stress result. */
function normaliseStress(res) {
  let scenarios = res.scenarios || [];
  scenarios = scenarios.map((s) => (typeof s === "string" ? s : s.name));
  const rows = [];
  const losers = new Map(); // node -> scenario -> [{position, pnl}]
  const byNode = new Map();
  const put = (node, scn, v) => {
    if (!byNode.has(node)) {
      const r = { node, values: {} };
      byNode.set(node, r);
      rows.push(r);
    }
    byNode.get(node).values[scn] = v;
    if (!scenarios.includes(scn)) scenarios.push(scn);
  };
  if (Array.isArray(res.nodes) && Array.isArray(res.pnl)) {
    res.nodes.forEach((n, i) => scenarios.forEach((s, j) => put(typeof n === "string" ? n : n.id ?? n.node, s, res.pnl[i]?.[j])));
  } else if (Array.isArray(res.rows) && Array.isArray(res.columns)) {
    const ni = res.columns.indexOf("node");
    const si = res.columns.indexOf("scenario");
    const vi = res.columns.findIndex((c) => /pnl/.test(c));
    for (const r of res.rows) put(r[ni], r[si], r[vi]);
  } else {
    const items = res.nodes || res.results || res.rows || [];
    for (const it of items) {
      const node = it.node ?? it.id;
      if (Array.isArray(it.pnl)) {
        it.pnl.forEach((v, j) => put(node, scenarios[j], v));
        if (Array.isArray(it.top_losers)) losers.set(node, Object.fromEntries(it.top_losers.map((l, j) => [scenarios[j], l])));
      } else if (it.pnl && typeof it.pnl === "object") for (const [s, v] of Object.entries(it.pnl)) put(node, s, v);
      else if (it.scenario !== undefined) put(node, it.scenario, it.pnl ?? it.value);
      else for (const s of scenarios) if (s in it) put(node, s, it[s]);
    }
  }
  return { scenarios, rows, losers };
}

async function runStress() {
  const chosen = [...document.querySelectorAll('#scenario-list input:checked')].map((i) => i.value);
  $("stress-meta").textContent = "running …";
  $("stress-run").disabled = true;
  let res;
  try {
    res = await api("/api/v1/stress", { method: "POST", json: chosen.length ? { scenarios: chosen } : {} });
  } catch (exc) {
    $("stress-meta").textContent = exc.message;
    return;
  } finally {
    $("stress-run").disabled = false;
  }
  const { scenarios, rows, losers } = normaliseStress(res);
  const titles = new Map((res.scenarios || []).filter((x) => typeof x === "object").map((x) => [x.name, x]));
  const order = new Map(visibleOrderAll().map((n, i) => [n.id, i]));
  rows.sort((a, b) => (order.get(a.node) ?? 1e9) - (order.get(b.node) ?? 1e9) || String(a.node).localeCompare(String(b.node)));
  const maxAbs = Math.max(1, ...rows.flatMap((r) => Object.values(r.values).filter(isNum).map(Math.abs)));
  const table = $("stress-table");
  const th = (s) => {
    const meta = titles.get(s);
    return el("th", { class: "num", text: s, title: meta ? `${meta.description || s}${meta.period ? ` (${meta.period})` : ""}` : s });
  };
  table.tHead.replaceChildren(el("tr", {}, el("th", { text: "Node" }), scenarios.map(th)));
  const body = table.tBodies[0];
  body.replaceChildren();
  for (const r of rows) {
    const n = state.nodes.get(r.node);
    body.append(
      el(
        "tr",
        { "data-node": r.node, "data-testid": "stress-row" },
        el("td", { class: `col-node lvl-${n?.level ?? ""}`, style: `--depth:${n ? depthOf(n) : 0}`, title: r.node, text: n?.name ?? r.node }),
        scenarios.map((s) => {
          const v = r.values[s];
          const a = isNum(v) ? Math.min(Math.abs(v) / maxAbs, 1) : 0;
          const color = v < 0 ? "var(--heat-neg)" : "var(--heat-pos)";
          const top = losers.get(r.node)?.[s] || [];
          const tip = top.length ? `largest losses:\n${top.map((l) => `${l.position}  ${money(l.pnl)}`).join("\n")}` : null;
          return el("td", { class: `num heat-cell ${v < 0 ? "neg" : v > 0 ? "pos" : ""}`, style: `--a:${isNum(v) && v !== 0 ? (0.06 + 0.64 * Math.sqrt(a)).toFixed(3) : 0};--heat:${color}`, title: tip, text: money(v) });
        }),
      ),
    );
  }
  table.dataset.ready = "1";
  const bits = [res.market && `${res.market} market`, res.as_of && `as of ${res.as_of}`, `${rows.length} nodes × ${scenarios.length} scenarios`, `P&L in ${res.reporting_currency || "the reporting currency"}, gain > 0; hover a cell for its largest losses`];
  $("stress-meta").textContent = bits.filter(Boolean).join(" · ");
}

function visibleOrderAll() {
  const out = [];
  const walk = (n) => {
    out.push(n);
    for (const c of n.children) walk(c);
  };
  for (const r of state.roots) walk(r);
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Back-test

const BACKTEST_CHOICES = { series: ["sp500", "nasdaq", "wti", "vix"], model: ["hs", "parametric", "ewma", "garch", "fhs"] };
const MODEL_NAMES = { hs: "historical simulation", parametric: "parametric normal", ewma: "EWMA (RiskMetrics)", garch: "GARCH(1,1)", fhs: "filtered historical simulation" };

async function openBacktest() {
  if (state.btLoaded) return;
  state.btLoaded = true;
  // The choices the service accepts, from its OpenAPI description (the lists above when it cannot be read).
  const choices = { ...BACKTEST_CHOICES };
  try {
    const spec = await api("/openapi.json", { quiet: true });
    for (const p of spec.paths?.["/api/v1/backtest"]?.get?.parameters || []) {
      const e = p.schema?.enum;
      if (e && p.name in choices) choices[p.name] = e;
    }
  } catch {
    /* keep the defaults */
  }
  for (const name of ["series", "model"]) {
    const select = $(`bt-${name}`);
    const current = select.value;
    select.replaceChildren(...choices[name].map((v) => el("option", { value: v }, name === "model" ? `${v} · ${MODEL_NAMES[v] || v}` : v)));
    if (choices[name].includes(current)) select.value = current;
  }
  runBacktest();
}

async function runBacktest(event) {
  event?.preventDefault();
  const q = new URLSearchParams();
  const add = (k, id) => $(id).value.trim() && q.set(k, $(id).value.trim());
  add("series", "bt-series");
  add("model", "bt-model");
  add("window", "bt-window");
  add("confidence", "bt-confidence");
  $("bt-note").textContent = "running …";
  $("bt-run").disabled = true;
  let res;
  try {
    res = await api(`/api/v1/backtest?${q}`);
  } catch (exc) {
    $("bt-note").textContent = exc.message;
    state.btLoaded = false;
    return;
  } finally {
    $("bt-run").disabled = false;
  }
  const Chart = await loadChart();
  const dates = res.dates || [];
  const exc = new Set(res.exceptions || []);
  const returns = res.returns || [];
  const negVar = (res.var || []).map((v) => (isNum(v) ? -v : null));
  const negEs = (res.es || []).map((v) => (isNum(v) ? -v : null));
  const excPoints = dates.map((d, i) => (exc.has(d) ? returns[i] : null));
  const canvas = $("chart-backtest");
  upsertChart(Chart, "backtest", canvas, {
    type: "bar",
    data: {
      labels: dates,
      datasets: [
        { type: "line", label: "−VaR", data: negVar, borderColor: cssVar("--warning"), borderWidth: 1.25, pointRadius: 0, order: 1 },
        ...(negEs.length ? [{ type: "line", label: "−ES", data: negEs, borderColor: cssVar("--breach"), borderWidth: 1, borderDash: [4, 3], pointRadius: 0, order: 2 }] : []),
        { type: "line", label: `exceptions (${exc.size})`, data: excPoints, showLine: false, pointRadius: 3.5, backgroundColor: cssVar("--breach"), borderColor: cssVar("--breach"), order: 0 },
        { type: "bar", label: "return", data: returns, backgroundColor: returns.map((r, i) => (exc.has(dates[i]) ? cssVar("--breach") : cssVar("--bar"))), barPercentage: 1, categoryPercentage: 1, order: 3 },
      ],
    },
    options: baseOptions({
      scales: { x: { ticks: { maxTicksLimit: 10, maxRotation: 0 } }, y: { ticks: { callback: (v) => `${+(v * 100).toFixed(1)}%` } } },
      plugins: { tooltip: { mode: "index", intersect: false, callbacks: { label: (c) => (isNum(c.parsed.y) ? `${c.dataset.label}: ${(c.parsed.y * 100).toFixed(2)}%` : null) } } },
      interaction: { mode: "index", intersect: false },
    }),
  });
  canvas.dataset.points = String(dates.length);
  $("bt-note").textContent = dates.length ? `${dates[0]} → ${dates[dates.length - 1]} · ${fmt0.format(dates.length)} days` : "";
  renderBacktestSide(res);
}

const STAT_NAMES = { lr: "LR statistic", pvalue: "p-value", p_value: "p-value", df: "degrees of freedom" };

function renderBacktestSide(res) {
  const tl = res.traffic_light || {};
  const zone = String(tl.zone || "").toLowerCase();
  const test = (title, t, testid) => {
    if (!t || typeof t !== "object") return null;
    const rows = Object.entries(t).map(([k, v]) => el("tr", {}, el("th", { text: STAT_NAMES[k] || k.replaceAll("_", " ") }), el("td", { class: "num", text: typeof v === "number" ? (Number.isInteger(v) ? fmt0.format(v) : v.toPrecision(4)) : typeof v === "boolean" ? (v ? "yes" : "no") : String(v) })));
    const p = t.p_value ?? t.pvalue ?? t.p;
    const reject = t.reject ?? (isNum(p) ? p < 0.05 : null);
    return el(
      "div",
      { class: "bt-card", "data-testid": testid },
      el("h3", {}, title, reject === null ? null : el("span", { class: `pill ${reject ? "pill-breach" : "pill-clear"}`, title: "at the 5 % level", text: reject ? "REJECT" : "PASS" })),
      el("table", { class: "kv" }, rows),
    );
  };
  $("bt-side").replaceChildren(
    el(
      "div",
      { class: `traffic traffic-${zone}`, "data-testid": "traffic-light", "data-zone": zone },
      el("div", { class: "lights" }, ["red", "yellow", "green"].map((z) => el("i", { class: `light light-${z}${z === zone ? " on" : ""}` }))),
      el(
        "div",
        {},
        el("div", { class: "traffic-zone", text: zone ? `${zone.toUpperCase()} zone` : "—" }),
        el("div", { class: "muted small", text: `Basel traffic light: ${tl.exceptions ?? "—"} exceptions in the last ${tl.observations ?? 250} days (${isNum(tl.expected) ? fmt2.format(tl.expected) : "—"} expected)${isNum(tl.plus_factor) ? ` · plus factor ${tl.plus_factor}` : ""}` }),
      ),
    ),
    test("Kupiec (unconditional coverage)", res.kupiec, "kupiec"),
    test("Christoffersen (independence)", res.christoffersen, "christoffersen"),
    test("Conditional coverage (joint)", res.conditional_coverage, "conditional-coverage"),
    el(
      "div",
      { class: "bt-card", "data-testid": "backtest-summary" },
      el("h3", { text: "Run" }),
      el(
        "table",
        { class: "kv" },
        [
          ["series", res.series],
          ["model", res.model && `${res.model} · ${MODEL_NAMES[res.model] || ""}`],
          ["window", isNum(res.window) && `${fmt0.format(res.window)} days`],
          ["confidence", isNum(res.confidence) && pct(res.confidence)],
          ["observations", isNum(res.observations) && fmt0.format(res.observations)],
          ["exceptions", `${fmt0.format((res.exceptions || []).length)} (expected ${isNum(res.expected_exceptions) ? fmt2.format(res.expected_exceptions) : "—"})`],
          ["exception rate", isNum(res.exception_rate) && fmtPct2.format(res.exception_rate)],
          ["model failures", res.model_failures],
        ]
          .filter(([, v]) => v !== undefined && v !== null && v !== false)
          .map(([k, v]) => el("tr", {}, el("th", { text: k }), el("td", { class: "num", text: String(v) }))),
      ),
    ),
  );
}

// ---------------------------------------------------------------------------------------------------------
// Theme and wiring

function applyTheme(theme) {
  document.documentElement.dataset.theme = theme;
  localStorage.setItem(THEME_KEY, theme);
  destroyCharts();
  themeGrid();
  if (state.tab === "live" && state.selected) refreshDetail(false);
  if (state.tab === "backtest" && state.btLoaded) runBacktest();
}

function wire() {
  applyThemeQuiet(localStorage.getItem(THEME_KEY) || "dark");
  $("login-form").addEventListener("submit", login);
  $("login-user").addEventListener("change", describeUser);
  $("logout").addEventListener("click", () => logout());
  $("theme-toggle").addEventListener("click", () => applyTheme(document.documentElement.dataset.theme === "dark" ? "light" : "dark"));
  for (const b of document.querySelectorAll(".tab")) b.addEventListener("click", () => selectTab(b.dataset.tab));
  $("expand-all").addEventListener("click", () => expandAll(true));
  $("collapse-all").addEventListener("click", () => expandAll(false));
  $("alerts-clear").addEventListener("click", () => {
    $("alerts").replaceChildren();
    $("alert-count").textContent = "0";
  });
  for (const b of document.querySelectorAll(".seg-btn")) b.addEventListener("click", () => mountPivot(b.dataset.table));
  $("report-run").addEventListener("click", runReport);
  $("report-select").addEventListener("change", runReport);
  $("stress-run").addEventListener("click", runStress);
  $("bt-form").addEventListener("submit", runBacktest);
}

function applyThemeQuiet(theme) {
  document.documentElement.dataset.theme = theme;
}

wire();
if (state.token) {
  // A refused token (401) has already brought the login screen back, with the reason.
  start().catch((exc) => exc.status !== 401 && showLogin(exc.message));
} else {
  showLogin();
}
