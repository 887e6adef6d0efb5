// The console's texts and the module's refusals, from the one catalogue
// (parta_common/locale/*.po, exported by `python -m devtools.catalogue`).
// Russian first; English with the switch (remembered in this browser) or ?lang=en.

import { TEXTS } from "./texts.js";

const PAGE = "console.";
// Where an error carries its catalogue id and parameters (parta_common/catalogue.py).
export const MESSAGE = "org.parta.message";
const KEY = "parta.console.lang";

let current = "ru";

export function pickLanguage() {
  const asked = new URLSearchParams(location.search).get("lang");
  const saved = localStorage.getItem(KEY);
  for (const tag of [asked, saved]) {
    if (tag && tag in TEXTS) return tag;
  }
  return "ru";
}

export function setLanguage(lang) {
  current = lang in TEXTS ? lang : "ru";
  localStorage.setItem(KEY, current);
  document.documentElement.lang = current;
}

export function language() {
  return current;
}

function fill(text, params) {
  return text.replace(/\{(\w+)\}/g, (_, name) => String(params[name] ?? ""));
}

/** A console text by its key (without "console."). */
export function t(key, params = {}) {
  const id = PAGE + key;
  const text = TEXTS[current]?.[id] ?? TEXTS.ru?.[id] ?? key;
  return fill(text, params);
}

/** A module refusal in the page's language; its "error" when the id is unknown. */
export function errorText(body) {
  const ref = body?.[MESSAGE];
  const text = ref && (TEXTS[current]?.[ref.id] ?? TEXTS.ru?.[ref.id]);
  if (typeof text === "string") return fill(text, ref.params || {});
  return String(body?.error || body?.errcode || "?");
}

/** Fill every element with data-i18n (text), data-i18n-label (aria-label) or
 * data-i18n-placeholder. */
export function translate(root) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-label]")) {
    el.setAttribute("aria-label", t(el.dataset.i18nLabel));
  }
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) {
    el.setAttribute("placeholder", t(el.dataset.i18nPlaceholder));
  }
}

const ROLES = ["administrator", "teacher", "student", "parent", "coordinator"];

export function roleName(role) {
  return ROLES.includes(role) ? t(`role.${role}`) : role;
}

export function dateTime(ms) {
  if (!ms) return "—";
  return new Date(ms).toLocaleString(current === "en" ? "en-GB" : "ru-RU", {
    dateStyle: "short",
    timeStyle: "short",
  });
}
