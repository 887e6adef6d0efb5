// Lessons and attendance of a class: the lessons of its class chat, a lesson's
// attendance (present with minutes, absent), and its CSV — the lessons' own routes.

import * as api from "./api.js";
import { clear, field, h, select } from "./dom.js";
import { dateTime, language, t } from "./i18n.js";

const enc = encodeURIComponent;

// -- lessons and attendance --------------------------------------------------------------------

export async function lessonsView({ school, section, heading, act }) {
  const classes = await api.classesOf(school);
  const cls = select("class_id", [["", "—"], ...classes.map((c) => [c.class_id, c.title])]);
  cls.id = "lessons-class";
  const list = h("div", { id: "lessons-list" });
  const report = h("div", { id: "attendance" });
  const showAttendance = async (room, lesson) => {
    const path = `/rooms/${enc(room)}/lessons/${enc(lesson.lesson_id)}/attendance`;
    const data = await act(() => api.call("GET", path));
    if (!data) return;
    const csv = h(
      "button",
      {
        type: "button",
        id: "b-attendance-csv",
        onclick: () =>
          act(() =>
            api.download(
              `${path}?format=csv&lang=${language()}&delimiter=semicolon`,
              `attendance-${lesson.lesson_id}.csv`,
            ),
          ),
      },
      t("lessons.csv"),
    );
    clear(report).append(
      h("h2", { tabindex: "-1" }, t("lessons.attendance", { title: lesson.title })),
      csv,
      h(
        "div",
        { class: "scroll" },
        h(
          "table",
          {},
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              ["name", "state", "minutes", "first_join"].map((k) =>
                h("th", { scope: "col" }, t(`lessons.col_${k}`)),
              ),
            ),
          ),
          h(
            "tbody",
            {},
            data.present.map((p) =>
              h(
                "tr",
                {},
                h("th", { scope: "row" }, p.display_name),
                h("td", {}, t("lessons.present")),
                h("td", {}, String(p.minutes)),
                h("td", {}, dateTime(p.first_join)),
              ),
            ),
            data.absent.map((p) =>
              h(
                "tr",
                { class: "absent" },
                h("th", { scope: "row" }, p.display_name),
                h("td", {}, t("lessons.absent")),
                h("td", {}, "0"),
                h("td", {}, "—"),
              ),
            ),
          ),
        ),
      ),
    );
    report.querySelector("h2").focus();
  };
  cls.addEventListener("change", async () => {
    clear(list);
    clear(report);
    const c = classes.find((x) => x.class_id === cls.value);
    const room = c?.rooms?.class_chat;
    if (!room) return;
    const data = await act(() => api.call("GET", `/rooms/${enc(room)}/lessons`));
    if (!data) return;
    if (!data.lessons.length) {
      list.append(h("p", {}, t("lessons.none")));
      return;
    }
    list.append(
      h(
        "ul",
        { class: "lessons" },
        data.lessons.map((lesson) =>
          h(
            "li",
            {},
            h(
              "button",
              { type: "button", class: "link", onclick: () => showAttendance(room, lesson) },
              `${lesson.title} — ${dateTime(lesson.started_at || lesson.start)} (${t(`lessons.status_${lesson.status}`)})`,
            ),
          ),
        ),
      ),
    );
  });
  section.append(
    heading(t("lessons.title")),
    field(t("lessons.class"), cls),
    list,
    report,
  );
}
