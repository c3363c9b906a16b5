// The Files page (ink_services/files/templates/files.html): browse, preview, upload, share.
// Its settings come in the page's #ink-files-config JSON; requests go through ink-api.js.
(function () {
  const config = JSON.parse(document.getElementById("ink-files-config").textContent);
  const {prefix, xsrf, share, shareName, shareIsDir, maxUpload} = config;
  const HIGHLIGHT = {c: "cpp", cc: "cpp", cxx: "cpp", h: "cpp", hh: "cpp", hpp: "cpp", mac: "cpp", f90: "fortran",
    f: "fortran", yml: "yaml", sh: "bash", csh: "bash", py: "python", js: "javascript", md: "markdown", tex: "latex", jl: "julia", cfg: "ini", conf: "ini"};
  const PAGE = 200, CHUNK = 16 * 1024 * 1024, TEXT_MAX = 256 * 1024, NOTEBOOK_MAX = 16 * 1024 * 1024;
  const TEXT = /\.(txt|log|md|py|c|cc|cpp|cxx|h|hh|hpp|C|sh|bash|csh|yaml|yml|json|xml|cfg|conf|ini|toml|mac|tex|csv|tsv|f|f90|jl|r|R|js|css|sql|cmake|out|err)$|^(Makefile|README|LICENSE|Dockerfile)$/;
  let cwd = "", sort = "name", order = "asc", offset = 0;
  const $ = (id) => document.getElementById(id);
  const status = (text, error) => { $("ink-status").textContent = text; $("ink-status").className = error ? "text-danger" : "text-body-secondary"; };
  const enc = (p) => p.split("/").map(encodeURIComponent).join("/");
  function api(path) { return share ? prefix + "s/" + share + "/" + path : prefix + "api/v1/" + path; }
  function fileUrl(p, inline) { return api("files/" + enc(p)) + (inline ? "?inline=1" : ""); }
  const call = (method, path, body) => window.inkFetch(api(path), {method, body, xsrf});
  function human(n) { const u = ["B", "KB", "MB", "GB", "TB"]; let i = 0; while (n >= 1024 && i < 4) { n /= 1024; i++; } return (i ? n.toFixed(1) : n) + " " + u[i]; }
  function join(a, b) { return a ? a + "/" + b : b; }

  async function load(path, keepOffset) {
    if (!keepOffset) offset = 0;
    cwd = path;
    if (!share) { $("ink-path").value = cwd; history.replaceState(null, "", "#" + cwd); }
    const q = "?sort=" + sort + "&order=" + order + "&offset=" + offset + "&limit=" + PAGE + (!share && $("ink-hidden").checked ? "&hidden=1" : "");
    let data;
    try { data = await call("GET", "list/" + enc(cwd) + q); } catch (e) { status(e.message, true); return; }
    status("");
    crumbs();
    const body = document.querySelector("#ink-list tbody");
    body.replaceChildren();
    for (const e of data.entries) body.appendChild(row(e));
    $("ink-pager").replaceChildren();
    const pager = $("ink-pager");
    pager.dataset.total = data.total;
    pager.append(data.total ? (offset + 1) + "–" + (offset + data.entries.length) + " of " + data.total + " " : "This folder is empty.");
    if (offset > 0) pager.appendChild(button("previous", () => { offset = Math.max(0, offset - PAGE); load(cwd, true); }));
    if (offset + PAGE < data.total) pager.appendChild(button("next", () => { offset += PAGE; load(cwd, true); }));
  }
  function button(label, action) {
    const b = document.createElement("button"); b.type = "button"; b.className = "btn btn-sm btn-outline-secondary";
    b.textContent = label; b.onclick = action; return b;
  }
  // the keyboard, as in a file manager: arrows move, Enter opens, Backspace goes up
  function select(tr) {
    document.querySelectorAll("#ink-list tr.table-active").forEach((r) => r.classList.remove("table-active"));
    if (tr) { tr.classList.add("table-active"); tr.focus(); }
  }
  document.addEventListener("keydown", (ev) => {
    if (ev.target.closest && ev.target.closest("input, textarea, select")) return;
    const rows = Array.from(document.querySelectorAll("#ink-list tbody tr"));
    const at = rows.findIndex((r) => r.classList.contains("table-active"));
    if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
      ev.preventDefault();
      select(rows[Math.max(0, Math.min(rows.length - 1, at + (ev.key === "ArrowDown" ? 1 : -1)))]);
    } else if (ev.key === "Enter" && at >= 0) {
      ev.preventDefault(); rows[at].querySelector("td.name a").click();
    } else if (ev.key === "Backspace" && cwd) {
      ev.preventDefault(); const up = cwd.split("/").slice(0, -1).join("/"); up || share ? load(up) : areas();
    }
  });
  function crumbs() {
    const box = $("ink-crumbs"); box.replaceChildren();
    const parts = cwd.split("/").filter(Boolean);
    const home = document.createElement("a"); home.href = "#"; home.textContent = share ? shareName : "areas";
    home.onclick = (ev) => { ev.preventDefault(); share ? load("") : areas(); };
    box.append(home);
    parts.forEach((p, i) => {
      const a = document.createElement("a"); a.href = "#"; a.textContent = p;
      a.onclick = (ev) => { ev.preventDefault(); load(parts.slice(0, i + 1).join("/")); };
      box.append(" / ", a);
    });
  }
  // an icon per kind of file, as a file manager shows them
  const ICONS = [[/\.root$/i, "🌲"], [/\.(fits|fit|fts)(\.gz)?$/i, "🔭"], [/\.ipynb$/i, "📓"],
    [/\.(png|jpe?g|gif|webp|bmp|svg)$/i, "🖼️"], [/\.pdf$/i, "📕"], [/\.(tar|tgz|gz|zip|xz|bz2|zst)$/i, "📦"],
    [/\.(py|c|cc|cpp|cxx|h|hh|hpp|sh|js|f90|jl|r|C|mac)$/, "📝"], [/\.(txt|log|md|out|err|csv|tsv|json|ya?ml)$/i, "📄"]];
  function icon(e) {
    if (e.type === "dir") return "📁";
    if (e.type === "link") return "🔗";
    const found = ICONS.find(([pattern]) => pattern.test(e.name));
    return found ? found[1] : "📄";
  }
  // permissions as ls -l writes them
  function symbolic(e) {
    const bits = "rwxrwxrwx";
    let text = e.type === "dir" ? "d" : e.type === "link" ? "l" : "-";
    for (let i = 0; i < 9; i++) text += e.mode & (1 << (8 - i)) ? bits[i] : "-";
    return text;
  }
  function row(e) {
    const tr = document.createElement("tr"); tr.className = e.type; tr.dataset.name = e.name; tr.tabIndex = -1;
    const path = join(cwd, e.name);
    const name = document.createElement("td"); name.className = "name";
    const glyph = document.createElement("span"); glyph.className = "ink-icon"; glyph.setAttribute("aria-hidden", "true"); glyph.textContent = icon(e) + " ";
    const a = document.createElement("a"); a.href = "#"; a.textContent = e.name + (e.type === "dir" ? "/" : e.type === "link" ? " →" : "");
    a.onclick = (ev) => { ev.preventDefault(); select(tr); e.type === "dir" ? load(path) : preview(path, e); };
    name.append(glyph, a); tr.appendChild(name);
    const cells = [e.type === "dir" ? "" : human(e.size), new Date(e.mtime * 1000).toISOString().slice(0, 16).replace("T", " ")];
    if (!share) cells.push(e.owner || "", e.group || "");
    for (const v of cells) {
      const td = document.createElement("td"); td.textContent = v; tr.appendChild(td);
    }
    if (!share) {
      const mode = document.createElement("td"); mode.className = "font-monospace";
      mode.textContent = symbolic(e); mode.title = e.mode.toString(8).padStart(3, "0"); tr.appendChild(mode);
      const actions = document.createElement("td"); actions.className = "actions";
      const dl = document.createElement("a"); dl.textContent = "download"; dl.href = fileUrl(path); dl.className = "ink-download btn btn-sm btn-link";
      actions.append(dl, " ",
        button("rename", async () => { const to = prompt("Move/rename to (another area: moved in the background)", path); if (to && to !== path) moveOrCopy("move", path, to); }),
        button("copy", async () => { const to = prompt("Copy to (another area: copied in the background)", path + ".copy"); if (to) moveOrCopy("copy", path, to); }),
        button("chmod", async () => { const m = prompt("Permissions (octal)", e.mode.toString(8)); if (m) act(() => call("POST", "chmod/" + enc(path), {mode: parseInt(m, 8)})); }),
        button("share", () => shareLink(path)),
        ...(e.type === "file" ? [button("checksums", () => checksums(path)), button("copy URL", () => copyUrl(path))] : []),
        ...(e.type === "file" && e.name.endsWith(".ipynb") ? [button("run as batch job", () => runNotebook(path))] : []),
        button("delete", async () => {
          if (!confirm("Delete " + path + (e.type === "dir" ? " and everything in it" : "") + "?")) return;
          act(() => call("DELETE", "files/" + enc(path) + (e.type === "dir" ? "?recursive=1" : "")));
        }));
      tr.appendChild(actions);
    }
    return tr;
  }
  // within an area at once; between areas (POSIX and XRootD too) as a background transfer
  const areaOf = (p) => p.replace(/^\/+/, "").split("/")[0];
  function moveOrCopy(kind, from, to) {
    if (areaOf(from) === areaOf(to)) return act(() => call("POST", kind, {from, to}));
    act(() => call("POST", "transfers", {kind, from, to}).then(() => transfers()));
  }
  let polling = null;
  async function transfers() {  // the transfers panel: progress until each has ended
    const box = $("ink-transfers");
    let list;
    try { list = (await call("GET", "transfers")).transfers; } catch (e) {
      box.dataset.offline = "1"; $("ink-transfers-note").textContent = "The file service is not answering (" + e.message + "); your transfers go on.";
      polling = setTimeout(transfers, 2000); return;
    }
    delete box.dataset.offline; $("ink-transfers-note").textContent = "";
    const table = $("ink-transfer-list"); table.replaceChildren();
    for (const t of list) {
      const tr = document.createElement("tr"); tr.className = "ink-transfer";
      Object.assign(tr.dataset, {id: t.id, state: t.state, done: t.done, total: t.total});
      const what = document.createElement("td"); what.textContent = t.kind + " " + t.source + " → " + t.target;
      const bar = document.createElement("td"); const progress = document.createElement("progress");
      progress.max = t.total || 1; progress.value = t.done; bar.appendChild(progress);
      const state = document.createElement("td");
      state.textContent = t.state + (t.total ? " " + human(t.done) + " of " + human(t.total) : "") + (t.error ? ": " + t.error : "");
      const acts = document.createElement("td");
      if (t.state === "queued" || t.state === "running") acts.appendChild(button("cancel", () => call("POST", "transfers/" + t.id + "/cancel").then(transfers)));
      else acts.appendChild(button("remove", () => call("DELETE", "transfers/" + t.id).then(transfers)));
      tr.append(what, bar, state, acts); table.appendChild(tr);
    }
    box.hidden = !list.length;
    clearTimeout(polling);
    if (list.some((t) => t.state === "queued" || t.state === "running")) polling = setTimeout(transfers, 1000);
    else if (list.some((t) => t.state === "done")) load(cwd, true);
  }
  async function act(fn) { try { await fn(); await load(cwd, true); } catch (e) { status(e.message, true); } }
  async function areas() {
    const data = await call("GET", "areas");
    if (data.areas.length === 1) return load(data.areas[0]);
    cwd = ""; crumbs();
    const body = document.querySelector("#ink-list tbody"); body.replaceChildren();
    for (const name of data.areas) body.appendChild(row({name, type: "dir", size: 0, mtime: Date.now() / 1000, mode: 0o755, owner: "", group: ""}));
  }
  async function preview(path, e) {
    const box = $("ink-preview"); box.replaceChildren();
    const title = document.createElement("h3"); title.textContent = e.name; box.appendChild(title);
    const name = e.name.toLowerCase();
    if (/\.(png|jpe?g|gif|webp|bmp)$/.test(name)) {
      const img = document.createElement("img"); img.id = "ink-preview-image"; img.src = fileUrl(path, true); img.alt = e.name; box.appendChild(img);
    } else if (name.endsWith(".pdf")) {
      const frame = document.createElement("iframe"); frame.id = "ink-preview-pdf"; frame.src = fileUrl(path, true); box.appendChild(frame);
    } else if (name.endsWith(".ipynb")) {
      await previewNotebook(path, box, e);
    } else if (name.endsWith(".root")) {
      await previewRoot(path, box);
    } else if (/\.(fits|fit|fts)(\.gz)?$/.test(name)) {
      await previewFits(path, box);
    } else if (TEXT.test(e.name) || e.size < 4096) {
      const pre = document.createElement("pre"); pre.id = "ink-preview-text";
      try {
        const r = await fetch(fileUrl(path, true), {credentials: "same-origin", headers: {"X-XSRFToken": xsrf, Range: "bytes=0-" + (TEXT_MAX - 1)}});
        if (!r.ok) throw new Error((await r.json()).message);
        pre.textContent = await r.text();
        const ext = ((/\.([A-Za-z0-9]+)$/.exec(e.name) || [])[1] || "").toLowerCase();
        const lang = HIGHLIGHT[ext] || ext;
        if (window.hljs && lang && window.hljs.getLanguage(lang) && e.size <= TEXT_MAX) {
          pre.innerHTML = window.hljs.highlight(pre.textContent, {language: lang}).value;  // hljs escapes the text
          pre.classList.add("hljs"); pre.dataset.language = lang;
        }
        if (e.size > TEXT_MAX) pre.append("\n… (first 256 KB of " + human(e.size) + ")");
      } catch (err) { pre.textContent = "Cannot preview: " + err.message; pre.className = "error"; }
      box.appendChild(pre);
    } else {
      const p = document.createElement("p"); p.className = "muted"; p.textContent = "No preview for this kind of file (" + human(e.size) + ")."; box.appendChild(p);
    }
    const dl = document.createElement("a"); dl.href = fileUrl(path); dl.textContent = "Download"; box.appendChild(dl);
  }
  function fail(box, message) { const p = document.createElement("p"); p.className = "error"; p.textContent = message; box.appendChild(p); }
  // ROOT: the key tree from the server (uproot, in the user's worker); drawings by JSROOT,
  // which reads only the bytes it needs from the file over HTTP Range requests
  async function previewRoot(path, box) {
    let data;
    try { data = await call("GET", "preview/root/" + enc(path)); } catch (e) { return fail(box, e.message); }
    window.inkRootView(box, data, {jsroot: prefix + "static/jsroot/modules/main.mjs",
                            file: fileUrl(path), name: path.split("/").pop(), headers: {"X-XSRFToken": xsrf}});
  }
  async function previewFits(path, box) {
    let data;
    try { data = await call("GET", "preview/fits/" + enc(path)); } catch (e) { return fail(box, e.message); }
    if (data.png) {
      const img = document.createElement("img"); img.id = "ink-preview-fits"; img.src = data.png; img.alt = "FITS image";
      box.appendChild(img);
      const facts = document.createElement("p"); facts.className = "muted";
      facts.textContent = "HDU " + data.image.hdu + ", " + data.image.shape.join(" × ") + " pixels, scaled " + data.image.low.toPrecision(4) + " … " + data.image.high.toPrecision(4);
      box.appendChild(facts);
    } else if (data.image && data.image.skipped) { fail(box, data.image.skipped); }
    for (const h of data.headers) {
      const title = document.createElement("h4"); title.textContent = "HDU " + h.index + " " + h.name;
      const pre = document.createElement("pre"); pre.className = "ink-fits-header"; pre.textContent = h.cards.join("\n");
      box.append(title, pre);
    }
  }
  async function previewNotebook(path, box, e) {
    if (e.size > NOTEBOOK_MAX) return fail(box, "This notebook is " + human(e.size) + ": download it or open it in JupyterLab.");
    try {
      const r = await fetch(fileUrl(path, true), {credentials: "same-origin", headers: {"X-XSRFToken": xsrf}});
      if (!r.ok) throw new Error((await r.json()).message);
      window.inkNotebookView(box, JSON.parse(await r.text()));
    } catch (err) { fail(box, "Cannot show this notebook: " + err.message); }
  }
  async function runNotebook(path) {  // the jobs API, with the user's limits, image and experiment rules
    if (!confirm("Run " + path + " unattended as a batch job? The executed copy and the logs land in its job's folder.")) return;
    const box = $("ink-preview"); box.replaceChildren();
    const p = document.createElement("p"); p.id = "ink-run"; box.append(p);
    try {
      const job = await call("POST", "run/" + enc(path), {});
      p.textContent = "Batch job " + job.id + " submitted (" + job.state + "). Its log and the executed notebook go to " + (job.folder || job.output_dir) + ". ";
      if (job.folder) p.append(button("open its folder", () => load(job.folder)));
    } catch (err) { p.className = "error"; p.textContent = "Not submitted: " + err.message; }
  }
  async function checksums(path) {  // on request: a pass over the file the first time
    const box = $("ink-preview"); box.replaceChildren();
    const list = document.createElement("dl"); list.id = "ink-checksums"; box.append(list);
    for (const algorithm of ["adler32", "sha256"]) {
      const term = document.createElement("dt"); term.textContent = algorithm;
      const value = document.createElement("dd"); value.dataset.algorithm = algorithm; value.textContent = "computing…";
      list.append(term, value);
      try {
        const answer = await call("GET", "checksum/" + enc(path) + "?algorithm=" + algorithm);
        value.textContent = answer.value; value.title = answer.cached ? "remembered" : "computed now";
      } catch (e) { value.textContent = e.message; }
    }
  }
  async function copyUrl(path) {  // root:// in an XRootD area, the cluster path in a POSIX one
    try {
      const entry = await call("GET", "stat/" + enc(path));
      const box = $("ink-preview"); box.replaceChildren();
      const p = document.createElement("p"); p.textContent = "Where " + path + " is, for ROOT or a job:";
      const input = document.createElement("input"); input.id = "ink-file-url"; input.value = entry.url; input.size = 60; input.readOnly = true;
      box.append(p, input);
      navigator.clipboard && navigator.clipboard.writeText(entry.url).catch(() => {});
    } catch (e) { status(e.message, true); }
  }
  async function shareLink(path) {
    const days = prompt("Share " + path + " read-only, for how many days?", "7");
    if (!days) return;
    try {
      const link = await call("POST", "shares", {path, expires_in: Math.round(parseFloat(days) * 86400)});
      const url = location.origin + link.url;
      const box = $("ink-preview"); box.replaceChildren();
      const p = document.createElement("p"); p.textContent = "Share link (anyone with it can read " + path + " until " + new Date(link.expires * 1000).toLocaleString() + "):";
      const input = document.createElement("input"); input.id = "ink-share-url"; input.value = url; input.size = 60; input.readOnly = true;
      box.append(p, input);
      navigator.clipboard && navigator.clipboard.writeText(url).catch(() => {});
    } catch (e) { status(e.message, true); }
  }

  // uploads: chunked PUTs with Content-Range, resumed from what the server has after a failure
  function uploadId() { const a = new Uint8Array(16); crypto.getRandomValues(a); return Array.from(a, b => b.toString(16).padStart(2, "0")).join(""); }
  function put(url, id, blob, start, total, onProgress) {
    return new Promise((resolve, reject) => {
      const x = new XMLHttpRequest();
      x.open("PUT", url);
      x.setRequestHeader("X-XSRFToken", xsrf); x.setRequestHeader("X-Ink-Upload", id);
      if (total > 0) x.setRequestHeader("Content-Range", "bytes " + start + "-" + (start + blob.size - 1) + "/" + total);
      x.upload.onprogress = (ev) => onProgress(start + ev.loaded);
      x.onload = () => x.status < 300 ? resolve(JSON.parse(x.responseText)) : reject(Object.assign(new Error((() => { try { return JSON.parse(x.responseText).message; } catch { return x.statusText; } })()), {status: x.status}));
      x.onerror = () => reject(new Error("connection lost"));
      x.send(blob);
    });
  }
  async function upload(file, target) {
    const line = document.createElement("div"); line.className = "ink-upload"; line.dataset.name = target;
    const label = document.createElement("span"); label.textContent = target + " ";
    const bar = document.createElement("div"); bar.className = "bar"; const fill = document.createElement("div"); bar.appendChild(fill);
    line.append(label, bar); $("ink-uploads").appendChild(line);
    const progress = (n) => { fill.style.width = (file.size ? 100 * n / file.size : 100) + "%"; line.dataset.sent = n; };
    if (maxUpload && file.size > maxUpload) { label.textContent += "too large for this site"; line.dataset.state = "failed"; return; }
    const id = uploadId(), url = fileUrl(target);
    let start = 0, tries = 0;
    while (true) {
      try {
        const end = Math.min(file.size, start + CHUNK);
        const answer = await put(url, id, file.slice(start, end), start, file.size, progress);
        if (answer.received !== undefined && answer.received < file.size) { start = answer.received; continue; }
        progress(file.size); line.dataset.state = "done"; label.textContent = target + " ✓ "; return;
      } catch (e) {
        if (e.status && e.status < 500 && e.status !== 409) { label.textContent = target + ": " + e.message; line.dataset.state = "failed"; return; }
        if (++tries > 20) { label.textContent = target + ": " + e.message; line.dataset.state = "failed"; return; }
        await new Promise(r => setTimeout(r, Math.min(30000, 500 * 2 ** tries)));
        try { start = (await call("GET", "uploads/" + enc(target) + "?upload=" + id)).received; } catch { /* asked again after the next failure */ }
      }
    }
  }
  async function uploadAll(items) {
    await Promise.all(items.map(([file, rel]) => upload(file, join(cwd, rel))));
    load(cwd, true);
  }
  if (!share) {
    $("ink-upload").onchange = (ev) => uploadAll(Array.from(ev.target.files, f => [f, f.name]));
    const drop = $("ink-drop");
    drop.ondragover = (ev) => { ev.preventDefault(); drop.classList.add("dragging"); };
    drop.ondragleave = () => drop.classList.remove("dragging");
    drop.ondrop = async (ev) => {
      ev.preventDefault(); drop.classList.remove("dragging");
      const files = [];
      const walk = (entry, base) => new Promise((resolve) => {
        if (entry.isFile) entry.file((f) => { files.push([f, base + f.name]); resolve(); });
        else entry.createReader().readEntries(async (list) => {
          await call("POST", "mkdir/" + enc(join(cwd, base + entry.name)) + "?parents=1").catch(() => {});
          for (const e of list) await walk(e, base + entry.name + "/"); resolve();
        });
      });
      for (const item of ev.dataTransfer.items) { const e = item.webkitGetAsEntry && item.webkitGetAsEntry(); if (e) await walk(e, ""); }
      uploadAll(files);
    };
    $("ink-fetch").onclick = () => {
      const url = prompt("Fetch an https:// or root:// URL into this folder (in the background)");
      if (!url) return;
      const name = prompt("Save as", decodeURIComponent(url.split("?")[0].split("/").pop() || "download"));
      if (name) act(() => call("POST", "transfers", {kind: "pull", url, to: join(cwd, name)}).then(() => transfers()));
    };
    transfers();
    $("ink-mkdir").onclick = () => { const n = prompt("New folder name"); if (n) act(() => call("POST", "mkdir/" + enc(join(cwd, n)))); };
    $("ink-go").onsubmit = (ev) => { ev.preventDefault(); load($("ink-path").value.replace(/^\/+|\/+$/g, "")); };
    $("ink-hidden").onchange = () => load(cwd);
    $("ink-shares").onclick = async () => {
      const box = $("ink-preview"); box.replaceChildren();
      const title = document.createElement("h3"); title.textContent = "My share links"; box.appendChild(title);
      const list = document.createElement("table"); list.id = "ink-share-list"; box.appendChild(list);
      for (const link of (await call("GET", "shares")).shares) {
        const tr = document.createElement("tr"); tr.dataset.id = link.id;
        for (const v of [link.path, "until " + new Date(link.expires * 1000).toISOString().slice(0, 16).replace("T", " ")]) {
          const td = document.createElement("td"); td.textContent = v; tr.appendChild(td);
        }
        const td = document.createElement("td");
        td.appendChild(button("revoke", async () => { await call("DELETE", "shares/" + link.id); tr.remove(); }));
        tr.appendChild(td); list.appendChild(tr);
      }
      if (!list.children.length) box.append("No share links.");
    };
  }
  document.querySelectorAll("#ink-list th[data-sort]").forEach((th) => th.onclick = () => {
    order = sort === th.dataset.sort && order === "asc" ? "desc" : "asc"; sort = th.dataset.sort; load(cwd);
  });
  if (share) { shareIsDir ? load("") : preview("", {name: shareName, size: 0}); }
  else if (location.hash.length > 1) load(decodeURIComponent(location.hash.slice(1)));
  else areas();
})();
