"""The bundled Gemini API emulator: an HTTP server speaking the Gemini REST protocol (aiohttp, with
a lean front of its own for the two generate routes).

Start it:
    python -m emulator --host 127.0.0.1 --port 0 [--profile NAME] [--config FILE.json]
                       [--time-scale X] [--seed N] [--workers N] [--loop uvloop|asyncio]
                       [--parent-pid PID] [--token-lifetime SECONDS]
It prints exactly one line, `Gemini emulator listening on http://HOST:PORT`, once it accepts
connections. From Python (also inside a gevent-patched Locust process):
    from emulator.launcher import EmulatorProcess
    with EmulatorProcess(profile="small-capacity", time_scale=0.1, seed=1) as emu:
        emu.url, emu.stats(), emu.set_faults({"server_503": 0.2})

Where to read more:
- routes and admin endpoints (the HTTP layer): emulator.server; the lean front that serves
  generateContent and streamGenerateContent itself, handing the rest to aiohttp: emulator.fastpath
  (both answer through emulator.wire); send times per request id (GET /emulator/sends):
  emulator.sends; admission (faults, quotas, capacity slots) and the timed answer, without
  HTTP: emulator.generation;
- which models are served on a day (the catalogue's line-up, retired ones 404) and what each one
  is (ModelProfile): emulator.lineup; profiles (realistic, the default; smooth, free-tier,
  small-capacity, flaky, overload, fast) and the JSON config format (`as_of` picks the day):
  emulator.profiles; what the realistic figures are held to: `calibration` in core/models.json;
- fault names, overload episodes (503s in bursts) and the runtime endpoint: emulator.faults;
- latency (heavy-tailed TTFT, prefill, thinking, decode rate per answer), capacity and
  queueing: emulator.latency; rate limits: emulator.quotas;
- the Files API: emulator.files and emulator.file_routes; context caching (cachedContents and
  implicit hits): emulator.caching and emulator.cache_routes; function calling: emulator.tools;
- answers (pseudo-text, JSON mode, thinking by level or budget): emulator.content; unsafe markers such as
  `[[unsafe:hate]]` and how safetySettings block them: emulator.moderation; how JSON verdict fields
  follow the markers: emulator.jsonfill; token counting (text, images by the model's rule and
  media resolution): emulator.tokens;
- several serving processes: emulator.workers;
- Vertex AI's routes (project routes with a bearer token, express mode with a key): emulator.vertex
  and emulator.vertex_routes; the OAuth 2 token endpoint google-auth asks (POST /token):
  emulator.oauth; the access tokens and the one auth check both fronts run: emulator.auth.
"""
