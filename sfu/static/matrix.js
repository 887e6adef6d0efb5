// The homeserver side of the page: password login and Parta's media-token endpoints.

import { MESSAGE, messageText } from "./i18n.js";

const API = "/_synapse/client/parta/v1";

export class MatrixError extends Error {
  constructor(status, errcode, message) {
    super(message || errcode || `HTTP ${status}`);
    this.status = status;
    this.errcode = errcode;
  }
}

/** "school.example" or "https://school.example/" → the client-server API base URL. */
export async function resolveHomeserver(input) {
  let value = String(input || "").trim().replace(/\/+$/, "");
  if (!value) throw new MatrixError(0, "M_INVALID_PARAM", "empty homeserver");
  if (/^https?:\/\//i.test(value)) return value;
  // A server name: ask its .well-known, else assume https on it.
  try {
    const resp = await fetch(`https://${value}/.well-known/matrix/client`);
    if (resp.ok) {
      const body = await resp.json();
      const base = body?.["m.homeserver"]?.base_url;
      if (typeof base === "string" && base) return base.replace(/\/+$/, "");
    }
  } catch (e) {
    // fall through
  }
  return `https://${value}`;
}

async function request(method, url, { body, token } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = `Bearer ${token}`;
  let resp;
  try {
    resp = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new MatrixError(0, "NETWORK", String(e.message || e));
  }
  let data = null;
  try {
    data = await resp.json();
  } catch (e) {
    data = null;
  }
  if (!resp.ok) {
    throw new MatrixError(resp.status, data?.errcode, messageText(data?.[MESSAGE]) ?? data?.error);
  }
  return data;
}

/** Password login; the session of a Matrix device named "Parta: урок". */
export async function login(homeserver, user, password) {
  const identifier = user.startsWith("@")
    ? { type: "m.id.user", user }
    : { type: "m.id.user", user: user.trim() };
  return request("POST", `${homeserver}/_matrix/client/v3/login`, {
    body: {
      type: "m.login.password",
      identifier,
      password,
      initial_device_display_name: "Parta: урок",
    },
  });
}

export async function logout(homeserver, token) {
  try {
    await request("POST", `${homeserver}/_matrix/client/v3/logout`, { body: {}, token });
  } catch (e) {
    // the session may be gone already
  }
}

function roomPath(roomId) {
  return `${API}/rooms/${encodeURIComponent(roomId)}`;
}

/** {token, sfu_url, expires_at, role, grants, …} for a signed-in person. */
export async function mediaToken(homeserver, roomId, accessToken) {
  return request("POST", `${homeserver}${roomPath(roomId)}/media_token`, {
    body: {},
    token: accessToken,
  });
}

/** The same for a widget: the OpenID token Element gave is the identity. */
export async function mediaTokenFromOpenId(homeserver, roomId, openid) {
  const openidToken = {
    access_token: openid.access_token,
    matrix_server_name: openid.matrix_server_name,
  };
  if (openid.token_type) openidToken.token_type = openid.token_type;
  if (Number.isInteger(openid.expires_in)) openidToken.expires_in = openid.expires_in;
  return request("POST", `${homeserver}${roomPath(roomId)}/media_token/openid`, {
    body: { openid_token: openidToken },
  });
}

export async function listLessons(homeserver, roomId, accessToken) {
  return request("GET", `${homeserver}${roomPath(roomId)}/lessons`, { token: accessToken });
}

export async function startLesson(homeserver, roomId, title, accessToken) {
  return request("POST", `${homeserver}${roomPath(roomId)}/lessons`, {
    body: { title },
    token: accessToken,
  });
}

export async function endLesson(homeserver, roomId, lessonId, accessToken) {
  return request("POST", `${homeserver}${roomPath(roomId)}/lessons/${lessonId}/end`, {
    body: {},
    token: accessToken,
  });
}

/** The attendance CSV as a Blob (the endpoint needs the bearer token, not a link). */
export async function attendanceCsv(homeserver, roomId, lessonId, accessToken, lang) {
  const url = `${homeserver}${roomPath(roomId)}/lessons/${lessonId}/attendance?format=csv&lang=${lang}`;
  const resp = await fetch(url, { headers: { Authorization: `Bearer ${accessToken}` } });
  if (!resp.ok) {
    let data = null;
    try {
      data = await resp.json();
    } catch (e) {
      data = null;
    }
    throw new MatrixError(resp.status, data?.errcode, messageText(data?.[MESSAGE]) ?? data?.error);
  }
  return resp.blob();
}
