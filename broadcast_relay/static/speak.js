// The speaker page: publishes camera + microphone (or a screen) to the relay over WHIP.
// Opened as /speak/<broadcast id>#token=<WHIP bearer token from the module>.
"use strict";
(function () {
  // From the one catalogue (parta_common/locale/*.po), exported into texts.js.
  var TEXT = {};
  ["ru", "en"].forEach(function (lang) {
    TEXT[lang] = {};
    Object.keys(window.PARTA_TEXTS[lang]).forEach(function (id) {
      if (id.indexOf("broadcast_page.speak.") === 0) TEXT[lang][id.slice(21)] = window.PARTA_TEXTS[lang][id];
    });
  });
  var lang = (navigator.language || "ru").toLowerCase().indexOf("ru") === 0 ? "ru" : "en";
  var broadcastId = location.pathname.split("/").filter(Boolean).pop();
  var token = new URLSearchParams(location.hash.slice(1)).get("token");
  var sessions = [];  // {pc, stream, location}
  var muted = false, videoOff = false, error = "";

  function $(id) { return document.getElementById(id); }
  function render() {
    var t = TEXT[lang];
    document.documentElement.lang = lang;
    $("title").textContent = t.title;
    $("camera").textContent = t.camera;
    $("screen").textContent = t.screen;
    $("mute").textContent = muted ? t.unmute : t.mute;
    $("video").textContent = videoOff ? t.videoOn : t.videoOff;
    $("stop").textContent = t.stop;
    $("lang").textContent = t.other;
    var live = sessions.length > 0;
    $("badge").dataset.status = live ? "live" : "waiting";
    $("badge").textContent = live ? t.live : t.waiting;
    ["mute", "video", "stop"].forEach(function (id) { $(id).disabled = !live; });
    $("message").textContent = !token ? t.noToken : error ? t.failed + error : "";
  }

  function waitForIce(pc) {
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise(function (resolve) {
      pc.addEventListener("icegatheringstatechange", function () {
        if (pc.iceGatheringState === "complete") resolve();
      });
      setTimeout(resolve, 3000);
    });
  }

  function preferH264(transceiver) {
    if (!window.RTCRtpReceiver || !RTCRtpReceiver.getCapabilities) return;
    var codecs = RTCRtpReceiver.getCapabilities("video").codecs;
    var h264 = codecs.filter(function (c) {
      return c.mimeType === "video/H264" && /packetization-mode=1/.test(c.sdpFmtpLine || "");
    });
    var rest = codecs.filter(function (c) { return h264.indexOf(c) < 0; });
    if (h264.length && transceiver.setCodecPreferences) transceiver.setCodecPreferences(h264.concat(rest));
  }

  function publish(stream, screen) {
    var pc = new RTCPeerConnection();
    var session = { pc: pc, stream: stream, screen: screen, location: null,
                    videoSender: null, videoTrack: null };
    stream.getTracks().forEach(function (track) {
      var tr = pc.addTransceiver(track, { direction: "sendonly", streams: [stream] });
      if (track.kind === "video") {
        preferH264(tr);
        session.videoSender = tr.sender;
        session.videoTrack = track;
      }
    });
    return pc.createOffer()
      .then(function (offer) { return pc.setLocalDescription(offer); })
      .then(function () { return waitForIce(pc); })
      .then(function () {
        return fetch("/whip/" + broadcastId + (screen ? "?kind=screen" : ""), {
          method: "POST", body: pc.localDescription.sdp,
          headers: { "Content-Type": "application/sdp", "Authorization": "Bearer " + token }
        });
      })
      .then(function (r) {
        if (r.status !== 201) return r.json().then(function (e) { throw new Error(e.error); });
        var where = r.headers.get("Location");
        return r.text().then(function (sdp) {
          return pc.setRemoteDescription({ type: "answer", sdp: sdp }).then(function () {
            session.location = where;
            sessions.push(session);
            window.partaSpeaking = sessions.length;
          });
        });
      })
      .catch(function (e) { pc.close(); throw e; });
  }

  function start(screen) {
    error = "";
    var media = screen
      ? navigator.mediaDevices.getDisplayMedia({ video: true, audio: false })
      : navigator.mediaDevices.getUserMedia({
          video: { width: 1280, height: 720 }, audio: true });
    media.then(function (stream) {
      if (!screen) $("preview").srcObject = stream;
      return publish(stream, screen);
    }).catch(function (e) { error = e.message || String(e); }).finally(render);
  }

  function stop() {
    sessions.forEach(function (s) {
      fetch(s.location, { method: "DELETE", headers: { "Authorization": "Bearer " + token } });
      s.stream.getTracks().forEach(function (t) { t.stop(); });
      s.pc.close();
    });
    sessions = [];
    window.partaSpeaking = 0;
    render();
  }

  function setEnabled(kind, enabled) {
    sessions.forEach(function (s) {
      if (kind === "audio") {
        s.stream.getAudioTracks().forEach(function (t) { t.enabled = enabled; });
      } else if (s.videoSender && !s.screen) {
        // Camera off sends nothing (not black frames): the picture moves to another speaker.
        s.videoSender.replaceTrack(enabled ? s.videoTrack : null);
      }
    });
  }

  $("camera").addEventListener("click", function () { start(false); });
  $("screen").addEventListener("click", function () { start(true); });
  $("stop").addEventListener("click", stop);
  $("mute").addEventListener("click", function () { muted = !muted; setEnabled("audio", !muted); render(); });
  $("video").addEventListener("click", function () { videoOff = !videoOff; setEnabled("video", !videoOff); render(); });
  $("lang").addEventListener("click", function () { lang = lang === "ru" ? "en" : "ru"; render(); });
  window.addEventListener("pagehide", stop);
  render();
})();
