// Listen: streams the chosen microphone to /v1/stream (harken's WebSocket protocol) as
// 16-bit PCM at the browser's sample rate in CHUNK_S pieces, shows the input level, partial
// and final text with stream times and the measured end-of-speech -> final latency (E2F:
// from the moment the utterance's last audio was captured to the final's arrival), and
// reconnects by itself when the server goes away: the audio sent since the last final and
// the audio captured meanwhile (up to MAX_PENDING chunks) go to the new connection, so an
// utterance the server lost is transcribed again.
(() => {
  const CHUNK_S = 0.1;           // audio per WebSocket message, in seconds
  // Chunks kept for a reconnection: 20 s, inside the server's default burst (audio_burst_s,
  // 30 s), and well beyond the longest retry delay, so a server back within ~18 s loses
  // nothing (with 10 s kept and a 4 s delay, a server back 7.6 s after it died was tried
  // only at 11.5 s, and the start of the utterance it had half heard was gone).
  const MAX_PENDING = 200;
  const MAX_BUFFERED = 4 << 20;  // bytes queued in the socket before chunks are dropped
  const STOP_TIMEOUT_MS = 30000; // wait this long for "stopped" after Stop
  const RETRY_MS = [500, 1000, 2000];  // reconnect delays, the last one repeats
  const FLOOR_DB = -60;          // the level meter's zero, in dBFS

  const { $ } = page;
  const toggle = $("toggle"), statusLine = $("status"), errorLine = $("error");
  const micSelect = $("mic"), langSelect = $("language"), meter = $("level");
  const finalsEl = $("finals"), stableEl = document.querySelector("#live .stable");
  const unstableEl = document.querySelector("#live .unstable");

  const WORKLET = `
    class HarkenPcm extends AudioWorkletProcessor {
      constructor(options) {
        super();
        this.size = options.processorOptions.chunk;
        this.buf = new Int16Array(this.size);
        this.n = 0;
      }
      process(inputs) {
        const x = inputs[0] && inputs[0][0];
        if (x) {
          for (let i = 0; i < x.length; i++) {
            const s = Math.max(-1, Math.min(1, x[i]));
            this.buf[this.n++] = Math.round(s < 0 ? s * 32768 : s * 32767);
            if (this.n === this.size) {
              this.port.postMessage(this.buf.buffer, [this.buf.buffer]);
              this.buf = new Int16Array(this.size);
              this.n = 0;
            }
          }
        }
        return true;
      }
    }
    registerProcessor("harken-pcm", HarkenPcm);`;

  const transcript = [];  // {start, end, text, e2f_s, language}: seconds since Start
  let run = null;         // the running capture: {ctx, stream, node, ws, pending, ...}

  function setStatus(text) { statusLine.textContent = text; }
  function showError(text) { errorLine.textContent = text; }
  function setLive(stable, unstable) {
    stableEl.textContent = stable;
    unstableEl.textContent = unstable;
  }

  // ------------------------------------------------------------------ pickers

  function fillLanguages() {
    let codes = [];
    try { codes = JSON.parse(document.body.dataset.languages || "[]"); } catch { codes = []; }
    let names = null;
    try { names = new Intl.DisplayNames(["en"], { type: "language" }); } catch { names = null; }
    for (const code of codes) {
      let label = code;
      try { if (names) label = `${names.of(code)} (${code})`; } catch { label = code; }
      langSelect.append(new Option(label, code));
    }
    if (codes.length === 1) langSelect.value = codes[0];
  }

  async function fillMicrophones() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return;
    const chosen = micSelect.value;
    const devices = await navigator.mediaDevices.enumerateDevices();
    const inputs = devices.filter((d) => d.kind === "audioinput" && d.deviceId
                                          && d.deviceId !== "default");
    micSelect.replaceChildren(new Option("Default microphone", ""));
    inputs.forEach((d, i) => micSelect.append(new Option(d.label || `Microphone ${i + 1}`,
                                                         d.deviceId)));
    micSelect.value = [...micSelect.options].some((o) => o.value === chosen) ? chosen : "";
  }

  // ------------------------------------------------------------------ transcript

  function fmt(s) { return s.toFixed(1); }

  function addFinal(entry) {
    transcript.push(entry);
    const line = document.createElement("p");
    line.className = "final";
    const time = document.createElement("span");
    time.className = "time";
    time.textContent = `${fmt(entry.start)}–${fmt(entry.end)} s`;
    const text = document.createElement("span");
    text.className = "text";
    text.textContent = entry.text;
    line.append(time, text);
    if (entry.e2f_s !== null) {
      const lat = document.createElement("span");
      lat.className = "e2f";
      lat.textContent = `E2F ${entry.e2f_s.toFixed(2)} s`;
      lat.title = "end of speech to final text";
      line.append(lat);
    }
    finalsEl.append(line);
  }

  function srtTime(s) {
    const ms = Math.max(0, Math.round(s * 1000));
    const p = (n, w) => String(n).padStart(w, "0");
    return `${p(Math.floor(ms / 3600000), 2)}:${p(Math.floor(ms / 60000) % 60, 2)}:` +
           `${p(Math.floor(ms / 1000) % 60, 2)},${p(ms % 1000, 3)}`;
  }

  const asText = () => transcript.map((e) => e.text).join("\n") + (transcript.length ? "\n" : "");
  const asSrt = () => transcript.map((e, i) =>
    `${i + 1}\n${srtTime(e.start)} --> ${srtTime(e.end)}\n${e.text}\n`).join("\n");
  const asJson = () => JSON.stringify({ transcript }, null, 2) + "\n";

  // ------------------------------------------------------------------ capture

  function level(pcm) {
    let sum = 0;
    for (let i = 0; i < pcm.length; i++) sum += pcm[i] * pcm[i];
    const rms = Math.sqrt(sum / Math.max(1, pcm.length)) / 32768;
    const db = rms > 0 ? 20 * Math.log10(rms) : FLOOR_DB;
    return Math.max(0, Math.min(1, (db - FLOOR_DB) / -FLOOR_DB));
  }

  function floatToPcm16(x) {
    const out = new Int16Array(x.length);
    for (let i = 0; i < x.length; i++) {
      const s = Math.max(-1, Math.min(1, x[i]));
      out[i] = Math.round(s < 0 ? s * 32768 : s * 32767);
    }
    return out.buffer;
  }

  function onChunk(r, buffer) {
    meter.value = level(new Int16Array(buffer));
    const chunk = { buffer, at: performance.now(), samples: buffer.byteLength / 2 };
    r.capturedS += chunk.samples / r.ctx.sampleRate;
    if (r.stopping) return;
    if (!r.ready) {
      if (r.pending.length >= MAX_PENDING) r.pending.shift();  // keep the newest audio
      r.pending.push(chunk);
      return;
    }
    send(r, chunk);
  }

  function send(r, chunk) {
    if (r.ws.bufferedAmount > MAX_BUFFERED) {
      r.dropped += 1;
      setStatus(`The network is too slow: ${r.dropped} chunks of audio dropped.`);
      return;
    }
    r.ws.send(chunk.buffer);
    r.sentSamples += chunk.samples;
    r.replay.push({ chunk, endS: r.sentSamples / r.ctx.sampleRate });  // until its final
    if (r.replay.length > MAX_PENDING) r.replay.shift();
    // When the audio up to this stream time was captured: the E2F clock starts there.
    r.marks.push([r.sentSamples / r.ctx.sampleRate, chunk.at]);
    if (r.marks.length > 3000) r.marks.splice(0, 1000);
  }

  async function prepareCapture(r) {
    const chunk = Math.round(r.ctx.sampleRate * CHUNK_S);
    if (r.ctx.audioWorklet) {
      const url = URL.createObjectURL(new Blob([WORKLET], { type: "text/javascript" }));
      try { await r.ctx.audioWorklet.addModule(url); } finally { URL.revokeObjectURL(url); }
      r.node = new AudioWorkletNode(r.ctx, "harken-pcm", {
        numberOfInputs: 1, numberOfOutputs: 0, channelCount: 1,
        channelCountMode: "explicit", channelInterpretation: "speakers",
        processorOptions: { chunk },
      });
      r.node.port.onmessage = (ev) => onChunk(r, ev.data);
    } else {
      // Older browsers: a ScriptProcessor (on the main thread), muted on its way out.
      r.node = r.ctx.createScriptProcessor(4096, 1, 1);
      r.node.onaudioprocess = (ev) => onChunk(r, floatToPcm16(ev.inputBuffer.getChannelData(0)));
      const mute = r.ctx.createGain();
      mute.gain.value = 0;
      r.node.connect(mute);
      mute.connect(r.ctx.destination);
    }
  }

  function stopCapture(r) {
    if (r.stream) r.stream.getTracks().forEach((t) => t.stop());
    if (r.node) r.node.disconnect();
    if (r.ctx && r.ctx.state !== "closed") r.ctx.close().catch(() => {});
    meter.value = 0;
  }

  function micMessage(err) {
    if (err.name === "NotAllowedError" || err.name === "SecurityError") {
      return "The microphone was refused. Allow this page to use it (the icon at the left " +
             "of the address bar, or the browser's site settings), then press Start again.";
    }
    if (err.name === "NotFoundError" || err.name === "OverconstrainedError") {
      return "No microphone was found. Plug one in or pick another, then press Start again.";
    }
    if (err.name === "NotReadableError") {
      return "The microphone is busy in another program. Close it there, then press Start again.";
    }
    return `The microphone could not be opened: ${err.name}: ${err.message}`;
  }

  // ------------------------------------------------------------------ connection

  function onMessage(r, msg) {
    switch (msg.type) {
      case "ready":
        r.ready = true;
        r.retry = 0;
        showError("");
        setStatus(r.reconnects ? "Reconnected: listening again." : "Listening: speak now.");
        for (const chunk of r.pending.splice(0)) send(r, chunk);
        break;
      case "speech_started":
        setStatus("Hearing speech…");
        break;
      case "speech_ended":
        if (msg.discarded) setLive("", "");
        if (!r.stopping) setStatus("Listening: speak now.");
        break;
      case "partial":
        setLive(msg.stable, msg.unstable);
        break;
      case "final": {
        setLive("", "");
        while (r.replay.length && r.replay[0].endS <= msg.end + 1e-3) r.replay.shift();
        if (!msg.text) break;
        const mark = r.marks.find((m) => m[0] >= msg.end - 1e-3);
        addFinal({ start: r.offsetS + msg.start, end: r.offsetS + msg.end, text: msg.text,
                   e2f_s: mark ? Math.max(0, (performance.now() - mark[1]) / 1000) : null,
                   language: msg.language || null });
        break;
      }
      case "error":
        r.serverError = msg;
        if (msg.code !== "shutting_down") showError(`Server error (${msg.code}): ${msg.message}`);
        break;
      case "stopped":
        r.finished = true;
        r.ws.close(1000);
        break;
    }
  }

  function connect(r) {
    r.ready = false;
    r.opened = false;
    r.serverError = null;
    r.marks = [];
    r.sentSamples = 0;
    r.pending = r.replay.map((x) => x.chunk).concat(r.pending).slice(-MAX_PENDING);
    r.replay = [];
    // Stream time restarts at 0 on every connection: finals are shifted by what was
    // captured before this connection's first chunk (the oldest one still pending).
    const pendingS = r.pending.reduce((n, c) => n + c.samples, 0) / r.ctx.sampleRate;
    r.offsetS = r.capturedS - pendingS;
    const ws = new WebSocket(page.wsUrl("/v1/stream"));
    r.ws = ws;
    ws.binaryType = "arraybuffer";
    ws.onopen = () => {
      r.opened = true;
      const start = { type: "start", sample_rate: r.ctx.sampleRate, encoding: "pcm16",
                      channels: 1, partials: true };
      if (langSelect.value) start.language = langSelect.value;
      ws.send(JSON.stringify(start));
    };
    ws.onmessage = (ev) => {
      let msg;
      try { msg = JSON.parse(ev.data); } catch { return; }
      onMessage(r, msg);
    };
    ws.onclose = (ev) => onClose(r, ws, ev);
  }

  async function onClose(r, ws, ev) {
    if (run !== r || r.ws !== ws) return;
    if (r.finished || r.stopping) { finish(r, "Stopped."); return; }
    const code = r.serverError && r.serverError.code;
    if (code && !["shutting_down", "internal", "engine_error", "server_busy", "timeout",
                  "too_slow"].includes(code)) {
      finish(r, "Stopped.");  // the server refused what this page sent: retrying won't help
      return;
    }
    setLive("", "");
    if (!r.opened) {
      const why = await page.whyRefused();
      if (run !== r) return;
      if (why) { showError(why); finish(r, "Stopped."); return; }
    }
    const delay = RETRY_MS[Math.min(r.retry, RETRY_MS.length - 1)];
    r.retry += 1;
    r.reconnects += 1;
    showError(`The server went away${ev.code && ev.code !== 1006 ? ` (code ${ev.code})` : ""}. ` +
              `Reconnecting in ${(delay / 1000).toFixed(1)} s; the microphone stays on.`);
    setStatus("Reconnecting…");
    r.retryTimer = setTimeout(() => { if (run === r && !r.stopping) connect(r); }, delay);
  }

  function finish(r, status) {
    if (run !== r) return;
    run = null;
    clearTimeout(r.stopTimer);
    clearTimeout(r.retryTimer);
    stopCapture(r);
    setStatus(status);
    toggle.textContent = "Start";
    toggle.disabled = false;
    micSelect.disabled = langSelect.disabled = false;
  }

  async function start() {
    showError("");
    if (!window.isSecureContext || !navigator.mediaDevices) {
      showError("This browser only lets pages served over https (or from localhost) use " +
                "the microphone. Open this page as https://… or on the server's machine.");
      return;
    }
    const r = { pending: [], replay: [], marks: [], ready: false, opened: false, stopping: false,
                finished: false, dropped: 0, retry: 0, reconnects: 0, capturedS: 0,
                sentSamples: 0, offsetS: 0, serverError: null };
    run = r;
    toggle.textContent = "Stop";
    micSelect.disabled = langSelect.disabled = true;
    setStatus("Asking for the microphone…");
    try {
      r.ctx = new AudioContext();  // in the click, so autoplay rules let it run
      await prepareCapture(r);
    } catch (err) {
      finish(r, "Stopped.");
      showError(`This browser cannot record audio here: ${err.name}: ${err.message}`);
      return;
    }
    try {
      // No browser noise suppression or automatic gain: they smear word onsets.
      const audio = { channelCount: 1, echoCancellation: false, noiseSuppression: false,
                      autoGainControl: false };
      if (micSelect.value) audio.deviceId = { exact: micSelect.value };
      r.stream = await navigator.mediaDevices.getUserMedia({ audio });
      if (run !== r) { stopCapture(r); return; }
      r.ctx.createMediaStreamSource(r.stream).connect(r.node);
      await r.ctx.resume();
    } catch (err) {
      finish(r, "Stopped.");
      showError(micMessage(err));
      return;
    }
    fillMicrophones().catch(() => {});  // labels are readable once the microphone is allowed
    if (run !== r) { stopCapture(r); return; }
    setStatus("Connecting…");
    connect(r);
  }

  function stop() {
    const r = run;
    if (!r) return;
    r.stopping = true;
    stopCapture(r);
    if (!r.ws || !r.opened || r.ws.readyState !== WebSocket.OPEN) {
      if (r.ws) r.ws.close(1000);
      finish(r, "Stopped.");
      return;
    }
    toggle.disabled = true;
    setStatus("Finishing the last words…");
    r.ws.send(JSON.stringify({ type: "stop" }));
    r.stopTimer = setTimeout(() => r.ws.close(1000), STOP_TIMEOUT_MS);
  }

  async function copy() {
    const text = asText();
    try {
      await navigator.clipboard.writeText(text);
      setStatus("Transcript copied.");
    } catch {
      const range = document.createRange();  // no clipboard access: select it instead
      range.selectNodeContents(finalsEl);
      const sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
      setStatus("Transcript selected: press Ctrl+C (⌘C) to copy it.");
    }
  }

  toggle.addEventListener("click", () => (run ? stop() : start()));
  $("copy").addEventListener("click", copy);
  $("download-txt").addEventListener("click",
    () => page.download("transcript.txt", "text/plain", asText()));
  $("download-srt").addEventListener("click",
    () => page.download("transcript.srt", "application/x-subrip", asSrt()));
  $("download-json").addEventListener("click",
    () => page.download("transcript.json", "application/json", asJson()));
  $("clear").addEventListener("click", () => {
    transcript.length = 0;
    finalsEl.replaceChildren();
    setLive("", "");
  });
  fillLanguages();
  fillMicrophones().catch(() => {});
})();
