// INK's view of a ROOT file: the key tree (from the server) and JSROOT drawings of objects and
// of tree branches (tree.Draw("branch")), read over HTTP Range. Shared by the file service's
// preview and the ROOT browser app. inkRootView(box, keysAnswer, {jsroot: module URL, file: URL,
// headers: sent with every read (the file service's XSRF token: never in the URL), name})
// JSROOT reads through this proxy when requests need headers: one Range request per piece
function rangeReader(jsroot, where) {
  const ask = (extra, method) => fetch(where.file, {method: method || "GET", credentials: "same-origin",
                                                   headers: {...where.headers, ...extra}});
  return new (class extends jsroot.FileProxy {
    async openFile() {
      const r = await ask({}, "HEAD");
      if (!r.ok) throw Error("cannot open " + where.name + ": HTTP " + r.status);
      this.size = Number(r.headers.get("Content-Length"));
      return true;
    }
    getFileName() { return where.name; }
    getFileSize() { return this.size; }
    async readBuffer(pos, len) {
      const r = await ask({Range: "bytes=" + pos + "-" + (pos + len - 1)});
      if (r.status !== 206 && r.status !== 200) throw Error("cannot read " + where.name + ": HTTP " + r.status);
      return new DataView(await r.arrayBuffer());
    }
  })();
}

window.inkRootView = function (box, data, where) {
  let jsroot = null, file = null;
  const tree = document.createElement("ul"); tree.id = "ink-root-keys";
  const canvas = document.createElement("div"); canvas.id = "ink-root-draw"; canvas.style.cssText = "width: 100%; height: 420px;";
  const note = document.createElement("p"); note.className = "muted"; note.id = "ink-root-note";
  const facts = document.createElement("p"); facts.className = "muted";
  const mib = (n) => (n / 1048576).toFixed(n < 1048576 ? 3 : 1) + " MiB";
  facts.textContent = "Listed by reading " + mib(data.bytes_read) + " of " + mib(data.size) + ". Click an object to draw it.";
  box.append(facts, tree, canvas, note);
  async function open() {
    jsroot = jsroot || await import(where.jsroot);
    file = file || await jsroot.openFile(where.headers ? rangeReader(jsroot, where) : where.file);
    return file;
  }
  async function show(what, action) {
    note.textContent = "drawing " + what + "…"; canvas.dataset.drawn = "";
    try {
      if (jsroot) jsroot.cleanup(canvas);
      await action(await open());
      note.textContent = what; canvas.dataset.drawn = what;
    } catch (e) { note.textContent = "cannot draw " + what + ": " + e.message; }
  }
  function item(label, onclick) {
    const li = document.createElement("li"); const a = document.createElement("a"); a.href = "#"; a.textContent = label;
    if (onclick) a.onclick = (ev) => { ev.preventDefault(); onclick(); };
    li.appendChild(a); return li;
  }
  function add(list, keys) {
    for (const k of keys) {
      const li = item(k.name + " (" + k.class + (k.entries !== undefined ? ", " + k.entries + " entries" : "") + ")",
        k.children || k.branches ? null : () => show(k.path, async (f) => jsroot.draw(canvas, await f.readObject(k.path), "")));
      li.dataset.path = k.path; li.dataset.class = k.class;
      if (k.children) { const sub = document.createElement("ul"); add(sub, k.children); li.appendChild(sub); }
      if (k.branches) {
        const sub = document.createElement("ul");
        for (const b of k.branches) {
          const bi = item(b, () => show(k.path + ":" + b, async (f) => jsroot.draw(canvas, await jsroot.treeDraw(await f.readObject(k.path), b), "")));
          bi.dataset.branch = b; sub.appendChild(bi);
        }
        li.appendChild(sub);
      }
      list.appendChild(li);
    }
  }
  add(tree, data.keys);
};
