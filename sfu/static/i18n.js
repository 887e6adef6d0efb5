// Russian by default; English with ?lang=en or when the browser prefers English.

const STRINGS = {
  ru: {
    title: "Урок",
    loading: "Загрузка…",
    signin_heading: "Вход на урок",
    signin_hint: "Войдите с учётной записью Matrix вашей школы.",
    homeserver: "Адрес сервера",
    username: "Имя пользователя",
    password: "Пароль",
    signin: "Войти",
    signing_in: "Входим…",
    signout: "Выйти",
    getting_token: "Получаем доступ к уроку…",
    asking_element: "Спрашиваем Element, кто вы…",
    connecting: "Подключаемся к уроку…",
    waiting_room: "Вы в зале ожидания. Учитель скоро впустит вас.",
    waiting_heading: "Зал ожидания",
    waiting_leave: "Не ждать",
    refused_lesson_locked: "Учитель закрыл вход в урок. Попросите учителя открыть его и попробуйте снова.",
    refused_denied: "Учитель не впустил вас в урок.",
    refused_removed: "Учитель удалил вас из урока.",
    refused_banned: "Учитель удалил вас из этого урока, вернуться нельзя.",
    connected: "На уроке",
    disconnected: "Соединение потеряно",
    rejoin: "Вернуться на урок",
    left: "Вы вышли из урока.",
    mic_on: "Микрофон включён",
    mic_off: "Микрофон выключен",
    mic_blocked: "Учитель выключил ваш микрофон",
    cam_on: "Камера включена",
    cam_off: "Камера выключена",
    screen_start: "Показать экран",
    screen_stop: "Остановить показ",
    screen_not_allowed: "Показ экрана разрешает учитель",
    hand_raise: "Поднять руку",
    hand_lower: "Опустить руку",
    view_grid: "Сетка",
    view_speaker: "Докладчик",
    leave: "Выйти из урока",
    participants: "Участники",
    hands: "Поднятые руки",
    no_hands: "Рук нет",
    teacher_panel: "Панель учителя",
    lower_all: "Опустить все руки",
    mute_all: "Выключить всем микрофоны",
    lock: "Закрыть урок для новых участников",
    waiting: "Зал ожидания",
    students_screen: "Ученики могут показывать экран",
    waiting_queue: "Ждут входа",
    removed_list: "Удалены с урока",
    readmit: "Вернуть",
    admit: "Впустить",
    deny: "Отказать",
    mute: "Выключить микрофон",
    unmute: "Разрешить микрофон",
    remove: "Удалить из урока",
    allow_screen: "Разрешить экран",
    forbid_screen: "Запретить экран",
    lower: "Опустить руку",
    you: "вы",
    teacher: "учитель",
    administrator: "администратор",
    student: "ученик",
    camera: "камера",
    screen: "экран",
    attendance_csv: "Посещаемость (CSV)",
    end_lesson: "Завершить урок",
    start_lesson: "Начать урок",
    lesson_title_placeholder: "Тема урока",
    lesson_started: "Урок «{title}» начался: в комнате появилась ссылка.",
    lesson_ended: "Урок завершён.",
    confirm_remove: "Удалить {name} из урока?",
    no_media: "Камера и микрофон недоступны — вы можете смотреть и слушать.",
    error: "Ошибка",
    not_a_room: "В адресе нет комнаты Matrix.",
    widget_denied: "Element не дал доступ к учётной записи (OpenID). Разрешите его и откройте урок снова.",
    lesson_locked_hint: "Урок закрыт",
    count: "{count} из {limit}",
    badge_hand: "рука поднята",
    badge_muted: "без звука",
  },
  en: {
    title: "Lesson",
    loading: "Loading…",
    signin_heading: "Join the lesson",
    signin_hint: "Sign in with your school's Matrix account.",
    homeserver: "Server address",
    username: "User name",
    password: "Password",
    signin: "Sign in",
    signing_in: "Signing in…",
    signout: "Sign out",
    getting_token: "Getting access to the lesson…",
    asking_element: "Asking Element who you are…",
    connecting: "Connecting to the lesson…",
    waiting_room: "You are in the waiting room. The teacher will let you in soon.",
    waiting_heading: "Waiting room",
    waiting_leave: "Stop waiting",
    refused_lesson_locked: "The teacher has locked the lesson. Ask the teacher to open it and try again.",
    refused_denied: "The teacher did not let you in.",
    refused_removed: "The teacher removed you from the lesson.",
    refused_banned: "The teacher removed you from this lesson; you cannot come back.",
    connected: "In the lesson",
    disconnected: "Connection lost",
    rejoin: "Rejoin the lesson",
    left: "You left the lesson.",
    mic_on: "Microphone on",
    mic_off: "Microphone off",
    mic_blocked: "The teacher turned your microphone off",
    cam_on: "Camera on",
    cam_off: "Camera off",
    screen_start: "Share screen",
    screen_stop: "Stop sharing",
    screen_not_allowed: "The teacher allows screen sharing",
    hand_raise: "Raise hand",
    hand_lower: "Lower hand",
    view_grid: "Grid",
    view_speaker: "Speaker",
    leave: "Leave the lesson",
    participants: "Participants",
    hands: "Raised hands",
    no_hands: "No hands",
    teacher_panel: "Teacher's panel",
    lower_all: "Lower all hands",
    mute_all: "Mute everyone",
    lock: "Lock the lesson for newcomers",
    waiting: "Waiting room",
    students_screen: "Students may share their screen",
    waiting_queue: "Waiting to join",
    removed_list: "Removed from the lesson",
    readmit: "Let back in",
    admit: "Admit",
    deny: "Deny",
    mute: "Mute",
    unmute: "Allow microphone",
    remove: "Remove from the lesson",
    allow_screen: "Allow screen",
    forbid_screen: "Forbid screen",
    lower: "Lower hand",
    you: "you",
    teacher: "teacher",
    administrator: "administrator",
    student: "student",
    camera: "camera",
    screen: "screen",
    attendance_csv: "Attendance (CSV)",
    end_lesson: "End the lesson",
    start_lesson: "Start the lesson",
    lesson_title_placeholder: "Lesson topic",
    lesson_started: "Lesson «{title}» has started: the room has the link.",
    lesson_ended: "The lesson has ended.",
    confirm_remove: "Remove {name} from the lesson?",
    no_media: "Camera and microphone are unavailable — you can watch and listen.",
    error: "Error",
    not_a_room: "The address names no Matrix room.",
    widget_denied: "Element did not share your account (OpenID). Allow it and open the lesson again.",
    lesson_locked_hint: "Lesson locked",
    count: "{count} of {limit}",
    badge_hand: "hand raised",
    badge_muted: "muted",
  },
};

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
