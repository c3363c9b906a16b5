// A notebook (.ipynb) shown read-only in a page: each cell's source and its outputs (text,
// PNG/JPEG images, errors). Everything is written as text or as a data: image, never as HTML
// from the file, so a notebook cannot run script in the page that shows it.
window.inkNotebookView = function (box, nb) {
  const join = (v) => Array.isArray(v) ? v.join("") : String(v == null ? "" : v);
  const el = (tag, cls, text) => { const e = document.createElement(tag); if (cls) e.className = cls; if (text != null) e.textContent = text; return e; };
  const view = el("div", "ink-notebook"); view.id = "ink-preview-notebook";
  const kernel = ((nb.metadata || {}).kernelspec || {}).display_name;
  if (kernel) view.appendChild(el("p", "muted", "Kernel: " + kernel));
  for (const cell of nb.cells || []) {
    const item = el("div", "ink-cell ink-cell-" + (cell.cell_type || "raw"));
    const label = cell.cell_type === "code" ? "In [" + (cell.execution_count == null ? " " : cell.execution_count) + "]:" : "";
    if (label) item.appendChild(el("div", "ink-cell-label muted", label));
    item.appendChild(el("pre", "ink-cell-source", join(cell.source)));
    for (const out of cell.outputs || []) {
      if (out.output_type === "stream") {
        item.appendChild(el("pre", "ink-output" + (out.name === "stderr" ? " error" : ""), join(out.text)));
      } else if (out.output_type === "error") {
        item.appendChild(el("pre", "ink-output error", out.ename + ": " + out.evalue));
      } else if (out.data) {
        const image = out.data["image/png"] ? "png" : out.data["image/jpeg"] ? "jpeg" : "";
        if (image) {
          const img = el("img", "ink-output"); img.alt = "output";
          img.src = "data:image/" + image + ";base64," + join(out.data["image/" + image]).replace(/\s/g, "");
          item.appendChild(img);
        } else if (out.data["text/plain"] != null) {
          item.appendChild(el("pre", "ink-output", join(out.data["text/plain"])));
        }
      }
    }
    view.appendChild(item);
  }
  box.appendChild(view);
};
