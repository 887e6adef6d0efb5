// The lesson page: sign in (own form or Element widget) → media token → SFU.
//
// Longer than 600 lines because it is the page's one state (`page`) with every step that
// changes it and the rendering those steps call; what stands apart already is apart: the
// SFU protocol (sfu.js), the Matrix calls (matrix.js), the widget API (widget.js) and the
// texts (i18n.js).

import { pickLanguage, setLanguage, language, t, translate } from "./i18n.js";
import {
  MatrixError,
  attendanceCsv,
  endLesson,
  listLessons,
  login,
  logout,
  mediaToken,
  mediaTokenFromOpenId,
  resolveHomeserver,
  startLesson,
} from "./matrix.js";
import { LessonConnection, SignallingError, socketUrl } from "./sfu.js";
import { WidgetApi } from "./widget.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const SESSION_KEY = "parta.lesson.session";

const page = {
  roomId: roomFromPath(location.pathname),
  lessonId: params.get("lesson") || "",
  homeserver: (params.get("hs") || "").replace(/\/+$/, ""),
  widget: null,
  session: null, // {homeserver, access_token, user_id} when signed in here
  grant: null, // the media-token answer
  conn: null,
  view: "grid",
  tiles: new Map(), // mid -> tile element
  localTile: null,
  leaving: false,
};
// For tests and for curious teachers in the console.
window.parta = page;

function roomFromPath(path) {
  const last = path.split("/").filter(Boolean).pop() || "";
  try {
    const room = decodeURIComponent(last);
    return room.startsWith("!") ? room : "";
  } catch (e) {
    return "";
  }
}

// -- small DOM helpers ----------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== undefined && value !== null && value !== false) node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

function status(key, vars) {
  $("status").textContent = t(key, vars);
  $("status").dataset.state = key;
}

let messageTimer = null;

/** A message above the lesson; `fade` (ms) hides a notice again by itself. */
function showMessage(text, { rejoin = false, fade = 0 } = {}) {
  clearTimeout(messageTimer);
  $("message-text").textContent = text;
  $("message").hidden = false;
  $("rejoin").hidden = !rejoin;
  if (fade) messageTimer = setTimeout(hideMessage, fade);
}

function hideMessage() {
  $("message").hidden = true;
}

/** A refusal from the SFU in the page's language (its own message, ru / en, otherwise). */
function refusalText(error) {
  const key = `refused_${error?.code}`;
  const text = t(key);
  return text !== key ? text : error?.message || error?.code || t("error");
}

function errorText(error) {
  if (error instanceof MatrixError || error instanceof SignallingError) {
    return error.message;
  }
  return `${t("error")}: ${error?.message || error}`;
}

// -- start ------------------------------------------------------------------------------

function applyLanguage(lang) {
  setLanguage(lang);
  $("lang").value = language();
  translate(document);
  if (page.conn) render();
}

async function main() {
  applyLanguage(pickLanguage(params, navigator.languages));
  $("lang").addEventListener("change", (e) => applyLanguage(e.target.value));
  $("rejoin").addEventListener("click", () => location.reload());
  $("signout").addEventListener("click", signOut);
  if (!page.roomId) {
    status("error");
    showMessage(t("not_a_room"));
    return;
  }
  const widgetId = params.get("widgetId");
  if (widgetId && window.parent !== window) {
    await startAsWidget(widgetId);
  } else {
    await startStandalone();
  }
}

async function startAsWidget(widgetId) {
  let parentOrigin = "*";
  try {
    parentOrigin = new URL(params.get("parentUrl") || "").origin;
  } catch (e) {
    parentOrigin = "*";
  }
  page.widget = new WidgetApi(widgetId, parentOrigin);
  page.widget.start();
  status("asking_element");
  try {
    const openid = await page.widget.getOpenId();
    status("getting_token");
    page.grant = await mediaTokenFromOpenId(page.homeserver, page.roomId, openid);
  } catch (error) {
    status("error");
    showMessage(error.message === "openid_blocked" ? t("widget_denied") : errorText(error), {
      rejoin: true,
    });
    return;
  }
  await joinLesson();
}

async function startStandalone() {
  const saved = loadSession();
  if (saved) {
    page.session = saved;
    const ok = await fetchToken();
    if (ok) return joinLesson();
  }
  showSignIn();
}

function loadSession() {
  try {
    const raw = sessionStorage.getItem(SESSION_KEY);
    const session = raw ? JSON.parse(raw) : null;
    return session && session.access_token && session.homeserver ? session : null;
  } catch (e) {
    return null;
  }
}

function showSignIn(message = "") {
  status("signin_heading");
  $("signin").hidden = false;
  $("hs").value = page.session?.homeserver || page.homeserver;
  $("signin-error").textContent = message;
  $("signin").onsubmit = async (event) => {
    event.preventDefault();
    $("signin-button").disabled = true;
    $("signin-button").textContent = t("signing_in");
    $("signin-error").textContent = "";
    try {
      const homeserver = await resolveHomeserver($("hs").value);
      const answer = await login(homeserver, $("user").value, $("password").value);
      page.session = { homeserver, access_token: answer.access_token, user_id: answer.user_id };
      sessionStorage.setItem(SESSION_KEY, JSON.stringify(page.session));
      $("password").value = "";
      if (await fetchToken()) {
        $("signin").hidden = true;
        await joinLesson();
      }
    } catch (error) {
      $("signin-error").textContent = errorText(error);
    } finally {
      $("signin-button").disabled = false;
      $("signin-button").textContent = t("signin");
    }
  };
}

/** The media token for the signed-in person; false (and the form) when it fails. */
async function fetchToken() {
  status("getting_token");
  try {
    page.grant = await mediaToken(page.session.homeserver, page.roomId, page.session.access_token);
    $("signout").hidden = false;
    if (!page.lessonId) await findLiveLesson();
    return true;
  } catch (error) {
    if (error.status === 401) {
      sessionStorage.removeItem(SESSION_KEY);
      page.session = null;
      showSignIn(errorText(error));
    } else {
      $("signin").hidden = true;
      status("error");
      showMessage(errorText(error));
      $("signout").hidden = false;
    }
    return false;
  }
}

/** Without ?lesson=, the room's live lesson (if any) is the one the panel acts on. */
async function findLiveLesson() {
  try {
    const { lessons } = await listLessons(page.session.homeserver, page.roomId, page.session.access_token);
    const live = lessons.find((lesson) => lesson.status === "live");
    if (live) setLesson(live);
  } catch (error) {
    // the panel then offers to start one
  }
}

function setLesson(lesson) {
  page.lessonId = lesson.lesson_id;
  delete $("lesson-title").dataset.i18n;
  $("lesson-title").textContent = lesson.title;
  const url = new URL(location.href);
  url.searchParams.set("lesson", lesson.lesson_id);
  history.replaceState(null, "", url);
}

async function signOut() {
  if (page.conn) page.conn.leave();
  if (page.session) await logout(page.session.homeserver, page.session.access_token);
  sessionStorage.removeItem(SESSION_KEY);
  location.reload();
}

// -- the lesson -------------------------------------------------------------------------

async function localMedia(grants) {
  const want = { video: !!grants.publish_camera, audio: !!grants.publish_microphone };
  if (!want.video && !want.audio) return {};
  const attempts = [want, { video: false, audio: want.audio }, { video: want.video, audio: false }];
  for (const constraints of attempts) {
    if (!constraints.video && !constraints.audio) continue;
    try {
      const stream = await navigator.mediaDevices.getUserMedia({
        video: constraints.video ? { width: { ideal: 640 }, height: { ideal: 480 } } : false,
        audio: constraints.audio,
      });
      return {
        camera: stream.getVideoTracks()[0] || null,
        microphone: stream.getAudioTracks()[0] || null,
      };
    } catch (e) {
      // try with less
    }
  }
  return null;
}

async function joinLesson() {
  hideMessage();
  $("signin").hidden = true;
  status("connecting");
  const grants = page.grant.grants || {};
  const tracks = (await localMedia(grants)) ?? {};
  if (!tracks.camera && !tracks.microphone && (grants.publish_camera || grants.publish_microphone)) {
    showMessage(t("no_media"), { fade: 8000 });
  }
  const conn = new LessonConnection(socketUrl(location.href, page.roomId), page.grant.token);
  page.conn = conn;
  conn.addEventListener("waiting", showWaiting);
  conn.addEventListener("state", render);
  conn.addEventListener("slots", renderStage);
  conn.addEventListener("speakers", renderStage);
  conn.addEventListener("notice", (e) =>
    showMessage(e.detail.message || e.detail.code, { fade: 8000 }),
  );
  conn.addEventListener("screen_stopped", () => stopScreen());
  conn.addEventListener("closed", (e) => onClosed(e.detail));
  try {
    await conn.connect();
  } catch (error) {
    for (const track of Object.values(tracks)) track?.stop();
    $("waiting").hidden = true;
    if (page.leaving) return;
    status("error");
    let text = error instanceof SignallingError ? refusalText(error) : errorText(error);
    if (error.code === "closed") text = t("disconnected");
    showMessage(text, { rejoin: !["removed", "banned", "denied"].includes(error.code) });
    return;
  }
  $("waiting").hidden = true;
  hideMessage();
  $("lesson").hidden = false;
  status("connected");
  setupControls();
  // Students come in with the microphone off; the teacher speaks first. Off before it is
  // published, so not a moment of it goes out (and the button never shows it on).
  if (tracks.microphone && !grants.moderate) {
    tracks.microphone.enabled = false;
    conn.setMuted("microphone", true);
  }
  await conn.startMedia(tracks);
  showLocalPreview(tracks.camera);
  render();
}

/** The SFU seated us in the waiting room: a screen saying so until the teacher decides. */
function showWaiting() {
  status("waiting_room");
  hideMessage();
  $("waiting").hidden = false;
  $("waiting-leave").onclick = () => {
    page.leaving = true;
    page.conn?.leave();
    $("waiting").hidden = true;
    status("left");
    showMessage(t("left"), { rejoin: true });
  };
}

function onClosed({ error }) {
  if (page.leaving) return;
  $("waiting").hidden = true;
  status(error ? "error" : "disconnected");
  if (error) {
    showMessage(refusalText(error), {
      rejoin: !["removed", "banned", "denied"].includes(error.code),
    });
  } else {
    showMessage(t("disconnected"), { rejoin: true });
  }
}

function setupControls() {
  const conn = page.conn;
  $("mic").onclick = () => {
    const me = conn.me;
    if (!conn.published.microphone || me?.audio_blocked) return;
    conn.setMuted("microphone", conn.published.microphone.enabled);
    renderControls();
  };
  $("cam").onclick = () => {
    if (!conn.published.camera) return;
    conn.setMuted("camera", conn.published.camera.enabled);
    renderControls();
  };
  $("screen").onclick = async () => {
    if (conn.published.screen) return stopScreen();
    try {
      const stream = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
      const track = stream.getVideoTracks()[0];
      track.addEventListener("ended", () => stopScreen());
      await conn.publishScreen(track);
    } catch (error) {
      if (error?.name !== "NotAllowedError") showMessage(errorText(error));
    }
    renderControls();
  };
  $("hand").onclick = () => {
    const raised = conn.hands.some((h) => h.participant_id === conn.you);
    conn.send({ type: raised ? "lower_hand" : "raise_hand" });
  };
  $("view").onclick = () => {
    page.view = page.view === "grid" ? "speaker" : "grid";
    renderStage();
    renderControls();
  };
  $("leave").onclick = () => {
    page.leaving = true;
    conn.leave();
    $("lesson").hidden = true;
    status("left");
    showMessage(t("left"), { rejoin: true });
  };
  $("lower-all").onclick = () => conn.send({ type: "lower_all_hands" });
  $("mute-all").onclick = () => conn.send({ type: "mute_all" });
  $("lock").onchange = (e) => conn.send({ type: "set_lesson", locked: e.target.checked });
  $("waiting-room").onchange = (e) => conn.send({ type: "set_lesson", waiting_room: e.target.checked });
  $("students-screen").onchange = (e) =>
    conn.send({ type: "set_lesson", students_may_share_screen: e.target.checked });
  $("attendance").onclick = downloadAttendance;
  $("start-form").onsubmit = async (event) => {
    event.preventDefault();
    try {
      const lesson = await startLesson(
        page.session.homeserver,
        page.roomId,
        $("new-title").value,
        page.session.access_token,
      );
      setLesson(lesson);
      showMessage(t("lesson_started", { title: lesson.title }), { fade: 6000 });
      render();
    } catch (error) {
      showMessage(errorText(error));
    }
  };
  $("end-lesson").onclick = async () => {
    try {
      await endLesson(page.session.homeserver, page.roomId, page.lessonId, page.session.access_token);
      page.leaving = true;
      conn.leave();
      $("lesson").hidden = true;
      showMessage(t("lesson_ended"));
    } catch (error) {
      showMessage(errorText(error));
    }
  };
}

async function stopScreen() {
  if (page.conn?.published.screen) {
    try {
      await page.conn.unpublishScreen();
    } catch (error) {
      showMessage(errorText(error));
    }
  }
  renderControls();
}

async function downloadAttendance() {
  try {
    const blob = await attendanceCsv(
      page.session.homeserver,
      page.roomId,
      page.lessonId,
      page.session.access_token,
      language(),
    );
    const link = el("a", { href: URL.createObjectURL(blob), download: `attendance-${page.lessonId}.csv` });
    document.body.append(link);
    link.click();
    link.remove();
  } catch (error) {
    showMessage(errorText(error));
  }
}

// -- rendering --------------------------------------------------------------------------

function render() {
  renderControls();
  renderPeople();
  renderHands();
  renderTeacher();
  renderStage();
  const lesson = page.conn?.lesson;
  const count = lesson ? t("count", { count: lesson.count, limit: lesson.limit }) : "";
  $("count").textContent = lesson?.locked ? `${count} · ${t("lesson_locked_hint")}` : count;
}

function nameOf(participantId) {
  const p = page.conn?.participants.get(participantId);
  if (!p) return participantId;
  return participantId === page.conn.you ? `${p.name} (${t("you")})` : p.name;
}

function setToggle(button, on, label, disabled = false) {
  button.textContent = label;
  button.title = label;
  button.setAttribute("aria-pressed", String(on));
  button.disabled = disabled;
}

function renderControls() {
  const conn = page.conn;
  if (!conn) return;
  const me = conn.me || {};
  const mic = conn.published.microphone;
  if (me.audio_blocked) setToggle($("mic"), false, t("mic_blocked"), true);
  else setToggle($("mic"), !!mic?.enabled, t(mic?.enabled ? "mic_on" : "mic_off"), !mic);
  const cam = conn.published.camera;
  setToggle($("cam"), !!cam?.enabled, t(cam?.enabled ? "cam_on" : "cam_off"), !cam);
  const sharing = !!conn.published.screen;
  const mayShare = !!me.may_share_screen;
  setToggle(
    $("screen"),
    sharing,
    t(sharing ? "screen_stop" : mayShare ? "screen_start" : "screen_not_allowed"),
    !sharing && !mayShare,
  );
  const raised = conn.hands.some((h) => h.participant_id === conn.you);
  setToggle($("hand"), raised, t(raised ? "hand_lower" : "hand_raise"));
  $("view").textContent = t(page.view === "grid" ? "view_speaker" : "view_grid");
}

function renderHands() {
  const list = $("hands");
  list.replaceChildren();
  const conn = page.conn;
  if (!conn.hands.length) {
    list.append(el("li", { class: "empty" }, t("no_hands")));
    return;
  }
  const moderator = !!conn.me?.moderator;
  for (const hand of conn.hands) {
    const item = el("li", { "data-participant": hand.participant_id }, nameOf(hand.participant_id));
    if (moderator) {
      item.append(
        el(
          "button",
          {
            type: "button",
            class: "small",
            onclick: () => conn.send({ type: "lower_hand", participant_id: hand.participant_id }),
          },
          t("lower"),
        ),
      );
    }
    list.append(item);
  }
}

function renderPeople() {
  const conn = page.conn;
  const list = $("people");
  list.replaceChildren();
  const moderator = !!conn.me?.moderator;
  const people = [...conn.participants.values()].sort(
    (a, b) => Number(b.moderator) - Number(a.moderator) || a.name.localeCompare(b.name),
  );
  for (const p of people) {
    const badges = [t(p.role) || p.role];
    if (p.hand_raised) badges.push(t("badge_hand"));
    if (p.audio_blocked || p.sources?.microphone?.muted !== false) badges.push(t("badge_muted"));
    const item = el(
      "li",
      { "data-participant": p.id, "data-user": p.user_id },
      el("span", { class: "name" }, nameOf(p.id)),
      el("span", { class: "badges" }, badges.join(" ")),
    );
    if (moderator && p.id !== conn.you && !p.moderator) {
      const actions = el("span", { class: "actions" });
      const send = (msg) => () => conn.send({ ...msg, participant_id: p.id });
      actions.append(
        el(
          "button",
          { type: "button", class: "small", "data-action": p.audio_blocked ? "unmute" : "mute", onclick: send({ type: p.audio_blocked ? "unmute" : "mute" }) },
          t(p.audio_blocked ? "unmute" : "mute"),
        ),
        el(
          "button",
          {
            type: "button",
            class: "small",
            "data-action": "allow_screen",
            onclick: send({ type: "allow_screen", allowed: !p.may_share_screen }),
          },
          t(p.may_share_screen ? "forbid_screen" : "allow_screen"),
        ),
        el(
          "button",
          {
            type: "button",
            class: "small danger",
            "data-action": "remove",
            onclick: () => {
              if (confirm(t("confirm_remove", { name: p.name }))) send({ type: "remove" })();
            },
          },
          t("remove"),
        ),
      );
      item.append(actions);
    }
    list.append(item);
  }
}

function renderTeacher() {
  const conn = page.conn;
  const moderator = !!conn.me?.moderator;
  $("teacher").hidden = !moderator;
  if (!moderator) return;
  const lesson = conn.lesson || {};
  $("lock").checked = !!lesson.locked;
  $("waiting-room").checked = !!lesson.waiting_room;
  $("students-screen").checked = !!lesson.students_may_share_screen;
  $("lesson-admin").hidden = !(page.session && page.lessonId);
  $("start-form").hidden = !(page.session && !page.lessonId);
  $("waiting-box").hidden = !conn.waitingQueue.length;
  const list = $("waiting-list");
  list.replaceChildren();
  for (const p of conn.waitingQueue) {
    list.append(
      el(
        "li",
        { "data-participant": p.id },
        el("span", { class: "name" }, p.name),
        el(
          "button",
          { type: "button", class: "small", "data-action": "admit", onclick: () => conn.send({ type: "admit", participant_id: p.id }) },
          t("admit"),
        ),
        el(
          "button",
          { type: "button", class: "small danger", "data-action": "deny", onclick: () => conn.send({ type: "deny", participant_id: p.id }) },
          t("deny"),
        ),
      ),
    );
  }
  // Removed by mistake? The teacher lets them back in.
  $("removed-box").hidden = !conn.removed.length;
  const removed = $("removed-list");
  removed.replaceChildren();
  for (const r of conn.removed) {
    removed.append(
      el(
        "li",
        { "data-user": r.user_id },
        el("span", { class: "name" }, r.name),
        el(
          "button",
          { type: "button", class: "small", "data-action": "readmit", onclick: () => conn.send({ type: "readmit", user_id: r.user_id }) },
          t("readmit"),
        ),
      ),
    );
  }
}

function showLocalPreview(track) {
  if (!track) return;
  const video = el("video", { autoplay: true, playsinline: true, muted: true });
  video.muted = true;
  video.srcObject = new MediaStream([track]);
  page.localTile = el("figure", { class: "tile local", "data-source": "camera" }, video, el("figcaption", {}, ""));
  renderStage();
}

/** One tile per video slot (its track never changes), one <audio> per audio slot. */
function renderStage() {
  const conn = page.conn;
  if (!conn) return;
  const stage = $("stage");
  stage.className = `stage ${page.view}`;
  for (const [mid, { kind, track }] of conn.receivers) {
    if (page.tiles.has(mid)) continue;
    if (kind === "audio") {
      const audio = el("audio", { autoplay: true, "data-mid": mid });
      audio.srcObject = new MediaStream([track]);
      document.body.append(audio);
      page.tiles.set(mid, audio);
    } else {
      const video = el("video", { autoplay: true, playsinline: true, muted: true });
      video.muted = true;
      video.srcObject = new MediaStream([track]);
      page.tiles.set(mid, el("figure", { class: "tile", "data-mid": mid }, video, el("figcaption")));
    }
  }
  const shown = [];
  for (const [mid, tile] of page.tiles) {
    if (tile.tagName === "AUDIO") continue;
    const assignment = conn.assignments[mid];
    if (!assignment) {
      tile.remove();
      continue;
    }
    const p = conn.participants.get(assignment.participant_id);
    tile.dataset.participant = assignment.participant_id;
    tile.dataset.source = assignment.source;
    tile.classList.toggle("speaking", conn.speakers[0] === assignment.participant_id);
    const label = assignment.source === "screen" ? `${p?.name ?? ""} — ${t("screen")}` : (p?.name ?? "");
    tile.querySelector("figcaption").textContent = label;
    shown.push({ tile, assignment, p });
  }
  if (page.localTile) {
    const me = conn.me;
    page.localTile.querySelector("figcaption").textContent = me ? `${me.name} (${t("you")})` : t("you");
    shown.push({ tile: page.localTile, assignment: { participant_id: conn.you, source: "camera" }, p: me });
  }
  // Speaker view: the screen share first, then whoever speaks, then a moderator.
  const rank = ({ assignment, p }) => {
    if (assignment.source === "screen") return 0;
    if (conn.speakers[0] === assignment.participant_id) return 1;
    if (p?.moderator) return 2;
    if (assignment.participant_id === conn.you) return 4;
    return 3;
  };
  if (page.view === "speaker") shown.sort((a, b) => rank(a) - rank(b));
  shown.forEach(({ tile }, i) => {
    tile.classList.toggle("main", page.view === "speaker" && i === 0);
    if (stage.children[i] !== tile) stage.insertBefore(tile, stage.children[i] || null);
  });
}

main().catch((error) => {
  status("error");
  showMessage(errorText(error), { rejoin: true });
});
