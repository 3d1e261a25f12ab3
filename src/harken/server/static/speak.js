// Speak: sends the text box to POST /v1/audio/speech (response_format "pcm": 16-bit mono at
// 24 kHz) and plays the stream as it arrives, each piece scheduled right after the last;
// Stop cancels the request and silences what is queued.
(() => {
  const RATE = 24000;  // Hz of the "pcm" format (OpenAI's)
  const { $ } = page;
  const box = $("say"), speakBtn = $("speak-start"), stopBtn = $("speak-stop");
  const statusLine = $("speak-status");
  let job = null;  // {abort, ctx, next, samples}

  function setStatus(text) { statusLine.textContent = text; }

  function done(j, text) {
    if (job !== j) return;
    job = null;
    speakBtn.disabled = false;
    stopBtn.disabled = true;
    setStatus(text);
  }

  function play(j, bytes) {
    const pcm = new Int16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2);
    if (!pcm.length) return;
    const buf = j.ctx.createBuffer(1, pcm.length, RATE);
    const ch = buf.getChannelData(0);
    for (let i = 0; i < pcm.length; i++) ch[i] = pcm[i] / 32768;
    const src = j.ctx.createBufferSource();
    src.buffer = buf;
    src.connect(j.ctx.destination);
    j.next = Math.max(j.next, j.ctx.currentTime + 0.05);
    src.start(j.next);
    j.next += buf.duration;
    j.samples += pcm.length;
  }

  async function failure(resp) {
    let detail = "";
    try { detail = (await resp.json()).error.message; } catch { detail = resp.statusText; }
    if (resp.status === 401) {
      return "The server refused the access token: type the right one under Server, then Speak again.";
    }
    if (resp.status === 503) return `The server cannot speak now: ${detail}`;
    return `The server could not speak this (${resp.status}): ${detail}`;
  }

  async function speak() {
    const text = box.value.trim();
    if (!text) { setStatus("Type something to speak first."); box.focus(); return; }
    const j = { abort: new AbortController(), ctx: new AudioContext(), next: 0, samples: 0 };
    job = j;
    speakBtn.disabled = true;
    stopBtn.disabled = false;
    setStatus("Asking the server to speak…");
    const headers = { "Content-Type": "application/json" };
    if (page.token()) headers.Authorization = `Bearer ${page.token()}`;
    let resp;
    try {
      resp = await fetch("/v1/audio/speech", {
        method: "POST", headers, signal: j.abort.signal,
        body: JSON.stringify({ model: "harken", input: text, voice: "alloy",
                               response_format: "pcm" }),
      });
    } catch (err) {
      if (job === j) j.ctx.close().catch(() => {});
      done(j, err.name === "AbortError" ? "Stopped." : "The server cannot be reached.");
      return;
    }
    if (!resp.ok) {
      j.ctx.close().catch(() => {});
      done(j, await failure(resp));
      return;
    }
    const reader = resp.body.getReader();
    let carry = null;  // an odd byte left over from the last piece
    try {
      for (;;) {
        const { value, done: end } = await reader.read();
        if (end) break;
        let bytes = value;
        if (carry !== null) {
          bytes = new Uint8Array(value.length + 1);
          bytes[0] = carry;
          bytes.set(value, 1);
          carry = null;
        }
        if (bytes.length % 2) { carry = bytes[bytes.length - 1]; bytes = bytes.subarray(0, -1); }
        play(j, bytes.slice());  // a copy: Int16Array needs an even, aligned offset
        setStatus(`Speaking… ${(j.samples / RATE).toFixed(1)} s of audio received.`);
      }
    } catch (err) {
      if (job === j && err.name !== "AbortError") {
        j.ctx.close().catch(() => {});
        done(j, "The server went away while speaking.");
      }
      return;
    }
    const left = Math.max(0, j.next - j.ctx.currentTime);
    const total = (j.samples / RATE).toFixed(1);
    setStatus(`Speaking… ${total} s of audio received.`);
    j.endTimer = setTimeout(() => {
      j.ctx.close().catch(() => {});
      done(j, `Done: ${total} s of audio spoken.`);
    }, left * 1000);
  }

  function stop() {
    const j = job;
    if (!j) return;
    j.abort.abort();
    clearTimeout(j.endTimer);
    j.ctx.close().catch(() => {});
    done(j, `Stopped after ${(j.samples / RATE).toFixed(1)} s of audio.`);
  }

  speakBtn.addEventListener("click", speak);
  stopBtn.addEventListener("click", stop);
})();
