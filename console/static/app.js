// raftlite console: three views over the node's own HTTP API.
"use strict";

const $ = (id) => document.getElementById(id);

// api calls the node that served this page; the browser sends the credentials it was asked for.
async function api(path, options) {
  const resp = await fetch(path, Object.assign({ credentials: "same-origin" }, options));
  const text = await resp.text();
  if (!resp.ok) {
    const err = new Error(`${resp.status} ${resp.statusText}: ${text.trim()}`);
    err.status = resp.status;
    throw err;
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
let clusterShown = false;

function show() {
  const name = views.includes(location.hash.slice(1)) ? location.hash.slice(1) : "cluster";
  for (const v of views) {
    $(v).classList.toggle("active", v === name);
    $("tab-" + v).classList.toggle("active", v === name);
  }
  clearTimeout(clusterTimer);
  clusterShown = name === "cluster";
  if (clusterShown) {
    refreshCluster();
  } else if (name === "schema") {
    refreshSchema();
  }
}
window.addEventListener("hashchange", show);

// ---- cluster ----

// refreshCluster redraws the view, then schedules the next refresh a second after this one ended, so that
// slow probes (a node down) never pile up.
async function refreshCluster() {
  clearTimeout(clusterTimer);
  try {
    const [nodes, status, cdc] = await Promise.all([
      api("/nodes?nonvoters&ver=2&timeout=1s"),
      api("/status?key=store"),
      api("/status?key=cdc"),
    ]);
    renderCluster(nodes.nodes || [], status);
    renderCDC(cdc);
    $("cluster-error").textContent = "";
  } catch (err) {
    if (err.status === 401) {
      // Asking again every second would only repeat the browser's password prompt.
      $("cluster-error").textContent = "This view needs the status permission: " + err.message;
      return;
    }
    $("cluster-error").textContent = "Cannot reach this node's API: " + err.message;
  }
  if (clusterShown) clusterTimer = setTimeout(refreshCluster, 1000);
}

function renderCluster(nodes, store) {
  const leader = nodes.find((n) => n.leader);
  // Lag needs the leader's commit index, which only a reachable leader reports.
  const leaderCommit = leader && leader.reachable ? leader.commit_index || 0 : null;
  $("whoami").textContent = `this node: ${store.node_id}`;
  let summary = `${nodes.length} nodes; no leader known`;
  if (leader) {
    summary = `${nodes.length} nodes; leader ${leader.id}; term ${store.raft.term}; ` +
      (leaderCommit === null ? "leader unreachable from this node" : `commit index ${leaderCommit}`);
  }
  $("cluster-summary").textContent = summary;
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
      el("td", n.reachable && leaderCommit !== null ? Math.max(0, leaderCommit - (n.applied_index || 0)) : "", "num"),
      el("td", n.time_s || "", "num"));
    body.append(tr);
  }
}

// renderCDC says what change data capture is doing on this node (/status?key=cdc is {} where it is off).
function renderCDC(cdc) {
  const p = $("cdc-summary");
  if (!cdc || cdc.sink === undefined) {
    p.textContent = "Change data capture: off on this node.";
    p.className = "summary";
    return;
  }
  let role = cdc.is_leader ? "this node sends" : "the leader sends; this node keeps a copy";
  if (cdc.sink === "pull") role = "nothing is sent: consumers read the pull feed";
  let text = `Change data capture to ${cdc.sink} (${role}): ${cdc.fifo.length} entries queued; ` +
    `delivered through index ${cdc.highwater_mark}; ${cdc.batches_sent} batches sent, ${cdc.send_failures} failed attempts.`;
  if (cdc.last_error) text += ` Last error (${cdc.last_error_time}): ${cdc.last_error}`;
  p.textContent = text;
  p.className = cdc.last_error && cdc.fifo.has_next ? "summary error" : "summary";
}

// ---- SQL ----

// endpointFor sends reads to /db/query (the query permission suffices) and anything else to /db/request
// (query and execute). The guess is by leading keyword: the server refuses a write sent as a query.
function endpointFor(sql) {
  const statements = sql.split(";").map((s) => s.replace(/^(\s|--[^\n]*\n)+/, "").trim()).filter((s) => s);
  const reads = statements.every((s) => /^(select|explain|values)\b/i.test(s));
  return reads ? "/db/query" : "/db/request";
}

async function runSQL() {
  const sql = $("sql-text").value.trim();
  const out = $("sql-results");
  if (!sql) return;
  const level = $("sql-level").value;
  $("sql-run").disabled = true;
  const started = performance.now();
  try {
    const resp = await api(`${endpointFor(sql)}?timings&level=${encodeURIComponent(level)}`, {
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
