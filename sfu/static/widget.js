// The widget side of the Matrix widget API (postMessage), as much as the page needs:
// answer the client's capability negotiation and ask for an OpenID token.

const OPENID_TIMEOUT_MS = 120000;

export class WidgetApi {
  /**
   * @param {string} widgetId the `widgetId` Element appends to the widget URL
   * @param {string} parentOrigin the origin of `parentUrl` (where Element runs)
   */
  constructor(widgetId, parentOrigin) {
    this.widgetId = widgetId;
    this.parentOrigin = parentOrigin;
    this.pending = new Map();
    this.openidWaiters = new Map();
    this.nextId = 1;
    this.ready = new Promise((resolve) => {
      this.markReady = resolve;
    });
    this.onMessage = this.onMessage.bind(this);
  }

  start() {
    window.addEventListener("message", this.onMessage);
    // Clients that do not negotiate capabilities (or already did) still answer.
    setTimeout(() => this.markReady(), 3000);
  }

  stop() {
    window.removeEventListener("message", this.onMessage);
  }

  post(message) {
    window.parent.postMessage(message, this.parentOrigin || "*");
  }

  onMessage(event) {
    if (event.source !== window.parent) return;
    if (this.parentOrigin && this.parentOrigin !== "*" && event.origin !== this.parentOrigin) return;
    const msg = event.data;
    if (!msg || typeof msg !== "object" || msg.widgetId !== this.widgetId) return;
    if (msg.api === "fromWidget" && msg.response !== undefined) {
      const waiter = this.pending.get(msg.requestId);
      if (waiter) {
        this.pending.delete(msg.requestId);
        waiter(msg.response);
      }
      return;
    }
    if (msg.api !== "toWidget") return;
    let response = {};
    switch (msg.action) {
      case "capabilities":
        // Nothing beyond OpenID, which needs no capability.
        response = { capabilities: [] };
        break;
      case "notify_capabilities":
        setTimeout(() => this.markReady(), 0);
        break;
      case "supported_api_versions":
        response = { supported_versions: ["0.0.1", "0.0.2"] };
        break;
      case "openid_credentials": {
        const waiter = this.openidWaiters.get(msg.data?.original_request_id);
        if (waiter) {
          this.openidWaiters.delete(msg.data.original_request_id);
          waiter(msg.data);
        }
        break;
      }
      default:
        break;
    }
    this.post({ ...msg, response });
    if (msg.action === "capabilities") setTimeout(() => this.markReady(), 500);
  }

  request(action, data = {}) {
    const requestId = `parta-${Date.now()}-${this.nextId++}`;
    return {
      requestId,
      answer: new Promise((resolve) => {
        this.pending.set(requestId, resolve);
        this.post({ api: "fromWidget", widgetId: this.widgetId, requestId, action, data });
      }),
    };
  }

  /** The OpenID credentials of the person using Element (may ask them first). */
  async getOpenId() {
    await this.ready;
    const { requestId, answer } = this.request("get_openid");
    const later = new Promise((resolve) => this.openidWaiters.set(requestId, resolve));
    let result = await withTimeout(answer, OPENID_TIMEOUT_MS);
    if (result?.state === "request") result = await withTimeout(later, OPENID_TIMEOUT_MS);
    if (result?.state !== "allowed" || !result.access_token) {
      throw new Error("openid_blocked");
    }
    return result;
  }
}

function withTimeout(promise, ms) {
  return Promise.race([
    promise,
    new Promise((_, reject) => setTimeout(() => reject(new Error("widget_timeout")), ms)),
  ]);
}
