// The one fetch helper of INK's pages: JSON in and out, the page's XSRF token on every request,
// the service's own message (never a status line alone) in the Error a failure throws.
window.inkFetch = async function (url, {method = "GET", body, xsrf = ""} = {}) {
  const headers = {"X-XSRFToken": xsrf};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(url, {
    method, credentials: "same-origin", headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!r.ok) {
    let message = r.statusText || "HTTP " + r.status;
    try { message = (await r.json()).message || message; } catch { /* not JSON: keep the status */ }
    const error = new Error(message);
    error.status = r.status;
    throw error;
  }
  return r.status === 204 ? null : r.json();
};
