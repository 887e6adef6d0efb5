// The viewer page: plays the link's HLS (hls.js, or natively on Safari) and shows the
// live badge and viewer count. The page lives at /watch/<link>/, so every URL is relative.
"use strict";
(function () {
  // From the one catalogue (parta_common/locale/*.po), exported into texts.js.
  var TEXT = {};
  ["ru", "en"].forEach(function (lang) {
    TEXT[lang] = {};
    Object.keys(window.PARTA_TEXTS[lang]).forEach(function (id) {
      if (id.indexOf("broadcast_page.watch.") === 0) TEXT[lang][id.slice(21)] = window.PARTA_TEXTS[lang][id];
    });
  });
  var lang = (navigator.language || "ru").toLowerCase().indexOf("ru") === 0 ? "ru" : "en";
  try { lang = localStorage.getItem("parta-lang") || lang; } catch (e) { /* private mode */ }
  var viewer;
  try {
    viewer = sessionStorage.getItem("parta-viewer");
    if (!viewer) {
      viewer = Math.random().toString(36).slice(2) + Date.now().toString(36);
      sessionStorage.setItem("parta-viewer", viewer);
    }
  } catch (e) { viewer = Math.random().toString(36).slice(2); }

  var video = document.getElementById("video");
  var state = { status: "waiting", title: "", viewers: 0 };
  var hls = null;
  var started = false;

  function render() {
    var t = TEXT[lang];
    document.documentElement.lang = lang;
    document.getElementById("title").textContent = state.title || t.title;
    var badge = document.getElementById("badge");
    badge.dataset.status = state.status;
    badge.textContent = t[state.status] || state.status;
    document.getElementById("viewers").textContent = t.viewers + state.viewers;
    document.getElementById("lang").textContent = t.other;
    document.getElementById("unmute").textContent = t.unmute;
    var msg = "";
    if (state.status === "waiting") msg = t.notStarted;
    if (state.status === "ended" && !started) msg = t.ended_msg;
    if (state.error) msg = t.error + state.error;
    document.getElementById("message").textContent = msg;
  }

  function play() {
    if (started) return;
    started = true;
    if (window.Hls && window.Hls.isSupported()) {
      hls = new window.Hls({ liveSyncDuration: 1.5, liveMaxLatencyDuration: 6,
                             maxLiveSyncPlaybackRate: 1.2, manifestLoadingMaxRetry: 6 });
      hls.on(window.Hls.Events.ERROR, function (_e, data) {
        if (data.fatal) { state.error = data.details + (data.reason ? ": " + data.reason : data.error ? ": " + data.error.message : ""); render(); }
      });
      hls.loadSource("live.m3u8");
      hls.attachMedia(video);
      window.partaHls = hls;
    } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
      video.src = "live.m3u8";  // Safari plays HLS natively
    }
    video.play().catch(function () { /* autoplay refused: the controls remain */ });
    document.getElementById("unmute").hidden = !video.muted;
  }

  function poll() {
    fetch("status?viewer=" + encodeURIComponent(viewer), { cache: "no-store" })
      .then(function (r) { return r.json(); })
      .then(function (s) {
        if (s.errcode) { state.error = s.error; render(); return; }
        state.status = s.status; state.title = s.title; state.viewers = s.viewers;
        if (s.status === "live") play();
        render();
      })
      .catch(function () { /* try again at the next poll */ })
      .finally(function () { setTimeout(poll, 5000); });
  }

  document.getElementById("lang").addEventListener("click", function () {
    lang = lang === "ru" ? "en" : "ru";
    try { localStorage.setItem("parta-lang", lang); } catch (e) { /* ignore */ }
    render();
  });
  document.getElementById("unmute").addEventListener("click", function () {
    video.muted = false; this.hidden = true;
  });
  render();
  poll();
})();
