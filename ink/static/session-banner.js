// INK: a session near its end says so inside the app, with Extend buttons (ink/session_banner.py).
// Added by the session's own server to its app pages; talks only to that server.
(function () {
  "use strict";
  if (window.top !== window) return; // the app's own frames: the top page shows it
  const script = document.currentScript;
  const base = script.src.replace(/session-banner\.js.*$/, ""); // .../user/NAME/ink/
  const CHECK_MS = 60 * 1000;
  let banner = null;
  let dismissedUntil = 0;

  function format(seconds) {
    if (seconds <= 0) return "moments";
    const h = Math.floor(seconds / 3600);
    const m = Math.ceil((seconds % 3600) / 60);
    return h ? h + " h " + m + " min" : m + " min";
  }

  function make(session) {
    const box = document.createElement("div");
    box.id = "ink-session-banner";
    box.setAttribute("role", "alert");
    box.style.cssText =
      "position:fixed;bottom:12px;right:12px;z-index:2147483647;max-width:32rem;padding:10px 14px;" +
      "border-radius:6px;background:#fff3cd;color:#533f03;border:1px solid #e0c36a;" +
      "font:14px/1.4 system-ui,sans-serif;box-shadow:0 2px 8px rgba(0,0,0,.25)";
    const text = document.createElement("span");
    text.className = "ink-banner-text";
    box.appendChild(text);
    for (const by of session.extend_by) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "ink-extend";
      button.dataset.by = by;
      button.textContent = "+" + by.replace("h", " h");
      button.style.cssText = "margin-left:8px;padding:2px 8px;cursor:pointer";
      button.onclick = () => extend(by);
      box.appendChild(button);
    }
    const close = document.createElement("button");
    close.type = "button";
    close.setAttribute("aria-label", "Hide");
    close.textContent = "×";
    close.style.cssText = "margin-left:8px;border:0;background:none;font-size:16px;cursor:pointer";
    close.onclick = () => {
      dismissedUntil = Date.now() + 5 * 60 * 1000; // back in five minutes
      box.remove();
      banner = null;
    };
    box.appendChild(close);
    const message = document.createElement("div");
    message.className = "ink-banner-message";
    box.appendChild(message);
    document.body.appendChild(box);
    return box;
  }

  let xsrf = "";
  async function check() {
    let session;
    try {
      // the server's XSRF cookie, as JupyterLab sends it: the server asks it of every script's request
      const cookie = document.cookie.match(/(?:^|;\s*)_xsrf=([^;]*)/);
      const headers = cookie ? { "X-XSRFToken": decodeURIComponent(cookie[1]) } : {};
      const r = await fetch(base + "session", { credentials: "same-origin", cache: "no-store", headers });
      if (!r.ok) return;
      session = await r.json();
    } catch {
      return; // the server is busy or gone: ask again next time
    }
    xsrf = session.xsrf;
    const left = session.walltime_left_s;
    const ending = left !== null && left < session.ending_s;
    if (!ending || Date.now() < dismissedUntil) {
      if (banner && !ending) {
        banner.remove();
        banner = null;
      }
      return;
    }
    if (!banner) banner = make(session);
    banner.querySelector(".ink-banner-text").textContent =
      "This session ends in " + format(left) + ": save your work, or extend it.";
  }

  async function extend(by) {
    const message = banner.querySelector(".ink-banner-message");
    message.textContent = "Extending…";
    try {
      const r = await fetch(base + "extend", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-XSRFToken": xsrf },
        body: JSON.stringify({ by: by }),
      });
      const answer = await r.json().catch(() => ({}));
      if (!r.ok) {
        message.textContent = answer.message || "The hub refused (" + r.status + ").";
        return;
      }
      message.textContent = "Extended: the session may now run " + answer.walltime + " in all.";
      for (const button of banner.querySelectorAll(".ink-extend")) button.disabled = true;
      setTimeout(check, 8000); // then the banner goes, unless the session still ends soon
    } catch {
      message.textContent = "The session's server did not answer.";
    }
  }

  function start() {
    check();
    setInterval(check, CHECK_MS);
  }
  if (document.body) start();
  else document.addEventListener("DOMContentLoaded", start);
})();
