// Russian by default; English with ?lang=en or when the browser prefers English.

import { TEXTS } from "./texts.js";

// The lesson page's texts and the SFU's refusals, from the one catalogue
// (parta_common/locale/*.po, exported by `python -m devtools.catalogue`).
const PAGE = "lesson_page.";
// Where an error carries its catalogue id and parameters (parta_common/catalogue.py FIELD).
export const MESSAGE = "org.parta.message";
const STRINGS = Object.fromEntries(
  Object.entries(TEXTS).map(([lang, texts]) => [
    lang,
    Object.fromEntries(
      Object.entries(texts)
        .filter(([id]) => id.startsWith(PAGE))
        .map(([id, text]) => [id.slice(PAGE.length), text]),
    ),
  ]),
);

let current = "ru";

/** The page's language: ?lang= first, then the browser's preference, else Russian. */
export function pickLanguage(params, browserLanguages) {
  const wanted = [params.get("lang") || "", ...(browserLanguages || [])];
  for (const tag of wanted) {
    const base = String(tag).toLowerCase().split(/[-_]/)[0];
    if (base in STRINGS) return base;
  }
  return "ru";
}

export function setLanguage(lang) {
  current = lang in STRINGS ? lang : "ru";
  document.documentElement.lang = current;
}

export function language() {
  return current;
}

export function t(key, vars = {}) {
  const text = STRINGS[current][key] ?? STRINGS.ru[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(vars[name] ?? ""));
}

/** A catalogue message ({id, params}, as the SFU and the module send it) in the page's
 * language; null when the page does not know the id. */
export function messageText(reference) {
  const id = reference?.id;
  const text = TEXTS[current]?.[id] ?? TEXTS.ru?.[id];
  if (typeof text !== "string") return null;
  const params = reference.params || {};
  return text.replace(/\{(\w+)\}/g, (_, name) => String(params[name] ?? ""));
}

/** Fill every element with data-i18n (text) or data-i18n-title / -placeholder. */
export function translate(root) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-title]")) {
    el.title = t(el.dataset.i18nTitle);
    el.setAttribute("aria-label", el.title);
  }
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) {
    el.placeholder = t(el.dataset.i18nPlaceholder);
  }
}
