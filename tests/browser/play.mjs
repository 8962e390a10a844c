#!/usr/bin/env node
// Headless real-browser player check: plays an HLS (hls.js) or DASH (dash.js) URL in Debian's
// Chromium, driven by playwright-core, and prints ONE JSON line with what the player did.
//
//   node tests/browser/play.mjs --url http://127.0.0.1:PORT/code/index.m3u8 --kind hls \
//        --seconds 15 [--width 1280 --height 720] [--startup-timeout 20] [--chromium PATH]
//        [--levels 2,0] [--low-latency [--max-latency 2]] [--frame-clock 48]
//
// --low-latency (hls only) plays with hls.js's lowLatencyMode and maxLiveSyncPlaybackRate 1.5
// (its catch-up: off by default, without it a player that started behind the target latency,
// at the last independent part before it, stays there), and reports, once a second,
// hls.latency (the distance to the live edge), and the lag of the picture on screen behind
// the wall clock (Date.now() − hls.playingDate, from #EXT-X-PROGRAM-DATE-TIME: the wall time
// the frame reached the server's ingest). --max-latency fails the run when hls.latency
// exceeds it in any sample after the first 5 s of playback (hls.js needs a few playlist
// reloads to settle on its target).
//
// --frame-clock B (hls or dash) reads a wall clock painted into the picture and reports the
// glass-to-glass latency: the publisher (bench/scripts/llhls-latency.sh) paints, at the top
// left of each frame as it is made, 20 blocks of B x B pixels, block i white when bit i of the
// wall clock in milliseconds modulo 2^20 is set, black otherwise. At every 5th frame the page
// presents (requestVideoFrameCallback), the strip is read back from the video and the painted
// time compared with the wall time the frame is expected on screen: capture, encoder, network,
// server, player and decoder all included. Frames whose blocks read neither black nor white
// (a frame torn by the codec) are counted and left out.
//
// Exit 0 when ok, 1 otherwise (2 on bad arguments). Diagnostics go to stderr, never stdout.
// The page is served by a tiny http server started here on an ephemeral port, so its origin
// differs from the media server's and every media request is a cross-origin (CORS) request.
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

const USAGE =
  'usage: node play.mjs --url URL --kind hls|dash [--seconds 15] [--width W --height H] ' +
  '[--startup-timeout 20] [--chromium /usr/bin/chromium] [--levels 2,0] [--low-latency] ' +
  '[--max-latency S] [--frame-clock B] [--verbose] [--player-debug]';

function parseArgs(argv) {
  const opts = { kind: 'hls', seconds: 15, startupTimeout: 20, chromium: '/usr/bin/chromium' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    const num = () => {
      const v = Number(val());
      if (!Number.isFinite(v) || v < 0) throw new Error(`${a} needs a non-negative number`);
      return v;
    };
    switch (a) {
      case '--url': opts.url = val(); break;
      case '--kind': opts.kind = val(); break;
      case '--seconds': opts.seconds = num(); break;
      case '--width': opts.width = num(); break;
      case '--height': opts.height = num(); break;
      case '--startup-timeout': opts.startupTimeout = num(); break;
      case '--chromium': opts.chromium = val(); break;
      case '--levels':
        opts.levels = val().split(',').map((x) => {
          const n = Number(x);
          if (!Number.isInteger(n) || n < 0) throw new Error('--levels needs level indexes like 2,0');
          return n;
        });
        break;
      case '--low-latency': opts.lowLatency = true; break;
      case '--max-latency': opts.maxLatency = num(); break;
      case '--frame-clock': opts.frameClock = num(); break;
      case '--verbose': opts.verbose = true; break;
      case '--player-debug': opts.verbose = true; opts.playerDebug = true; break;
      case '-h': case '--help': console.error(USAGE); process.exit(0); break;
      default: throw new Error(`unknown argument ${a}`);
    }
  }
  if (!opts.url) throw new Error('--url is required');
  if (!['hls', 'dash'].includes(opts.kind)) throw new Error('--kind must be hls or dash');
  if (opts.seconds < 1) throw new Error('--seconds must be at least 1');
  if (opts.levels && opts.kind !== 'hls') throw new Error('--levels needs --kind hls');
  if (opts.lowLatency && opts.kind !== 'hls') throw new Error('--low-latency needs --kind hls');
  if (opts.maxLatency !== undefined && !opts.lowLatency) throw new Error('--max-latency needs --low-latency');
  if (opts.frameClock !== undefined && (!Number.isInteger(opts.frameClock) || opts.frameClock < 4)) {
    throw new Error('--frame-clock needs the block size in pixels (an integer >= 4)');
  }
  if (opts.levels && opts.seconds < 3 * (opts.levels.length + 1)) {
    throw new Error('--levels needs at least 3 s of --seconds per switch, and 3 before the first');
  }
  new URL(opts.url); // throws on a malformed URL
  return opts;
}

let opts;
try {
  opts = parseArgs(process.argv.slice(2));
} catch (e) {
  console.error(`play.mjs: ${e.message}\n${USAGE}`);
  process.exit(2);
}

// ---- result reporting: exactly one JSON line, whatever happens --------------------------------
const result = {
  ok: false,
  kind: opts.kind,
  url: opts.url,
  played_seconds: 0,
  wall_seconds: 0,
  current_time_start: null,
  current_time_end: null,
  advancing: false,
  video_width: 0,
  video_height: 0,
  fatal_errors: [],
  errors: [],
  stalls: 0,
  startup_seconds: null,
  reason: null,
  page_origin: null,
  console_errors: [],
  samples: [],
  levels: [],
  switches: [],
  latency: null,
  glass: null,
  clock_samples: [],
  clock_unreadable: 0,
};
let finished = false;
let cleanup = async () => {};

async function finish(reason) {
  if (finished) return;
  finished = true;
  if (reason && !result.reason) result.reason = reason;
  if (!result.ok && !result.reason) result.reason = 'unknown failure';
  process.stdout.write(JSON.stringify(result) + '\n');
  // Never let cleanup hang the exit.
  await Promise.race([cleanup().catch(() => {}), new Promise((r) => setTimeout(r, 5000))]);
  process.exit(result.ok ? 0 : 1);
}

const hardTimeoutMs = (opts.seconds + 30) * 1000;
setTimeout(() => finish(`overall timeout after ${opts.seconds + 30}s`), hardTimeoutMs).unref();
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => finish(`killed by ${sig}`));
process.on('unhandledRejection', (e) => finish(`internal error: ${e && e.stack ? e.stack : e}`));

// ---- the page: a blank document from a different origin than the media ------------------------
const PAGE_HTML =
  '<!doctype html><html><head><meta charset="utf-8"><title>tributary player check</title></head>' +
  '<body style="margin:0;background:#000"><video id="v" muted playsinline ' +
  'style="width:100%"></video></body></html>';

function startPageServer() {
  return new Promise((resolve, reject) => {
    const srv = http.createServer((req, res) => {
      if (req.url === '/' || req.url === '/index.html') {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
        res.end(PAGE_HTML);
      } else if (req.url === '/favicon.ico') {
        res.writeHead(204);
        res.end();
      } else {
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('not found');
      }
    });
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => resolve(srv));
  });
}

// ---- in-page player setup (runs inside Chromium) -----------------------------------------------
function setupInPage({ kind, url, debug, lowLatency, frameClock }) {
  const st = {
    fatal: [],
    errors: [],
    droppedErrors: 0,
    waiting: 0,
    started: null, // { ct, t } at the first 'playing' event
    playRejected: null,
    levels: [], // the master's variants, once parsed
    switched: [], // { level, t }: hls.js LEVEL_SWITCHED
    frags: [], // { level, url, t }: hls.js FRAG_LOADED (the last 200)
  };
  window.__st = st;
  // The painted wall clock of every 5th presented frame (see --frame-clock): st.clock gets
  // {t, ms}, ms the frame's expected display wall time minus the time painted into it. Inside
  // setupInPage: only this function's source reaches the page.
  function readFrameClock(v, st, block) {
    const BITS = 20;
    const MOD = 2 ** BITS;
    const c = document.createElement('canvas');
    c.width = block * BITS;
    c.height = block;
    const g = c.getContext('2d', { willReadFrequently: true });
    st.clock = [];
    st.clockBad = 0;
    let frame = 0;
    const onFrame = (now, meta) => {
      if (frame++ % 5 === 0 && v.videoWidth >= block * BITS && v.videoHeight >= block) {
        g.drawImage(v, 0, 0, block * BITS, block, 0, 0, block * BITS, block);
        const px = g.getImageData(0, 0, block * BITS, block).data;
        let painted = 0;
        let readable = true;
        for (let i = 0; i < BITS && readable; i++) {
          const o = ((block >> 1) * block * BITS + i * block + (block >> 1)) * 4;
          const y = (px[o] + px[o + 1] + px[o + 2]) / 3;
          if (y > 60 && y < 190) readable = false;
          else if (y >= 190) painted += 2 ** i;
        }
        if (readable) {
          const shown = Date.now() + (meta.expectedDisplayTime - now);
          st.clock.push({ t: performance.now(), ms: (((Math.round(shown) % MOD) - painted) % MOD + MOD) % MOD });
          if (st.clock.length > 5000) st.clock.shift();
        } else {
          st.clockBad++;
        }
      }
      v.requestVideoFrameCallback(onFrame);
    };
    v.requestVideoFrameCallback(onFrame);
  }
  // Identical errors (same source, type, code, details, fatal) are kept once, with a count.
  const MAX = 50;
  const pushErr = (list, e) => {
    const key = (x) => JSON.stringify([x.source, x.type, x.code, x.details, x.fatal]);
    const same = list.find((x) => key(x) === key(e));
    if (same) same.count = (same.count || 1) + 1;
    else if (list.length < MAX) list.push(e);
    else st.droppedErrors++;
  };
  const v = document.getElementById('v');
  v.muted = true;
  const tryPlay = () => {
    const p = v.play();
    if (p && p.catch) p.catch((e) => { st.playRejected = String(e); });
  };
  v.addEventListener('playing', () => {
    if (!st.started) st.started = { ct: v.currentTime, t: performance.now() };
  });
  v.addEventListener('waiting', () => { if (st.started) st.waiting++; });
  v.addEventListener('error', () => {
    const me = v.error;
    pushErr(st.fatal, { source: 'video', details: me ? `MediaError code ${me.code}: ${me.message}` : 'media error', fatal: true });
  });
  if (frameClock) readFrameClock(v, st, frameClock);

  if (kind === 'hls') {
    const Hls = window.Hls;
    if (!Hls) { pushErr(st.fatal, { source: 'setup', details: 'hls.js did not load', fatal: true }); return; }
    if (!Hls.isSupported()) { pushErr(st.fatal, { source: 'setup', details: 'Hls.isSupported() is false (no MSE / codecs)', fatal: true }); return; }
    const hls = new Hls(lowLatency
      ? { debug: !!debug, lowLatencyMode: true, maxLiveSyncPlaybackRate: 1.5 }
      : { debug: !!debug });
    window.__player = hls;
    hls.on(Hls.Events.ERROR, (_ev, d) => {
      const e = {
        source: 'hls.js',
        type: d.type,
        details: d.details,
        fatal: !!d.fatal,
      };
      const u = (d.frag && d.frag.url) || (d.context && d.context.url) || (d.url) || undefined;
      if (u) e.url = u;
      if (d.response && d.response.code !== undefined) e.http_status = d.response.code;
      if (d.reason) e.reason = String(d.reason);
      if (d.error && d.error.message) e.message = String(d.error.message);
      pushErr(d.fatal ? st.fatal : st.errors, e);
    });
    v.autoplay = true;
    hls.on(Hls.Events.MANIFEST_PARSED, () => {
      st.levels = hls.levels.map((l, index) => ({
        index, width: l.width, height: l.height, bitrate: l.bitrate, url: l.url && l.url[0] !== undefined ? String(l.url[0]) : String(l.uri || ''),
      }));
      tryPlay();
    });
    hls.on(Hls.Events.LEVEL_SWITCHED, (_ev, d) => {
      if (st.switched.length < 100) st.switched.push({ level: d.level, t: performance.now() });
    });
    hls.on(Hls.Events.FRAG_LOADED, (_ev, d) => {
      st.frags.push({ level: d.frag.level, url: String(d.frag.url), t: performance.now() });
      if (st.frags.length > 200) st.frags.shift();
    });
    hls.loadSource(url);
    hls.attachMedia(v);
  } else {
    const dashjs = window.dashjs;
    if (!dashjs) { pushErr(st.fatal, { source: 'setup', details: 'dash.js did not load', fatal: true }); return; }
    const player = dashjs.MediaPlayer().create();
    window.__player = player;
    const ev = dashjs.MediaPlayer.events;
    if (debug) player.updateSettings({ debug: { logLevel: dashjs.Debug.LOG_LEVEL_DEBUG } });
    // dash.js raises ERROR for failures it gives up on (manifest, download after retries,
    // MSE/codec): treat as fatal, except code 16 (TIME_SYNC_FAILED), after which dash.js just
    // goes on with the device clock. PLAYBACK_ERROR mirrors the <video> element's error.
    const NON_FATAL_CODES = new Set([16]);
    player.on(ev.ERROR, (e) => {
      const err = (e && e.error) || {};
      const fatal = !NON_FATAL_CODES.has(err.code);
      pushErr(fatal ? st.fatal : st.errors, { source: 'dash.js', type: 'error', code: err.code, details: String(err.message || ''), fatal });
    });
    if (ev.PLAYBACK_ERROR) {
      player.on(ev.PLAYBACK_ERROR, (e) => {
        pushErr(st.fatal, { source: 'dash.js', type: 'playbackError', details: String((e && e.error && (e.error.message || e.error)) || ''), fatal: true });
      });
    }
    if (ev.FRAGMENT_LOADING_ABANDONED) {
      player.on(ev.FRAGMENT_LOADING_ABANDONED, (e) => {
        pushErr(st.errors, { source: 'dash.js', type: 'fragmentLoadingAbandoned', details: String((e && e.request && e.request.url) || ''), fatal: false });
      });
    }
    if (ev.PLAYBACK_STALLED) {
      player.on(ev.PLAYBACK_STALLED, () => {
        pushErr(st.errors, { source: 'dash.js', type: 'playbackStalled', details: 'playback stalled', fatal: false });
      });
    }
    // initialize() installs dash.js's default UTC timing source (an Internet time server, which
    // this sandbox can't reach): drop it so only the manifest's own <UTCTiming> is used, else
    // the device clock (same machine as the server). Then attach the source.
    player.initialize(v, null, true);
    player.clearDefaultUTCTimingSources();
    // No v.play()/v.autoplay here: dash.js autoplays itself, and a 'play' event that fires
    // before dash.js listens means it never sees playback start and never refreshes a live MPD.
    player.attachSource(url);
  }
}

function sampleInPage() {
  const v = document.getElementById('v');
  const st = window.__st;
  let bufEnd = null;
  try { if (v.buffered.length) bufEnd = v.buffered.end(v.buffered.length - 1); } catch (_) {}
  const p = window.__player;
  let latency = null;
  let lag = null;
  if (p && 'latency' in p) {
    latency = Number.isFinite(p.latency) ? p.latency : null;
    const date = p.playingDate;
    if (date && Number.isFinite(date.getTime())) lag = (Date.now() - date.getTime()) / 1000;
  }
  return {
    latency,
    lag,
    t: performance.now(),
    levels: st.levels,
    switched: st.switched,
    frags: st.frags,
    ct: v.currentTime,
    w: v.videoWidth,
    h: v.videoHeight,
    rs: v.readyState,
    paused: v.paused,
    ended: v.ended,
    buf: bufEnd,
    started: st.started,
    fatal: st.fatal,
    errors: st.errors,
    droppedErrors: st.droppedErrors,
    waiting: st.waiting,
    playRejected: st.playRejected,
    clock: st.clock ? st.clock.splice(0) : [],
    clockBad: st.clockBad || 0,
  };
}

// ---- main -------------------------------------------------------------------------------------
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const round3 = (x) => (x === null || x === undefined ? x : Math.round(x * 1000) / 1000);

async function main() {
  let chromium;
  try {
    ({ chromium } = require('playwright-core'));
  } catch (e) {
    return finish(`playwright-core is not installed: run \`npm ci --prefix ${path.relative(process.cwd(), here) || '.'}\``);
  }
  if (!fs.existsSync(opts.chromium)) return finish(`no Chromium at ${opts.chromium} (apt-get install chromium)`);
  const scriptPath = opts.kind === 'hls'
    ? path.join(here, 'node_modules/hls.js/dist/hls.min.js')
    : path.join(here, 'node_modules/dashjs/dist/modern/umd/dash.all.min.js');
  if (!fs.existsSync(scriptPath)) return finish(`player script missing: ${scriptPath}`);

  const pageServer = await startPageServer();
  const pageOrigin = `http://127.0.0.1:${pageServer.address().port}`;
  result.page_origin = pageOrigin;
  if (new URL(opts.url).origin === pageOrigin) return finish('media URL has the same origin as the page');

  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-chromium-'));
  let context = null;
  cleanup = async () => {
    if (context) await context.close().catch(() => {});
    pageServer.close();
    fs.rmSync(userDataDir, { recursive: true, force: true });
  };

  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: opts.chromium,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--autoplay-policy=no-user-gesture-required',
    ],
    viewport: { width: 1280, height: 720 },
  });
  const page = context.pages()[0] || (await context.newPage());
  page.on('console', (m) => {
    if (m.type() === 'error' && result.console_errors.length < 20) result.console_errors.push(m.text().slice(0, 300));
  });
  if (opts.verbose) {
    // Every response and failed request, and the page's console, to stderr.
    page.on('response', (r) => console.error(`[play] ${r.status()} ${r.request().method()} ${r.url()}`));
    page.on('requestfailed', (r) => console.error(`[play] FAILED ${r.url()}: ${r.failure() && r.failure().errorText}`));
    page.on('console', (m) => console.error(`[console.${m.type()}] ${m.text().slice(0, 500)}`));
  }
  page.on('pageerror', (e) => {
    if (result.console_errors.length < 20) result.console_errors.push(`pageerror: ${String(e).slice(0, 300)}`);
  });

  await page.goto(pageOrigin + '/', { waitUntil: 'load', timeout: 15000 });
  await page.addScriptTag({ path: scriptPath });
  await page.evaluate(setupInPage, { kind: opts.kind, url: opts.url, debug: !!opts.playerDebug, lowLatency: !!opts.lowLatency, frameClock: opts.frameClock || 0 });

  const t0 = Date.now();
  let s = null;
  const record = (x) => {
    result.samples.push({ t: x.t, ct: round3(x.ct), w: x.w, h: x.h, rs: x.rs, paused: x.paused, buf: round3(x.buf), latency: round3(x.latency), lag: round3(x.lag) });
    result.fatal_errors = x.fatal;
    result.errors = x.errors;
    if (x.droppedErrors) result.errors_dropped = x.droppedErrors;
    result.stalls = x.waiting;
    result.video_width = x.w;
    result.video_height = x.h;
    result.current_time_end = round3(x.ct);
    result.ended = x.ended;
    if (x.playRejected) result.play_rejected = x.playRejected;
    for (const c of x.clock) result.clock_samples.push({ t: c.t, ms: c.ms });
    result.clock_unreadable = x.clockBad;
  };

  // Phase 1: wait for playback to begin (first 'playing' event), or a fatal error.
  for (;;) {
    s = await page.evaluate(sampleInPage);
    if (s.started || s.fatal.length) break;
    if (Date.now() - t0 > opts.startupTimeout * 1000) break;
    await sleep(250);
  }
  if (!s.started) {
    record(s);
    return finish(s.fatal.length
      ? `fatal error before playback began: ${s.fatal[0].details}`
      : `playback did not begin within ${opts.startupTimeout}s`);
  }
  result.startup_seconds = round3((Date.now() - t0) / 1000);
  result.current_time_start = round3(s.started.ct);

  // Phase 2: sample once a second for --seconds, stopping early on a fatal error. With
  // --levels, force each level in turn (hls.js `currentLevel`: an immediate switch) at even
  // intervals: level i at (i + 1) * seconds / (levels + 1).
  const tStart = s.started.t;
  const forced = [];
  const forceAt = (opts.levels || []).map((level, i) => ({
    level,
    second: Math.floor(((i + 1) * opts.seconds) / (opts.levels.length + 1)),
  }));
  for (let i = 0; i < opts.seconds; i++) {
    for (const f of forceAt.filter((f) => f.second === i)) {
      const { from, t } = await page.evaluate((level) => {
        const from = window.__player.currentLevel;
        window.__player.currentLevel = level;
        return { from, t: performance.now() };
      }, f.level);
      forced.push({ level: f.level, from, t });
    }
    await sleep(1000);
    s = await page.evaluate(sampleInPage);
    record(s);
    if (s.fatal.length) break;
  }

  const wall = (s.t - tStart) / 1000;
  const played = s.ct - s.started.ct;
  result.wall_seconds = round3(wall);
  result.played_seconds = round3(played);
  result.advancing = played > 0 && played >= 0.6 * wall;

  const problems = [];
  if (result.fatal_errors.length) problems.push(`fatal error: ${result.fatal_errors[0].details}`);
  if (!result.advancing) problems.push(`currentTime advanced ${played.toFixed(2)}s in ${wall.toFixed(2)}s wall (need >= 60%)`);
  if (opts.width !== undefined && s.w !== opts.width) problems.push(`videoWidth ${s.w} != ${opts.width}`);
  if (opts.height !== undefined && s.h !== opts.height) problems.push(`videoHeight ${s.h} != ${opts.height}`);
  if (opts.levels) levelProblems(s, forced, problems);
  if (opts.lowLatency) latencyProblems(tStart, problems);
  if (opts.frameClock) glassProblems(tStart, problems);
  result.ok = problems.length === 0;
  result.reason = problems.length ? problems.join('; ') : null;
  return finish();
}

// Low latency: the distance to the live edge (hls.latency) and the picture's lag behind the
// wall clock after the first 5 s of playback, summarised; over --max-latency is a problem.
function latencyProblems(tStart, problems) {
  const settled = result.samples.filter((x) => x.t - tStart >= 5000);
  const stats = (key) => {
    const xs = settled.map((x) => x[key]).filter((v) => v !== null && v !== undefined);
    if (!xs.length) return null;
    const sorted = [...xs].sort((a, b) => a - b);
    return {
      n: xs.length,
      min: round3(sorted[0]),
      median: round3(sorted[Math.floor(sorted.length / 2)]),
      max: round3(sorted[sorted.length - 1]),
      mean: round3(xs.reduce((a, b) => a + b, 0) / xs.length),
    };
  };
  result.latency = { edge: stats('latency'), wall_lag: stats('lag') };
  if (opts.maxLatency === undefined) return;
  if (!result.latency.edge) problems.push('hls.latency was never reported');
  else if (result.latency.edge.max > opts.maxLatency) {
    problems.push(`hls.latency reached ${result.latency.edge.max}s (> ${opts.maxLatency}s)`);
  }
}

// Glass-to-glass (--frame-clock): the painted clock's lag after the first 5 s of playback, in
// ms; no readable frame is a problem (the publisher did not paint the clock, or the picture
// is not the one painted).
function glassProblems(tStart, problems) {
  const ms = result.clock_samples.filter((x) => x.t - tStart >= 5000).map((x) => x.ms).sort((a, b) => a - b);
  if (!ms.length) {
    problems.push(`no frame with a readable clock (${result.clock_unreadable} unreadable)`);
    return;
  }
  const at = (q) => ms[Math.min(ms.length - 1, Math.floor(q * ms.length))];
  result.glass = { n: ms.length, min: ms[0], median: at(0.5), p90: at(0.9), max: ms[ms.length - 1], unreadable: result.clock_unreadable };
}

// Each forced level must really have played: it was not the level playing, hls.js switched to
// it, loaded a fragment of its media playlist (by URL) and the video took its resolution, before
// the next level was forced. hls.js orders levels by bitrate (0 = the lowest) and starts on the
// master's first variant.
function levelProblems(s, forced, problems) {
  result.levels = s.levels.map((l) => ({ index: l.index, width: l.width, height: l.height, bitrate: l.bitrate, url: l.url }));
  if (!s.levels.length) problems.push('no levels parsed from the master playlist');
  forced.forEach((f, i) => {
    const until = i + 1 < forced.length ? forced[i + 1].t : Infinity;
    const level = s.levels[f.level];
    const within = (x) => x.t >= f.t && x.t < until;
    const switched = s.switched.find((x) => within(x) && x.level === f.level);
    const frag = s.frags.find((x) => within(x) && x.level === f.level);
    const sample = level && result.samples.find((x) => within(x) && x.w === level.width && x.h === level.height);
    const playlist = level ? level.url.replace(/[^/]*$/, '') : '';
    result.switches.push({
      level: f.level,
      from: f.from,
      forced_at: round3((f.t - result.samples[0].t) / 1000),
      switched: !!switched,
      fragment_url: frag ? frag.url : null,
      video_width: sample ? sample.w : null,
      video_height: sample ? sample.h : null,
    });
    if (!level) problems.push(`level ${f.level} does not exist (${s.levels.length} levels)`);
    else if (f.from === f.level) problems.push(`level ${f.level} was already playing: no switch to check`);
    else if (!switched) problems.push(`hls.js never switched to level ${f.level}`);
    else if (!frag || !frag.url.startsWith(playlist)) problems.push(`no fragment of level ${f.level} (${playlist}) was loaded`);
    else if (!sample) problems.push(`the video never showed level ${f.level}'s ${level.width}x${level.height}`);
  });
}

main().catch((e) => finish(`internal error: ${e && e.message ? e.message : e}`));
