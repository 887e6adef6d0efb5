// The coordinators' pages: a unit (region, municipality), its coordinators, the
// municipalities and schools below it, and its statistics — figures from the module's
// JSON drawn here as SVG charts, and the XLSX the module writes. Every action is the
// module's API (/units, /schools, /units/{id}/statistics); its refusals are shown.

import * as api from "./api.js";
import { clear, field, h } from "./dom.js";
import { roleName, t } from "./i18n.js";
import { newPersonCard, personFrom } from "./roster_import.js";

const enc = encodeURIComponent;
const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children.flat()) if (c) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

export async function unitsOf() {
  return (await api.call("GET", "/units")).units;
}

/** The units section of the home page (coordinators and the operator). */
export function unitsList(units) {
  return h(
    "ul",
    { class: "schools", id: "units" },
    units.map((u) =>
      h("li", {}, h("a", { href: `#/u/${enc(u.unit_id)}/people` }, `${u.name} (${t(`unit.kind_${u.kind}`)})`)),
    ),
  );
}

// -- coordinators, municipalities, schools -----------------------------------------------

// A person just made by name: their card, shown once on the unit's page after it reloads.
let madeCard = null;

async function peopleView({ unit, units, section, heading, act, say, refresh }) {
  const coordinator = h("input", {
    id: "coordinator",
    placeholder: t("unit.coordinator_placeholder"),
    required: true,
    maxlength: 255,
  });
  const appoint = h(
    "form",
    { id: "coordinator-form", class: "inline" },
    field(t("unit.coordinator"), coordinator, t("unit.coordinator_hint")),
    h("button", { type: "submit", class: "primary" }, t("unit.appoint")),
  );
  appoint.addEventListener("submit", async (event) => {
    event.preventDefault();
    const person = personFrom(coordinator.value);
    if (person.user_id) {
      const who = person.user_id;
      const done = await act(
        () => api.call("PUT", `/units/${enc(unit.unit_id)}/coordinators/${enc(who)}`, {}),
        t("unit.appointed", { user: who }),
      );
      if (done) refresh();
      return;
    }
    // Making the account and joining the unit's rooms takes seconds: held meanwhile.
    const made = await act(
      () => api.call("POST", `/units/${enc(unit.unit_id)}/coordinators`, person),
      t("unit.appointed", { user: coordinator.value.trim() }),
    );
    if (!made) return;
    madeCard = {
      unit_id: unit.unit_id,
      said: t("unit.appointed_new", { name: made.display_name }),
      card: {
        place: unit.name,
        name: made.display_name,
        line: t(`unit.coordinator_of_${unit.kind}`),
        user_id: made.user_id,
        code: made.code,
      },
    };
    refresh();
  });
  const coordinators = h(
    "ul",
    { id: "coordinators" },
    unit.coordinators.map((c) =>
      h(
        "li",
        {},
        c,
        " ",
        h(
          "button",
          {
            type: "button",
            class: "danger",
            "aria-label": t("unit.dismiss_named", { user: c }),
            onclick: async () => {
              const done = await act(
                () => api.call("DELETE", `/units/${enc(unit.unit_id)}/coordinators/${enc(c)}`),
                t("unit.dismissed", { user: c }),
              );
              if (done) refresh();
            },
          },
          t("unit.dismiss"),
        ),
        " ",
        // A coordinator appointed by name who lost their code: a new one, on a card
        // (the module refuses, and says why, for someone with a password of their own).
        h(
          "button",
          {
            type: "button",
            class: "new-code",
            "aria-label": t("unit.new_code_named", { user: c }),
            onclick: async () => {
              const made = await act(() =>
                api.call("POST", `/units/${enc(unit.unit_id)}/coordinators/${enc(c)}/sign_in_code`, {}),
              );
              if (!made) return;
              madeCard = {
                unit_id: unit.unit_id,
                said: t("unit.new_code_made", { user: c }),
                card: {
                  place: unit.name,
                  name: c,
                  line: t(`unit.coordinator_of_${unit.kind}`),
                  user_id: made.user_id,
                  code: made.code,
                },
              };
              refresh();
            },
          },
          t("unit.new_code"),
        ),
      ),
    ),
  );
  section.append(heading(`${unit.name} (${t(`unit.kind_${unit.kind}`)})`), h("h2", {}, t("unit.coordinators")));
  section.append(unit.coordinators.length ? coordinators : h("p", {}, t("unit.no_coordinators")), appoint);
  // The card shows beside the form that made the person (a school's administrator: the
  // schools' form below).
  const card = madeCard && madeCard.unit_id === unit.unit_id ? madeCard : null;
  madeCard = null;
  if (card && !card.school) {
    section.append(newPersonCard(card.card));
    say(card.said, "ok");
  }

  if (unit.kind === "region") {
    const below = units.filter((u) => u.parent_id === unit.unit_id);
    const name = h("input", { id: "municipality-name", required: true, maxlength: 200 });
    const form = h(
      "form",
      { id: "municipality-form", class: "inline" },
      field(t("unit.municipality_name"), name),
      h("button", { type: "submit", class: "primary" }, t("unit.create_municipality")),
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const made = await act(
        () =>
          api.call("POST", "/units", {
            kind: "municipality",
            name: name.value.trim(),
            parent_id: unit.unit_id,
          }),
        t("unit.municipality_created"),
      );
      if (made) refresh();
    });
    section.append(
      h("h2", {}, t("unit.municipalities")),
      below.length
        ? h("ul", { id: "municipalities" }, below.map((u) => h("li", {}, h("a", { href: `#/u/${enc(u.unit_id)}/people` }, u.name))))
        : h("p", {}, t("unit.no_municipalities")),
      form,
    );
  }

  const schoolName = h("input", { id: "school-name", required: true, maxlength: 200 });
  const admin = h("input", { id: "school-admin", placeholder: t("unit.coordinator_placeholder"), maxlength: 255 });
  const schoolForm = h(
    "form",
    { id: "school-form", class: "inline" },
    field(t("unit.school_name"), schoolName),
    field(t("unit.school_admin"), admin, t("unit.school_admin_hint")),
    h("button", { type: "submit", class: "primary" }, t("unit.create_school")),
  );
  schoolForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { name: schoolName.value.trim(), unit_id: unit.unit_id };
    const person = admin.value.trim() ? personFrom(admin.value) : null;
    if (person && !person.user_id && !(person.family_name && person.given_name)) {
      say(t("unit.school_admin_name_needed"), "error");
      return;
    }
    if (person?.user_id) body.administrators = [person.user_id];
    const made = await act(() => api.call("POST", "/schools", body), t("unit.school_created"));
    if (!made) return;
    if (person && !person.user_id) {
      // By name: the school first, then its administrator's account, made as a school's
      // members by name are (POST /schools/{id}/members); the code is on a card, once.
      const added = await act(
        () =>
          api.call("POST", `/schools/${enc(made.school_id)}/members`, {
            ...person,
            roles: ["administrator"],
          }),
        t("unit.school_admin_made", { name: admin.value.trim() }),
      );
      if (added) {
        madeCard = {
          unit_id: unit.unit_id,
          school: true,
          said: t("unit.school_admin_made", { name: added.display_name }),
          card: {
            place: made.name,
            name: added.display_name,
            line: roleName("administrator"),
            user_id: added.user_id,
            code: added.code,
          },
        };
      }
    }
    refresh();
  });
  section.append(
    h("h2", {}, t("unit.schools")),
    unit.schools.length
      ? h(
          "ul",
          { id: "unit-schools" },
          unit.schools.map((s) => h("li", {}, h("a", { href: `#/s/${enc(s.school_id)}/card` }, s.name))),
        )
      : h("p", {}, t("unit.no_schools")),
    schoolForm,
  );
  if (card && card.school) {
    section.append(newPersonCard(card.card));
    say(card.said, "ok");
  }
}

// -- statistics -----------------------------------------------------------------------------

// The API's shares are percents already (rules.share: 15.0 is 15 %).
const percent = (x) => `${Math.round(x || 0)} %`;

/** A line chart of the day-by-day track (one line per series), drawn as SVG. */
function lineChart(track, series, title) {
  const width = 640;
  const height = 220;
  const pad = { left: 44, right: 12, top: 16, bottom: 28 };
  const max = Math.max(1, ...track.flatMap((d) => series.map(([key]) => d[key] || 0)));
  const x = (i) => pad.left + (track.length > 1 ? (i * (width - pad.left - pad.right)) / (track.length - 1) : 0);
  const y = (v) => height - pad.bottom - (v * (height - pad.top - pad.bottom)) / max;
  const colours = ["#1f5fbf", "#c2561a", "#1e7b34"];
  const chart = svg(
    "svg",
    { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": title, class: "chart" },
    svg("title", {}, title),
    svg("line", { x1: pad.left, y1: y(0), x2: width - pad.right, y2: y(0), stroke: "#8a93a3" }),
    svg("text", { x: pad.left - 6, y: y(max) + 4, "text-anchor": "end", "font-size": 11 }, String(max)),
    svg("text", { x: pad.left - 6, y: y(0) + 4, "text-anchor": "end", "font-size": 11 }, "0"),
  );
  if (track.length) chart.append(svg("text", { x: x(0), y: height - 8, "font-size": 11 }, track[0].day));
  if (track.length > 1) {
    const last = track[track.length - 1].day;
    chart.append(svg("text", { x: x(track.length - 1), y: height - 8, "font-size": 11, "text-anchor": "end" }, last));
  }
  series.forEach(([key], n) => {
    const points = track.map((d, i) => `${x(i)},${y(d[key] || 0)}`).join(" ");
    chart.append(svg("polyline", { points, fill: "none", stroke: colours[n % 3], "stroke-width": 2.5 }));
    track.forEach((d, i) => chart.append(svg("circle", { cx: x(i), cy: y(d[key] || 0), r: 3, fill: colours[n % 3] })));
  });
  const legend = h(
    "ul",
    { class: "legend" },
    series.map(([, label], n) => {
      // The page's CSP allows no inline style attribute; the CSSOM property is fine.
      const swatch = h("span", { class: "swatch" });
      swatch.style.background = colours[n % 3];
      return h("li", {}, swatch, label);
    }),
  );
  return h("figure", { class: "chart-box" }, chart, legend, h("figcaption", {}, title));
}

/** Horizontal bars: one per school, a share from 0 to 100 %. */
function barChart(schools, key, title) {
  const rowH = 26;
  const width = 640;
  const label = 220;
  const height = rowH * schools.length + 8;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": title, class: "chart" }, svg("title", {}, title));
  schools.forEach((s, i) => {
    const share = Math.max(0, Math.min(100, s[key] || 0)) / 100;
    const y0 = i * rowH + 4;
    chart.append(
      svg("text", { x: label - 8, y: y0 + 16, "text-anchor": "end", "font-size": 12 }, s.name.length > 32 ? `${s.name.slice(0, 31)}…` : s.name),
      svg("rect", { x: label, y: y0, width: width - label - 60, height: rowH - 8, fill: "#eef1f6" }),
      svg("rect", { x: label, y: y0, width: (width - label - 60) * share, height: rowH - 8, fill: "#1f5fbf" }),
      svg("text", { x: width - 52, y: y0 + 16, "font-size": 12 }, percent(share * 100)),
    );
  });
  return h("figure", { class: "chart-box" }, chart, h("figcaption", {}, title));
}

async function statisticsView({ unit, section, heading, act }) {
  const today = new Date();
  const monthAgo = new Date(today.getTime() - 29 * 86400000);
  const iso = (d) => d.toISOString().slice(0, 10);
  const from = h("input", { type: "date", id: "stats-from", value: iso(monthAgo) });
  const to = h("input", { type: "date", id: "stats-to", value: iso(today) });
  const box = h("div", { id: "stats" });
  const query = () => `?from=${enc(from.value)}&to=${enc(to.value)}`;
  const path = `/units/${enc(unit.unit_id)}/statistics`;
  const load = async () => {
    const report = await act(() => api.call("GET", path + query()));
    if (!report) return;
    const tt = report.totals;
    const figures = [
      ["schools", tt.schools],
      ["students", `${tt.students_signed_in} / ${tt.students} (${percent(tt.students_signed_in_share)})`],
      ["teachers", `${tt.teachers_signed_in} / ${tt.teachers} (${percent(tt.teachers_signed_in_share)})`],
      ["parents", `${tt.parents_signed_in} / ${tt.parents} (${percent(tt.parents_signed_in_share)})`],
      ["active_classes", `${tt.active_classes} / ${tt.classes}`],
      ["messages_per_week", tt.messages_per_week],
      ["lessons", `${tt.lessons} (${tt.lesson_minutes} ${t("stats.minutes")})`],
      ["average_attendance", tt.average_attendance],
      ["broadcasts", `${tt.broadcasts} (${tt.viewers} ${t("stats.viewers")})`],
    ];
    clear(box).append(
      h("dl", { class: "totals", id: "stats-totals" }, figures.map(([k, v]) => [h("dt", {}, t(`stats.${k}`)), h("dd", { "data-figure": k }, String(v))])),
      lineChart(report.track, [["messages", t("stats.messages")], ["students_signed_in", t("stats.students_signed_in")]], t("stats.track_title")),
      report.schools.length ? barChart(report.schools, "students_signed_in_share", t("stats.share_title")) : null,
      h(
        "div",
        { class: "scroll" },
        h(
          "table",
          { id: "stats-schools" },
          h("thead", {}, h("tr", {}, ["school", "students", "signed_in", "messages_per_week", "lessons"].map((k) => h("th", { scope: "col" }, t(`stats.col_${k}`))))),
          h(
            "tbody",
            {},
            report.schools.map((s) =>
              h(
                "tr",
                {},
                h("th", { scope: "row" }, s.name),
                h("td", {}, String(s.students)),
                h("td", {}, percent(s.students_signed_in_share)),
                h("td", {}, String(s.messages_per_week)),
                h("td", {}, String(s.lessons)),
              ),
            ),
          ),
        ),
      ),
    );
  };
  const form = h(
    "form",
    { id: "stats-form", class: "inline" },
    field(t("stats.from"), from),
    field(t("stats.to"), to),
    h("button", { type: "submit", class: "primary" }, t("stats.show")),
    h(
      "button",
      {
        type: "button",
        id: "b-xlsx",
        onclick: () => act(() => api.download(`${path}.xlsx${query()}`, `statistics-${unit.unit_id}.xlsx`), t("stats.downloaded")),
      },
      t("stats.xlsx"),
    ),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    load();
  });
  section.append(heading(t("stats.title", { name: unit.name })), form, box);
  await load();
}

export const UNIT_VIEWS = { people: peopleView, statistics: statisticsView };
export const UNIT_TABS = ["people", "statistics"];

export async function unitView(ctx, unitId, tab) {
  const units = await unitsOf();
  const unit = (await api.call("GET", `/units/${enc(unitId)}`)) || units.find((u) => u.unit_id === unitId);
  const view = UNIT_VIEWS[tab] || peopleView;
  await view({ ...ctx, unit, units });
}
