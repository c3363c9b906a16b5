// The web shell page (ink_services/shell/templates/shell.html): xterm.js on the shell's
// websocket. Settings in the page's #ink-shell-config JSON.
(function () {
  const config = JSON.parse(document.getElementById("ink-shell-config").textContent);
  const {prefix, xsrf} = config;
  const THEMES = {
    dark: {background: "#1e1e1e", foreground: "#d4d4d4", cursor: "#d4d4d4"},
    light: {background: "#ffffff", foreground: "#1e1e1e", cursor: "#1e1e1e", selectionBackground: "#add6ff"},
    solarized: {background: "#002b36", foreground: "#839496", cursor: "#93a1a1"},
  };
  let prefs = config.prefs;
  const term = new window.Terminal({fontSize: prefs.font_size, theme: THEMES[prefs.theme], scrollback: 5000,
                             fontFamily: "DejaVu Sans Mono, Menlo, monospace"});
  const fit = new window.FitAddon.FitAddon();
  term.loadAddon(fit);
  term.open(document.getElementById("ink-terminal"));
  window.inkTerminal = term;  // for tests and tools: the buffer is what the user sees
  const status = document.getElementById("ink-shell-status");
  function setStatus(state, text) { status.dataset.state = state; status.textContent = text; }

  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  const socket = new WebSocket(scheme + location.host + prefix + "terminal");
  function send(message) { if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message)); }
  function resize() {
    fit.fit();
    send(["set_size", term.rows, term.cols]);
  }
  socket.onopen = () => { setStatus("connected", "connected"); resize(); term.focus(); };
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message[0] === "stdout") term.write(message[1]);
    else if (message[0] === "disconnect") setStatus("closed", "session ended");
  };
  socket.onclose = (event) => setStatus("closed", "session ended" + (event.reason ? ": " + event.reason : ""));
  term.onData((data) => send(["stdin", data]));
  new ResizeObserver(resize).observe(document.getElementById("ink-terminal"));

  // Ctrl+Shift+C copies the selection; Ctrl+Shift+V pastes (Ctrl+C stays the shell's interrupt)
  term.attachCustomKeyEventHandler((event) => {
    if (event.type !== "keydown" || !event.ctrlKey || !event.shiftKey) return true;
    if (event.code === "KeyC") {
      if (term.hasSelection()) navigator.clipboard.writeText(term.getSelection()).catch(() => {});
      return false;
    }
    if (event.code === "KeyV") {
      navigator.clipboard.readText().then((text) => send(["stdin", text])).catch(() => {});
      return false;
    }
    return true;
  });

  async function savePrefs(changes) {
    const r = await fetch(prefix + "api/prefs", {method: "PUT", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-XSRFToken": xsrf}, body: JSON.stringify(changes)});
    if (r.ok) prefs = await r.json();
  }
  document.getElementById("ink-font-size").addEventListener("change", (e) => {
    term.options.fontSize = parseInt(e.target.value, 10); resize(); savePrefs({font_size: term.options.fontSize});
  });
  document.getElementById("ink-theme").addEventListener("change", (e) => {
    term.options.theme = THEMES[e.target.value]; savePrefs({theme: e.target.value});
  });
})();
