// The dashboard panel (ink_services/dashboard/templates/dashboard.html): the user's sessions and
// jobs, cluster load, live resource use. Settings in the page's #ink-dashboard-config JSON.
(function () {
  const config = JSON.parse(document.getElementById("ink-dashboard-config").textContent);
  const {prefix, xsrf} = config;  // HubOAuth wants the XSRF token on cookie-authenticated fetches
  function text(v) { return v === null || v === undefined || v === "" ? "–" : String(v); }
  function left(s) {
    if (s === null || s === undefined) return "–";
    if (s <= 0) return "0m";
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    return (h ? h + "h " : "") + m + "m";
  }
  function cell(row, value) { const td = document.createElement("td"); td.textContent = value; row.appendChild(td); return td; }
  async function load() {
    const r = await fetch(prefix + "api/summary", {credentials: "same-origin", headers: {"X-XSRFToken": xsrf}});
    if (!r.ok) return;
    const data = await r.json();
    lastServers = data.servers;
    const body = document.querySelector("#ink-jobs tbody");
    body.replaceChildren();
    if (!data.servers.length) {
      const tr = document.createElement("tr"); cell(tr, "No server running.").colSpan = 8; body.appendChild(tr);
    }
    for (const s of data.servers) {
      const tr = document.createElement("tr");
      tr.dataset.app = s.app; tr.dataset.node = s.node;
      // on a site with several clusters, the node's cluster beside it
      const where = (data.clusters || []).length > 1 ?
        (data.clusters.find(k => k.name === s.cluster) || {title: s.cluster}).title : "";
      tr.dataset.cluster = s.cluster || "";
      cell(tr, s.name || "default"); cell(tr, text(s.app)); cell(tr, text(s.state));
      cell(tr, text(s.node) + (where ? " (" + where + ")" : ""));
      cell(tr, text(s.image)); cell(tr, text(s.started && s.started.replace("T", " ").slice(0, 19)));
      const remaining = cell(tr, left(s.walltime_left_s));
      const ending = s.state === "ready" && s.walltime_left_s !== null && s.walltime_left_s < ENDING_S;
      if (ending) { remaining.className = "ink-ending"; remaining.textContent += " – ends soon"; }
      const actions = cell(tr, "");
      const link = document.createElement("a"); link.textContent = "Connect"; link.href = s.url; link.target = "_top";
      actions.appendChild(link);
      if (s.state === "ready" && s.walltime_left_s !== null) {
        const extend = document.createElement("span"); extend.className = "ink-extend";
        for (const by of ["2h", "8h"]) {
          const b = document.createElement("button"); b.textContent = "Extend +" + by;
          b.onclick = () => extendServer(s.name, by); extend.appendChild(b);
        }
        actions.appendChild(extend);
      }
      body.appendChild(tr);
      if (s.workers && s.workers.length) {  // its Dask workers (batch jobs tied to the session)
        const running = s.workers.filter(w => w.state === "running");
        const nodes = [...new Set(running.map(w => w.node).filter(n => n))];
        const row = document.createElement("tr"); row.className = "ink-workers"; row.dataset.server = s.name;
        row.dataset.count = s.workers.length; row.dataset.running = running.length;
        cell(row, "Workers: " + s.workers.length + " (" + running.length + " running" +
          (nodes.length ? " on " + nodes.join(", ") : "") + ", " + (s.workers.length - running.length) + " waiting)").colSpan = 8;
        body.appendChild(row);
      }
      if (s.waiting) {  // why it is still queued, in the scheduler's words made plain
        const why = document.createElement("tr"); why.className = "ink-waiting"; why.dataset.server = s.name;
        cell(why, "Why queued: " + s.waiting).colSpan = 8; body.appendChild(why);
      }
    }
    const ended = document.getElementById("ink-ended");
    ended.replaceChildren();
    for (const e of data.ended || []) {  // why each recent session ended, from the hub's history
      const line = document.createElement("div"); line.className = "ink-ended"; line.dataset.server = e.server;
      line.textContent = "Ended " + e.ended.replace("T", " ").slice(0, 16) + " UTC: " + (e.server || "default") +
        " (" + e.app + ") " + e.end_reason;
      ended.appendChild(line);
    }
    if (data.all_servers) {
      const all = document.querySelector("#ink-all-jobs tbody");
      all.replaceChildren();
      for (const s of data.all_servers) {
        const tr = document.createElement("tr");
        tr.dataset.user = s.user;
        for (const v of [s.user, s.name || "default", text(s.app), text(s.state), text(s.node), text(s.job_id)]) cell(tr, v);
        cell(tr, left(s.walltime_left_s));
        all.appendChild(tr);
      }
      document.getElementById("ink-admin").hidden = false;
    }
    const c = data.cluster;
    document.getElementById("ink-running").textContent = text(c.running);
    document.getElementById("ink-queued").textContent = text(c.queued);
    // several clusters side by side ("HTC cluster: 3 running, 1 queued | HPC cluster: ...")
    const several = (data.clusters || []).length > 1;
    document.getElementById("ink-total-label").textContent = several ? "All clusters" : "Cluster";
    const each = document.getElementById("ink-clusters");
    each.replaceChildren();
    for (const k of several ? data.clusters : []) {
      const span = document.createElement("span");
      span.className = "ink-cluster"; span.dataset.cluster = k.name;
      span.append(k.title + ": ");
      for (const [value, label, cls] of [[k.running, " running, ", "running"], [k.queued, " queued", "queued"]]) {
        const b = document.createElement("b"); b.className = cls; b.textContent = text(value);
        span.append(b, label);
      }
      if (k.error) span.title = "scheduler: " + k.error;
      each.appendChild(span);
    }
    const apps = Object.entries(c.per_app || {}).map(([a, n]) => a + ": " + n.running).join(", ");
    const span = document.getElementById("ink-apps");
    span.textContent = apps ? "Interactive jobs per app: " + apps : "";
    span.dataset.perApp = JSON.stringify(c.per_app || {});
    document.getElementById("ink-age").textContent = c.age_s === null ? "cluster figures pending" :
      "cluster figures from " + c.age_s + " s ago" + (c.error ? " (scheduler: " + c.error + ")" : "");
  }
  const ENDING_S = 15 * 60;
  async function extendServer(name, by) {
    const message = document.getElementById("ink-message");
    const r = await fetch(prefix + "api/extend", {method: "POST", credentials: "same-origin",
      headers: {"X-XSRFToken": xsrf, "Content-Type": "application/json"}, body: JSON.stringify({server: name, by: by})});
    const answer = await r.json().catch(() => ({}));
    message.textContent = r.ok ? (name || "default") + ": time limit now " + answer.walltime :
      "Not extended: " + (answer.message || r.status);
    message.className = r.ok ? "muted" : "ink-ending";
    load();
  }
  const charts = {};
  const MB = 1024 * 1024;
  function chartFor(server) {
    if (charts[server]) return charts[server];
    const box = document.createElement("div");
    box.className = "ink-chart"; box.dataset.server = server;
    const title = document.createElement("div"); title.textContent = (server || "default") + ": CPU %, memory MB, I/O MB";
    const warn = document.createElement("div"); warn.className = "ink-warn"; warn.style.color = "#9a5b00";
    box.append(title, warn);
    document.getElementById("ink-monitor").appendChild(box);
    const opts = {width: 640, height: 160, series: [{}, {label: "CPU %", stroke: "#1f77b4"},
      {label: "memory MB", stroke: "#d62728"}, {label: "read MB", stroke: "#2ca02c"}, {label: "write MB", stroke: "#9467bd"}]};
    charts[server] = {plot: new window.uPlot(opts, [[], [], [], [], []], box), warn: warn};
    return charts[server];
  }
  function memoryLimit(servers, name) {
    const s = servers.find(x => (x.name || "") === name);
    if (!s || !s.memory) return null;
    const m = /^([0-9.]+)([MGT]?)$/.exec(String(s.memory));
    return m ? parseFloat(m[1]) * ({"": 1, M: 1, G: 1024, T: 1024 * 1024}[m[2]]) * MB : null;
  }
  let lastServers = [];
  async function loadSamples() {
    const r = await fetch(prefix + "api/samples", {credentials: "same-origin", headers: {"X-XSRFToken": xsrf}});
    if (!r.ok) return;
    const data = await r.json();
    const monitor = document.getElementById("ink-monitor");
    for (const [server, samples] of Object.entries(data.servers)) {
      if (!samples.length) continue;
      const c = chartFor(server);
      const t = samples.map(s => s.t), rss = samples.map(s => s.rss_bytes);
      c.plot.setData([t, samples.map(s => s.cpu_percent), rss.map(v => v / MB),
                      samples.map(s => s.read_bytes / MB), samples.map(s => s.write_bytes / MB)]);
      monitor.dataset.rss = JSON.stringify(rss);  // what the chart shows, for tests and tools
      const limit = memoryLimit(lastServers, server);
      c.warn.textContent = limit && rss[rss.length - 1] > 0.9 * limit ?
        "Memory is near this job's request (" + Math.round(rss[rss.length - 1] / MB) + " of " + Math.round(limit / MB) + " MB)." : "";
    }
  }
  function refresh() { load().then(loadSamples); }
  refresh();
  setInterval(refresh, config.refresh * 1000);
})();
