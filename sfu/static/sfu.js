// The lesson signalling protocol, version 1 (docs/sfu-protocol.md): one WebSocket and
// one RTCPeerConnection per participant; the page is always the offerer, ICE is not
// trickled.

import { MESSAGE, messageText } from "./i18n.js";

const PROTOCOL = 1;
const ICE_WAIT_MS = 2000;
const REPLY_TIMEOUT_MS = 20000;
export const SOURCES = ["camera", "microphone", "screen"];

/** ws(s)://…/lesson/{room}/ws next to the page (/…/lesson/{room}). */
export function socketUrl(pageUrl, roomId) {
  const base = new URL(".", pageUrl);
  const url = new URL(`${encodeURIComponent(roomId)}/ws`, base);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  url.search = "";
  url.hash = "";
  return url.toString();
}

export class SignallingError extends Error {
  constructor(code, message, fatal) {
    super(message || code);
    this.code = code;
    this.fatal = fatal;
  }
}

const FATAL = new Set([
  "join_timeout",
  "unauthorized",
  "wrong_room",
  "banned",
  "lesson_locked",
  "lesson_full",
  "denied",
  "removed",
  "replaced",
  "internal",
]);

/**
 * Events (EventTarget): "state" (participants, hands, lesson, waiting room changed),
 * "slots" (what each receive slot shows), "speakers", "waiting", "notice" ({detail:
 * error}), "closed" ({detail: {code, reason, error}}), "screen_stopped".
 */
export class LessonConnection extends EventTarget {
  constructor(url, token) {
    super();
    this.url = url;
    this.token = token;
    this.ws = null;
    this.pc = null;
    this.you = null;
    this.participants = new Map();
    this.hands = [];
    this.lesson = null;
    this.waitingQueue = [];
    this.removed = [];
    // Moderators only: why a student's camera and microphone are off, by participant id.
    this.restrictions = new Map();
    this.speakers = [];
    this.slotCounts = { video: 0, audio: 0 };
    this.assignments = {};
    this.receivers = new Map(); // mid -> {kind, track}
    this.senders = {}; // source -> RTCRtpTransceiver
    this.published = {}; // source -> MediaStreamTrack
    this.nextRequest = 1;
    this.replyWaiters = new Map();
    this.negotiation = Promise.resolve();
    this.closedBy = null;
  }

  get me() {
    return this.participants.get(this.you) || null;
  }

  /** Resolves with the `joined` message; rejects on a fatal error before it. */
  connect() {
    return new Promise((resolve, reject) => {
      let settled = false;
      const ws = new WebSocket(this.url);
      this.ws = ws;
      ws.onopen = () => this.send({ type: "join", protocol: PROTOCOL, token: this.token });
      ws.onmessage = (event) => {
        let msg;
        try {
          msg = JSON.parse(event.data);
        } catch (e) {
          return;
        }
        // A refusal in the page's language when the catalogue knows it ("ru / en" otherwise).
        if (msg.type === "error") msg.message = messageText(msg[MESSAGE]) ?? msg.message;
        if (msg.type === "joined" && !settled) {
          settled = true;
          this.onJoined(msg);
          resolve(msg);
          return;
        }
        if (msg.type === "error" && FATAL.has(msg.code) && !settled) {
          settled = true;
          this.closedBy = msg;
          reject(new SignallingError(msg.code, msg.message, true));
          return;
        }
        this.handle(msg);
      };
      ws.onclose = (event) => {
        for (const waiter of this.replyWaiters.values()) waiter.reject(new Error("closed"));
        this.replyWaiters.clear();
        if (!settled) {
          settled = true;
          reject(new SignallingError("closed", event.reason || `WebSocket ${event.code}`, true));
        }
        this.dispatchEvent(
          new CustomEvent("closed", { detail: { code: event.code, error: this.closedBy } }),
        );
      };
    });
  }

  send(msg) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg));
  }

  request(msg) {
    const requestId = `r${this.nextRequest++}`;
    return { requestId, sent: this.send({ ...msg, request_id: requestId }) };
  }

  onJoined(msg) {
    this.you = msg.you;
    this.lesson = msg.lesson;
    this.hands = msg.hands || [];
    this.slotCounts = msg.slots || { video: 0, audio: 0 };
    this.iceServers = msg.ice_servers || [];
    this.participants = new Map((msg.participants || []).map((p) => [p.id, p]));
    this.emit("state");
  }

  handle(msg) {
    switch (msg.type) {
      case "waiting_for_admission":
        this.emit("waiting");
        break;
      case "participant_joined":
      case "participant_updated":
        this.participants.set(msg.participant.id, msg.participant);
        this.emit("state");
        break;
      case "participant_left":
        this.participants.delete(msg.participant_id);
        this.emit("state");
        break;
      case "lesson_updated":
        this.lesson = msg.lesson;
        this.emit("state");
        break;
      case "hands":
        this.hands = msg.queue || [];
        this.emit("state");
        break;
      case "waiting_room":
        this.waitingQueue = msg.queue || [];
        this.emit("state");
        break;
      case "removed_list":
        this.removed = msg.removed || [];
        this.emit("state");
        break;
      case "restrictions":
        this.restrictions = new Map(
          (msg.participants || []).map((r) => [r.participant_id, r.reasons || []]),
        );
        this.emit("state");
        break;
      case "slots":
        Object.assign(this.assignments, msg.assignments || {});
        this.emit("slots");
        break;
      case "speakers":
        this.speakers = msg.participant_ids || [];
        this.emit("speakers");
        break;
      case "screen_share_stopped":
        this.emit("screen_stopped", msg);
        break;
      case "answer":
      case "error": {
        const waiter = msg.request_id ? this.replyWaiters.get(msg.request_id) : null;
        if (msg.type === "error" && FATAL.has(msg.code)) this.closedBy = msg;
        if (waiter && (msg.type === "answer" || msg.code === "bad_sdp")) {
          this.replyWaiters.delete(msg.request_id);
          waiter.resolve(msg);
        } else if (msg.type === "error") {
          this.emit("notice", msg);
        }
        break;
      }
      default:
        break;
    }
  }

  emit(name, detail) {
    this.dispatchEvent(new CustomEvent(name, { detail }));
  }

  waitReply(requestId) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.replyWaiters.delete(requestId);
        reject(new Error("no answer from the SFU"));
      }, REPLY_TIMEOUT_MS);
      this.replyWaiters.set(requestId, {
        resolve: (msg) => {
          clearTimeout(timer);
          resolve(msg);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
    });
  }

  /**
   * Create the peer connection: camera, microphone and screen senders (inactive until
   * there is a track), then the receive slots the SFU asked for.
   */
  async startMedia(tracks) {
    const pc = new RTCPeerConnection({
      iceServers: this.iceServers,
      bundlePolicy: "max-bundle",
      rtcpMuxPolicy: "require",
    });
    this.pc = pc;
    for (const source of SOURCES) {
      const kind = source === "microphone" ? "audio" : "video";
      const track = tracks[source] || null;
      const transceiver = pc.addTransceiver(track || kind, {
        direction: track ? "sendonly" : "inactive",
      });
      this.senders[source] = transceiver;
      if (track) this.published[source] = track;
    }
    for (let i = 0; i < this.slotCounts.video; i++) pc.addTransceiver("video", { direction: "recvonly" });
    for (let i = 0; i < this.slotCounts.audio; i++) pc.addTransceiver("audio", { direction: "recvonly" });
    await this.negotiate();
  }

  /** One offer/answer round; rounds never overlap. */
  negotiate() {
    const round = this.negotiation.then(() => this.offerOnce());
    this.negotiation = round.catch(() => {});
    return round;
  }

  async offerOnce() {
    const pc = this.pc;
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    await waitForIce(pc, ICE_WAIT_MS);
    const sources = {};
    for (const [source, transceiver] of Object.entries(this.senders)) {
      if (transceiver.direction === "sendonly" && this.published[source]) {
        sources[transceiver.mid] = source;
      }
    }
    const { requestId } = this.request({ type: "offer", sdp: pc.localDescription.sdp, sources });
    const reply = await this.waitReply(requestId);
    if (reply.type === "error") {
      await pc.setLocalDescription({ type: "rollback" });
      throw new SignallingError(reply.code, reply.message, false);
    }
    await pc.setRemoteDescription({ type: "answer", sdp: reply.sdp });
    for (const transceiver of pc.getTransceivers()) {
      if (transceiver.direction === "recvonly" && transceiver.mid !== null) {
        this.receivers.set(transceiver.mid, {
          kind: transceiver.receiver.track.kind,
          track: transceiver.receiver.track,
        });
      }
    }
    this.emit("slots");
  }

  async publishScreen(track) {
    const transceiver = this.senders.screen;
    await transceiver.sender.replaceTrack(track);
    transceiver.direction = "sendonly";
    this.published.screen = track;
    await this.negotiate();
  }

  async unpublishScreen() {
    const transceiver = this.senders.screen;
    const track = this.published.screen;
    delete this.published.screen;
    if (track) track.stop();
    await transceiver.sender.replaceTrack(null);
    transceiver.direction = "inactive";
    await this.negotiate();
  }

  setMuted(source, muted) {
    const track = this.published[source];
    if (track) track.enabled = !muted;
    this.send({ type: "mute_self", source, muted });
  }

  leave() {
    this.send({ type: "leave" });
    this.close();
  }

  close() {
    for (const track of Object.values(this.published)) track.stop();
    if (this.pc) this.pc.close();
    if (this.ws && this.ws.readyState <= WebSocket.OPEN) this.ws.close(1000);
  }

  /** Totals over the receive slots, for the page and for tests. */
  async receiveStats() {
    const totals = { framesDecoded: 0, packetsReceived: 0, bytesReceived: 0, videoInbound: 0 };
    if (!this.pc) return totals;
    const stats = await this.pc.getStats();
    stats.forEach((report) => {
      if (report.type !== "inbound-rtp") return;
      totals.packetsReceived += report.packetsReceived || 0;
      totals.bytesReceived += report.bytesReceived || 0;
      if (report.kind === "video") {
        totals.videoInbound += 1;
        totals.framesDecoded += report.framesDecoded || 0;
      }
    });
    return totals;
  }
}

function waitForIce(pc, ms) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      pc.removeEventListener("icegatheringstatechange", check);
      clearTimeout(timer);
      resolve();
    };
    const check = () => {
      if (pc.iceGatheringState === "complete") done();
    };
    const timer = setTimeout(done, ms);
    pc.addEventListener("icegatheringstatechange", check);
  });
}
