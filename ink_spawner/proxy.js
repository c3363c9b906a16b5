// configurable-http-proxy as INK runs it: the stock proxy, except that a path whose
// percent-encoding is not valid UTF-8 (e.g. /hub/%c0%ae, an overlong '.') gets a 400 with a
// message instead of the 500 its decodeURIComponent throws (CHP 4.6). Started by the hub
// (ConfigurableHTTPProxy.command = node proxy.js CHP_BIN ...); every argument after CHP_BIN
// is the stock proxy's own.
const path = require("path");

const chpBin = process.argv.splice(2, 1)[0];
const { ConfigurableProxy } = require(path.join(path.dirname(chpBin), "..", "lib", "configproxy.js"));

function malformed(req) {
  try {
    decodeURIComponent(new URL(req.url, "http://x").pathname);
    return false;
  } catch {
    return true;
  }
}

const BODY = JSON.stringify({ status: 400, message: "the URL's path is not valid percent-encoded UTF-8" });
const web = ConfigurableProxy.prototype.handleProxyWeb;
ConfigurableProxy.prototype.handleProxyWeb = function (req, res) {
  if (malformed(req)) {
    res.writeHead(400, { "Content-Type": "application/json" });
    res.end(BODY);
    return undefined;
  }
  return web.apply(this, arguments);
};
const ws = ConfigurableProxy.prototype.handleProxyWs;
ConfigurableProxy.prototype.handleProxyWs = function (req, socket) {
  if (malformed(req)) {
    socket.end("HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n" + BODY);
    return undefined;
  }
  return ws.apply(this, arguments);
};

require(chpBin);
