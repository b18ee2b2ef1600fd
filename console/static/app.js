// raftlite console: three views over the node's own HTTP API.
"use strict";

const $ = (id) => document.getElementById(id);

// api calls the node that served this page; the browser sends the credentials it was asked for.
async function api(path, options) {
  const resp = await fetch(path, Object.assign({ credentials: "same-origin" }, options));
  const text = await resp.text();
  if (!resp.ok) {
    throw new Error(`${resp.status} ${resp.statusText}: ${text.trim()}`);
  }
  return text ? JSON.parse(text) : null;
}

function el(tag, text, className) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (className) e.className = className;
  return e;
}

// ---- views and navigation ----

const views = ["cluster", "sql", "schema"];
let clusterTimer = null;

function show() {
  const name = views.includes(location.hash.slice(1)) ? location.hash.slice(1) : "cluster";
  for (const v of views) {
    $(v).classList.toggle("active", v === name);
    $("tab-" + v).classList.toggle("active", v === name);
  }
  clearInterval(clusterTimer);
  if (name === "cluster") {
    refreshCluster();
    clusterTimer = setInterval(refreshCluster, 1000);
  } else if (name === "schema") {
    refreshSchema();
  }
}
window.addEventListener("hashchange", show);

// ---- cluster ----

async function refreshCluster() {
  try {
    const [nodes, status] = await Promise.all([
      api("/nodes?nonvoters&ver=2&timeout=1s"),
      api("/status?key=store"),
    ]);
    renderCluster(nodes.nodes || [], status);
    $("cluster-error").textContent = "";
  } catch (err) {
    $("cluster-error").textContent = "Cannot reach this node's API: " + err.message;
  }
}

function renderCluster(nodes, store) {
  const leader = nodes.find((n) => n.leader);
  const leaderCommit = leader ? leader.commit_index || 0 : 0;
  $("whoami").textContent = `this node: ${store.node_id}`;
  $("cluster-summary").textContent = leader
    ? `${nodes.length} nodes; leader ${leader.id}; term ${store.raft.term}; commit index ${leaderCommit}`
    : `${nodes.length} nodes; no leader known`;
  const body = $("nodes").tBodies[0];
  body.replaceChildren();
  for (const n of nodes) {
    const role = n.leader ? "leader" : n.voter ? "follower" : "learner";
    const tr = el("tr");
    tr.dataset.node = n.id;
    tr.dataset.role = role;
    tr.append(el("td", n.id), el("td", role, "role-" + role),
      el("td", n.reachable ? "yes" : "no: " + (n.error || "unreachable"), n.reachable ? "" : "unreachable"),
      el("td", n.api_addr), el("td", n.addr),
      el("td", n.reachable ? n.commit_index || 0 : "", "num"),
      el("td", n.reachable ? n.applied_index || 0 : "", "num"),
      el("td", n.reachable && leader ? Math.max(0, leaderCommit - (n.applied_index || 0)) : "", "num"),
      el("td", n.time_s || "", "num"));
    body.append(tr);
  }
}

// ---- SQL ----

async function runSQL() {
  const sql = $("sql-text").value.trim();
  const out = $("sql-results");
  if (!sql) return;
  const level = $("sql-level").value;
  $("sql-run").disabled = true;
  const started = performance.now();
  try {
    const resp = await api(`/db/request?timings&level=${encodeURIComponent(level)}`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify([sql]),
    });
    out.replaceChildren();
    if (resp.error) out.append(el("p", resp.error, "error"));
    for (const r of resp.results || []) out.append(renderResult(r));
    const server = resp.time !== undefined ? `, server ${(resp.time * 1000).toFixed(2)} ms` : "";
    $("sql-time").textContent = `${(performance.now() - started).toFixed(1)} ms round trip${server} (${level})`;
  } catch (err) {
    out.replaceChildren(el("p", err.message, "error"));
    $("sql-time").textContent = "";
  } finally {
    $("sql-run").disabled = false;
  }
}

function renderResult(r) {
  if (r.error) return el("p", "Error: " + r.error, "error result-error");
  if (!r.columns) {
    const n = r.rows_affected || 0;
    let text = `${n} ${n === 1 ? "row" : "rows"} affected`;
    if (r.last_insert_id) text += `, last insert ID ${r.last_insert_id}`;
    return el("p", text, "changes");
  }
  return table(r.columns, r.values || [], r.types);
}

function table(columns, rows, types) {
  const t = el("table", null, "result");
  const head = el("tr");
  columns.forEach((c, i) => head.append(el("th", types && types[i] ? `${c} (${types[i]})` : c)));
  t.append(el("thead"));
  t.tHead.append(head);
  const body = el("tbody");
  for (const row of rows) {
    const tr = el("tr");
    for (const v of row) {
      if (v === null) tr.append(el("td", "NULL", "null"));
      else tr.append(el("td", typeof v === "object" ? JSON.stringify(v) : v, typeof v === "number" ? "num" : ""));
    }
    body.append(tr);
  }
  t.append(body);
  return t;
}

$("sql-run").addEventListener("click", runSQL);
$("sql-text").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) runSQL();
});

// ---- schema ----

async function refreshSchema() {
  const out = $("schema-tables");
  try {
    const objects = await api("/db/query?level=weak", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify([
        "SELECT name, type, tbl_name FROM sqlite_master WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\' " +
          "AND name NOT LIKE '\\_raftlite\\_%' ESCAPE '\\' ORDER BY type DESC, name",
      ]),
    });
    const rows = objects.results[0].values || [];
    const tables = rows.filter((r) => r[1] === "table" || r[1] === "view").map((r) => r[0]);
    out.replaceChildren();
    if (tables.length === 0) out.append(el("p", "No tables yet."));
    if (tables.length > 0) {
      const cols = await api("/db/query?level=weak", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(tables.map((t) => ["SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info(?)", t])),
      });
      tables.forEach((name, i) => {
        const section = el("div", null, "schema-table");
        section.dataset.table = name;
        section.append(el("h3", name));
        section.append(table(["column", "type", "not null", "default", "primary key"], cols.results[i].values || []));
        const indexes = rows.filter((r) => r[1] === "index" && r[2] === name).map((r) => r[0]);
        if (indexes.length) section.append(el("p", "Indexes: " + indexes.join(", ")));
        out.append(section);
      });
    }
    $("schema-error").textContent = "";
  } catch (err) {
    $("schema-error").textContent = err.message;
  }
}

show();
