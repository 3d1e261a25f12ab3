"use strict";
// What the page's three parts (listen.js, speak.js, monitor.js) share: element lookup, the
// access token, a probe of whether the server is up, and file downloads.
const page = (() => {
  const $ = (id) => document.getElementById(id);
  const tokenInput = $("token");
  tokenInput.value = new URLSearchParams(location.search).get("token") || "";

  /** The access token typed in the Server part (or given as ?token= in the address). */
  function token() { return tokenInput.value.trim(); }

  /** ws(s)://this-server<path>?token=… */
  function wsUrl(path) {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const t = token();
    return `${scheme}//${location.host}${path}${t ? "?token=" + encodeURIComponent(t) : ""}`;
  }

  /** Whether the server answers at all (GET /health needs no token). */
  async function serverUp() {
    try {
      const resp = await fetch("/health", { cache: "no-store" });
      return resp.status < 500 || resp.status === 503;
    } catch {
      return false;
    }
  }

  /** Explain a WebSocket that closed before it opened: token, or server away. */
  async function whyRefused() {
    if (await serverUp()) {
      return token()
        ? "The server refused the access token. Type the right one under Server, then try again."
        : "This server needs an access token: type it under Server (or open this page as " +
          "/?token=<token>), then try again.";
    }
    return null; // the server is away
  }

  function download(name, type, text) {
    const url = URL.createObjectURL(new Blob([text], { type }));
    const a = document.createElement("a");
    a.href = url;
    a.download = name;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }

  return { $, token, wsUrl, serverUp, whyRefused, download };
})();
