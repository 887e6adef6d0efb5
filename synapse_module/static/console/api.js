// The homeserver and the module's API, as the signed-in person. The access token lives
// in this tab only (sessionStorage: gone when the tab closes), never in localStorage.

import { errorText } from "./i18n.js";

const SESSION = "parta.console.session";
export const API = "/_synapse/client/parta/v1";

export class ApiError extends Error {
  constructor(status, body) {
    super(errorText(body));
    this.status = status;
    this.body = body;
  }
}

let session = JSON.parse(sessionStorage.getItem(SESSION) || "null");

export function current() {
  return session;
}

async function request(method, path, body, token) {
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const resp = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store",
  });
  let data = null;
  const text = await resp.text();
  try {
    data = text ? JSON.parse(text) : {};
  } catch {
    data = { error: text };
  }
  if (!resp.ok) throw new ApiError(resp.status, data);
  return data;
}

/** The sign-in ways the homeserver offers: {password, sso}. */
export async function loginFlows() {
  const { flows } = await request("GET", "/_matrix/client/v3/login");
  const types = new Set((flows || []).map((f) => f.type));
  return { password: types.has("m.login.password"), sso: types.has("m.login.sso") };
}

export function ssoUrl(back) {
  return `/_matrix/client/v3/login/sso/redirect?redirectUrl=${encodeURIComponent(back)}`;
}

async function keep(answer) {
  session = { token: answer.access_token, user_id: answer.user_id };
  sessionStorage.setItem(SESSION, JSON.stringify(session));
  return session;
}

export async function loginPassword(user, password) {
  return keep(
    await request("POST", "/_matrix/client/v3/login", {
      type: "m.login.password",
      identifier: { type: "m.id.user", user },
      password,
      initial_device_display_name: "Parta console",
    }),
  );
}

export async function loginToken(token) {
  return keep(
    await request("POST", "/_matrix/client/v3/login", {
      type: "m.login.token",
      token,
      initial_device_display_name: "Parta console",
    }),
  );
}

export async function logout() {
  const token = session?.token;
  session = null;
  sessionStorage.removeItem(SESSION);
  if (token) {
    try {
      await request("POST", "/_matrix/client/v3/logout", {}, token);
    } catch {
      // The session is gone here either way; an expired token needs no logout.
    }
  }
}

/** A module API call: `call("GET", "/schools")`. A 401 ends the session. */
export async function call(method, path, body) {
  try {
    return await request(method, API + path, body, session?.token);
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      session = null;
      sessionStorage.removeItem(SESSION);
      location.hash = "#/";
    }
    throw e;
  }
}

/** A file answer of the API (a CSV, a person's zip), fetched with the token and saved
 * by the browser. */
export async function download(path, name, method = "GET") {
  const resp = await fetch(API + path, {
    method,
    headers: { Authorization: `Bearer ${session?.token}` },
    cache: "no-store",
  });
  if (!resp.ok) throw new ApiError(resp.status, await resp.json().catch(() => ({})));
  const url = URL.createObjectURL(await resp.blob());
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

/** Upload to the media repository: the mxc:// URI. */
export async function upload(file) {
  const resp = await fetch(
    `/_matrix/media/v3/upload?filename=${encodeURIComponent(file.name)}`,
    {
      method: "POST",
      headers: {
        Authorization: `Bearer ${session?.token}`,
        "Content-Type": file.type || "application/octet-stream",
      },
      body: file,
    },
  );
  const data = await resp.json().catch(() => ({}));
  if (!resp.ok) throw new ApiError(resp.status, data);
  return data.content_uri;
}

/** An mxc:// image as a blob: URL (authenticated media needs the token). */
export async function mediaUrl(mxc) {
  const m = /^mxc:\/\/([^/]+)\/([^/?#]+)$/.exec(mxc || "");
  if (!m) return null;
  const resp = await fetch(`/_matrix/client/v1/media/download/${m[1]}/${m[2]}`, {
    headers: { Authorization: `Bearer ${session?.token}` },
  });
  if (!resp.ok) return null;
  return URL.createObjectURL(await resp.blob());
}

/** A school's classes, by grade and letter (archived ones too when asked). */
export async function classesOf(school, archived = false) {
  const q = archived ? "?archived=true" : "";
  const { classes } = await call("GET", `/schools/${encodeURIComponent(school.school_id)}/classes${q}`);
  return classes.sort((a, b) => a.grade - b.grade || a.letter.localeCompare(b.letter));
}
