// Server: one WebSocket to /v1/monitor (token-protected) pushes a snapshot of the engine
// and every live session about twice a second; this draws it, and reconnects if it drops.
(() => {
  const RETRY_MS = 2000;
  const { $ } = page;
  const watchBtn = $("watch"), statusLine = $("monitor-status");
  const engineEl = $("engine"), wrap = $("sessions-wrap");
  const tbody = document.querySelector("#sessions tbody");
  let view = null;  // {ws, timer, opened}

  function setStatus(text) { statusLine.textContent = text; }

  function cell(row, text, cls) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    row.append(td);
  }

  function duration(s) {
    const m = Math.floor(s / 60);
    return m ? `${m} min ${Math.floor(s % 60)} s` : `${s.toFixed(0)} s`;
  }

  function draw(snap) {
    $("m-sessions").textContent = `${snap.sessions} of ${snap.max_sessions}`;
    $("m-queue").textContent = String(snap.queue_depth);
    $("m-inflight").textContent = String(snap.in_engine);
    $("m-rtf").textContent = snap.rtf.toFixed(3);
    $("m-restarts").textContent = String(snap.engine_restarts);
    const states = {};
    for (const e of snap.engines || []) states[e.state] = (states[e.state] || 0) + 1;
    $("m-engines").textContent = Object.entries(states).map(([k, n]) => `${n} ${k}`).join(", ")
      || "—";
    const rows = snap.connections.map((c) => {
      const tr = document.createElement("tr");
      tr.dataset.name = c.name;
      cell(tr, c.name);
      cell(tr, c.protocol);
      cell(tr, duration(c.duration_s), "num");
      cell(tr, c.last_final || "—", "final");
      cell(tr, c.e2f_s === null ? "—" : `${c.e2f_s.toFixed(2)} s`, "num e2f");
      return tr;
    });
    if (!rows.length) {
      const tr = document.createElement("tr");
      const td = document.createElement("td");
      td.colSpan = 5;
      td.textContent = "No live sessions.";
      tr.append(td);
      rows.push(tr);
    }
    tbody.replaceChildren(...rows);
    engineEl.hidden = wrap.hidden = false;
    setStatus(`Live: ${snap.connections.length} session(s), updated ` +
              `${new Date().toLocaleTimeString()}.`);
  }

  function open(v) {
    v.opened = false;
    const ws = new WebSocket(page.wsUrl("/v1/monitor"));
    v.ws = ws;
    ws.onopen = () => { v.opened = true; };
    ws.onmessage = (ev) => {
      try { draw(JSON.parse(ev.data)); } catch { /* not a snapshot */ }
    };
    ws.onclose = async () => {
      if (view !== v) return;
      if (!v.opened) {
        const why = await page.whyRefused();
        if (view !== v) return;
        if (why) { setStatus(why); close(); return; }
      }
      setStatus("The server went away; reconnecting…");
      v.timer = setTimeout(() => { if (view === v) open(v); }, RETRY_MS);
    };
  }

  function close() {
    const v = view;
    view = null;
    if (v) {
      clearTimeout(v.timer);
      if (v.ws) v.ws.close(1000);
    }
    watchBtn.textContent = "Show the server";
    watchBtn.setAttribute("aria-pressed", "false");
  }

  watchBtn.setAttribute("aria-pressed", "false");
  watchBtn.addEventListener("click", () => {
    if (view) { close(); setStatus("Stopped watching."); return; }
    view = { ws: null, timer: null, opened: false };
    watchBtn.textContent = "Stop watching";
    watchBtn.setAttribute("aria-pressed", "true");
    setStatus("Connecting…");
    open(view);
  });
})();
