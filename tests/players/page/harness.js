// vidmill player harness: play one manifest to its end with one web player and report what happened.
// Driven by tests/players/harness.py through Playwright: `await vmPlay("hls", manifestUrl, opts)`.
// No page-level globals besides vmPlay/vmState (a global `const URL` once broke Shaka Player silently).
(function () {
  "use strict";

  var DIST = {
    hls: "/dist/hls.js",
    dash: "/dist/dash.js",
    shaka: "/dist/shaka.js",
  };

  function loadScript(src) {
    return new Promise(function (resolve, reject) {
      var s = document.createElement("script");
      s.src = src;
      s.onload = resolve;
      s.onerror = function () { reject(new Error("cannot load " + src)); };
      document.head.appendChild(s);
    });
  }

  function describe(x) {
    try { return JSON.parse(JSON.stringify(x, function (k, v) {
      return (v instanceof Uint8Array || v instanceof ArrayBuffer || (typeof Node !== "undefined" && v instanceof Node)) ? "[binary]" : v;
    })); } catch (e) { return String(x); }
  }

  // Each adapter: start(video, url, hooks) -> Promise; levels() -> [{index, height, bandwidth, codecs}]; choose(index).
  var ADAPTERS = {
    hls: function (st) {
      var hls = new window.Hls({
        enableWorker: true,
        startLevel: st.startLowest ? 0 : -1,
        // buffer about one segment ahead, so that a switch asked for reaches the screen within a segment
        maxBufferLength: st.ahead, maxMaxBufferLength: st.ahead,
        // fail fast: one retry instead of a minute of back-off on a broken segment or playlist
        fragLoadPolicy: { default: { maxTimeToFirstByteMs: 8000, maxLoadTimeMs: 20000,
          timeoutRetry: { maxNumRetry: 1, retryDelayMs: 0, maxRetryDelayMs: 0 },
          errorRetry: { maxNumRetry: 1, retryDelayMs: 100, maxRetryDelayMs: 100 } } },
        playlistLoadPolicy: { default: { maxTimeToFirstByteMs: 8000, maxLoadTimeMs: 10000,
          timeoutRetry: { maxNumRetry: 1, retryDelayMs: 0, maxRetryDelayMs: 0 },
          errorRetry: { maxNumRetry: 1, retryDelayMs: 100, maxRetryDelayMs: 100 } } },
      });
      var E = window.Hls.Events;
      hls.on(E.ERROR, function (_, d) {
        st.error({ player: "hls.js", fatal: !!d.fatal, type: d.type, details: d.details,
                   reason: d.reason || (d.error && String(d.error)) || null,
                   url: (d.frag && d.frag.url) || (d.context && d.context.url) || null });
      });
      hls.on(E.LEVEL_SWITCHED, function (_, d) { st.note("level", d.level); });
      return {
        name: "hls.js " + window.Hls.version,
        start: function (video, url) {
          return new Promise(function (resolve) {
            hls.on(E.MANIFEST_PARSED, function () { resolve(); });
            hls.attachMedia(video);
            hls.loadSource(url);
          });
        },
        levels: function () {
          return hls.levels.map(function (l, i) {
            return { index: i, height: l.height, width: l.width, bandwidth: l.bitrate,
                     codecs: [l.videoCodec, l.audioCodec].filter(Boolean).join(",") };
          });
        },
        choose: function (i) { hls.nextLevel = i; },
        destroy: function () { hls.destroy(); },
      };
    },

    dash: function (st) {
      var dashjs = window.dashjs;
      var p = dashjs.MediaPlayer().create();
      p.updateSettings({
        debug: { logLevel: dashjs.Debug.LOG_LEVEL_WARNING },
        streaming: {
          // never replace what is buffered: a switch shows from the next segment fetched (replacing made
          // Chromium decode only 61-84% of the frames, a count too loose to catch a broken segment)
          buffer: { bufferTimeAtTopQuality: st.ahead, bufferTimeAtTopQualityLongForm: st.ahead,
                    stableBufferTime: st.ahead, initialBufferLevel: 0, fastSwitchEnabled: false },
          retryAttempts: { MPD: 1, XLinkExpansion: 1, InitializationSegment: 1, MediaSegment: 1, IndexSegment: 1,
                           BitstreamSwitchingSegment: 1, other: 1, lowLatencyMultiplyFactor: 1 },
          retryIntervals: { MPD: 100, XLinkExpansion: 100, InitializationSegment: 100, MediaSegment: 100,
                            IndexSegment: 100, BitstreamSwitchingSegment: 100, other: 100, lowLatencyReductionFactor: 1 },
        },
      });
      var ev = dashjs.MediaPlayer.events;
      function brief(err) { return err ? "code " + err.code + ": " + err.message : String(err); }
      p.on(ev.ERROR, function (e) { st.error({ player: "dash.js", fatal: true, type: "error", details: brief(e.error) }); });
      p.on(ev.PLAYBACK_ERROR, function (e) { st.error({ player: "dash.js", fatal: true, type: "playbackError", details: brief(e.error) }); });
      // dash.js ends a presentation at the MPD's duration itself (seek there, pause) when the element does not
      // fire "ended" (media a little longer than mediaPresentationDuration): that is its end of playback
      p.on(ev.PLAYBACK_ENDED, function (e) { if (e && e.isLast) st.ended("dash.js playbackEnded"); });
      p.on(ev.QUALITY_CHANGE_RENDERED, function (e) { if (e.mediaType === "video") st.note("level", e.newQuality); });
      return {
        name: "dash.js " + p.getVersion(),
        start: function (video, url) {
          return new Promise(function (resolve) {
            p.on(ev.STREAM_INITIALIZED, function () { resolve(); });
            p.initialize(video, url, true);
          });
        },
        levels: function () {
          return p.getBitrateInfoListFor("video").map(function (b) {
            var rep = null;
            try { rep = p.getTracksFor("video")[0]; } catch (e) { /* only for codecs */ }
            return { index: b.qualityIndex, height: b.height, width: b.width, bandwidth: b.bitrate,
                     codecs: rep ? rep.codec : null };
          });
        },
        choose: function (i) {
          p.updateSettings({ streaming: { abr: { autoSwitchBitrate: { video: false } } } });
          p.setQualityFor("video", i, false);
        },
        destroy: function () { p.reset(); },
      };
    },

    shaka: function (st) {
      var shaka = window.shaka;
      shaka.polyfill.installAll();
      var p = new shaka.Player();
      var retry = { maxAttempts: 2, baseDelay: 100, backoffFactor: 1, fuzzFactor: 0, timeout: 10000 };
      p.configure({ streaming: { retryParameters: retry, bufferingGoal: st.ahead, rebufferingGoal: 0 },
                    manifest: { retryParameters: retry } });
      p.addEventListener("error", function (e) {
        var d = e.detail || {};
        st.error({ player: "shaka", fatal: d.severity === 2, type: "category " + d.category, details: "code " + d.code,
                   reason: describe(d.data) });
      });
      p.addEventListener("variantchanged", function () {
        var t = p.getVariantTracks().filter(function (v) { return v.active; })[0];
        if (t) st.note("level", t.id);
      });
      function sorted() {
        return p.getVariantTracks().slice().sort(function (a, b) { return a.bandwidth - b.bandwidth; });
      }
      return {
        name: "shaka " + shaka.Player.version,
        start: function (video, url) {
          return p.attach(video).then(function () { return p.load(url); });
        },
        levels: function () {
          return sorted().map(function (t, i) {
            return { index: i, height: t.height, width: t.width, bandwidth: t.bandwidth, codecs: t.codecs };
          });
        },
        choose: function (i) {
          p.configure({ abr: { enabled: false } });
          p.selectVariantTrack(sorted()[i], false);
        },
        destroy: function () { return p.destroy(); },
      };
    },
  };

  window.vmState = null;

  // opts: rate (playbackRate), stallSeconds, startupSeconds, timeoutSeconds, switchEvery (media s, 0 = ABR only),
  // bufferAhead (s of media the player may buffer ahead: about one segment makes forced switches show)
  window.vmPlay = async function (player, url, opts) {
    opts = opts || {};
    var rate = opts.rate || 1;
    var stallMs = (opts.stallSeconds || 3) * 1000;
    var startupMs = (opts.startupSeconds || 10) * 1000;
    var timeoutMs = (opts.timeoutSeconds || 60) * 1000;
    var switchEvery = opts.switchEvery || 0;
    var ahead = opts.bufferAhead || 30;

    var st = {
      player: player, version: null, errors: [], notes: [], levels: [], heights: [], sizes: [],
      outcome: null, detail: null, duration: null, currentTime: 0, played: [], switchesAsked: [],
      frames: null, wall: 0, ahead: ahead, endedBy: null, startLowest: !!switchEvery,
    };
    window.vmState = st;
    var t0 = performance.now();
    var finish;
    var done = new Promise(function (resolve) { finish = resolve; });
    function end(outcome, detail) {
      if (st.outcome) return;
      st.outcome = outcome;
      st.detail = detail === undefined ? null : detail;
      finish();
    }
    st.ended = function (by) { if (!st.outcome) st.endedBy = by; end("ended"); };
    st.error = function (e) { st.errors.push(e); if (e.fatal) end("player-error", e); };
    st.note = function (kind, value) { st.notes.push({ at: +video.currentTime.toFixed(3), kind: kind, value: value }); };

    await loadScript(DIST[player]);
    var video = document.getElementById("video");
    video.muted = true;
    video.defaultPlaybackRate = rate;
    var adapter = ADAPTERS[player](st);
    st.version = adapter.name;

    video.addEventListener("error", function () {
      var me = video.error;
      end("media-error", { code: me && me.code, message: me && me.message });
    });
    video.addEventListener("ended", function () { st.ended("media element"); });
    video.addEventListener("resize", function () {
      if (video.videoHeight && st.heights.indexOf(video.videoHeight) < 0) st.heights.push(video.videoHeight);
      st.sizes.push({ at: +video.currentTime.toFixed(3), w: video.videoWidth, h: video.videoHeight });
    });
    video.addEventListener("ratechange", function () {
      if (video.playbackRate !== rate && video.playbackRate !== 0) video.playbackRate = rate;
    });

    var lastTime = -1, lastMove = performance.now(), started = false, nextSwitch = switchEvery, level = 0;
    var timer = setInterval(function () {
      var now = performance.now();
      if (video.currentTime > lastTime + 0.001) {
        lastTime = video.currentTime; lastMove = now;
        if (video.currentTime > 0) started = true;
      }
      if (!started && now - t0 > startupMs) end("stall", "playback did not start in " + startupMs / 1000 + " s");
      else if (started && now - lastMove > stallMs)
        end("stall", "no progress for " + stallMs / 1000 + " s at " + video.currentTime.toFixed(3) +
            " s (readyState " + video.readyState + ", paused " + video.paused + ")");
      if (now - t0 > timeoutMs) end("timeout", "not ended after " + timeoutMs / 1000 + " s");
      // the next switch waits until the last one reached the screen: players that switch from the next segment
      // fetched (none replaces its buffer) would otherwise have a switch overtaken by the next one at 4x
      var last = st.switchesAsked.length ? st.levels[level] : null;
      var shown = !last || !last.height || video.videoHeight === last.height;
      if (switchEvery && started && video.currentTime >= nextSwitch && shown) {
        var n = st.levels.length;
        if (n > 1) {
          level = (level + 1) % n;
          st.switchesAsked.push({ at: +video.currentTime.toFixed(3), to: level });
          try { adapter.choose(level); } catch (e) { st.errors.push({ player: player, fatal: false, type: "choose", details: String(e) }); }
        }
        nextSwitch = Math.max(nextSwitch + switchEvery, video.currentTime + switchEvery / 2);
      }
    }, 100);

    try {
      await Promise.race([adapter.start(video, url), done]);  // a load that fails never "starts"
      if (st.outcome) throw null;
      st.levels = adapter.levels();
      // start at the lowest rung, then climb (hls.js is told so by its startLevel: choosing now races its start)
      if (switchEvery && st.levels.length > 1 && player !== "hls") adapter.choose(0);
      video.playbackRate = rate;
      var pp = video.play();
      if (pp && pp.catch) pp.catch(function (e) { end("play-refused", String(e)); });
    } catch (e) {
      if (e !== null) end("player-error", { player: player, fatal: true, type: "load", details: describe(e), reason: String(e) });
    }

    await done;
    clearInterval(timer);
    st.wall = (performance.now() - t0) / 1000;
    st.duration = isFinite(video.duration) ? video.duration : null;
    st.currentTime = video.currentTime;
    for (var i = 0; i < video.played.length; i++) st.played.push([video.played.start(i), video.played.end(i)]);
    var q = video.getVideoPlaybackQuality ? video.getVideoPlaybackQuality() : null;
    if (q) st.frames = { total: q.totalVideoFrames, dropped: q.droppedVideoFrames, corrupted: q.corruptedVideoFrames || 0 };
    try { await adapter.destroy(); } catch (e) { /* the verdict is already taken */ }
    var out = {};
    Object.keys(st).forEach(function (k) { if (typeof st[k] !== "function") out[k] = st[k]; });
    return out;
  };
})();
