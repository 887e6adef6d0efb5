"""Drive a real nheko (Debian's package) under Xvfb, as a person would, for tests.

Everything nheko needs runs inside one process group per instance: a private D-Bus
session, a gnome-keyring unlocked with a throwaway password (nheko keeps its pickle
secret there; without a keyring it stops on an error dialog) and nheko itself with
``--debug`` so its log says what it did. Each instance has its own HOME, so nothing
touches the machine's own settings. Input goes through xdotool (the login form, Ctrl+K
to open a room, the composer); screenshots through ImageMagick's ``import``.

Xvfb picks a free display itself (``-displayfd``), so helpers running tests side by
side never collide.
"""

import contextlib
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs

TOOLS = (
    "nheko",
    "Xvfb",
    "xdotool",
    "xclip",
    "import",
    "dbus-run-session",
    "gnome-keyring-daemon",
)
WIDTH, HEIGHT = 1280, 800
# Where nheko 0.11.3 draws its controls in a 1280×800 window (the layout is fixed:
# the welcome page's LOGIN button, the login form's first field, the Cancel button of
# the encryption set-up dialog shown to every new device).
WELCOME_LOGIN = (721, 532)
MATRIX_ID_FIELD = (640, 372)
ENCRYPTION_CANCEL = (1213, 761)
LINK = (0, 119, 181)

LAUNCH = """
echo -n parta-test | gnome-keyring-daemon --unlock --components=secrets >/dev/null
exec nheko --debug
"""


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def wait_for(check: Callable[[], object], what: str, deadline: float = 60.0) -> object:
    """Poll ``check`` until it returns something truthy; fail naming ``what``."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


@contextlib.contextmanager
def xvfb() -> Iterator[str]:
    """A fresh X display (``":N"``) on a number Xvfb chose as free."""
    read, write = os.pipe()
    proc = subprocess.Popen(
        [
            "Xvfb",
            "-displayfd",
            str(write),
            "-screen",
            "0",
            f"{WIDTH}x{HEIGHT}x24",
            "-nolisten",
            "tcp",
        ],
        pass_fds=(write,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write)
    try:
        with os.fdopen(read) as f:
            number = f.readline().strip()
        if not number:
            raise RuntimeError("Xvfb did not start")
        yield f":{number}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@attrs.define
class Nheko:
    """One nheko instance with its own HOME on ``display``; screenshots go to ``shots``."""

    display: str
    home: Path
    shots: Path
    proc: subprocess.Popen[bytes] | None = None
    taken: list[Path] = attrs.Factory(list)

    @property
    def log_path(self) -> Path:
        return self.home / "nheko.log"

    @property
    def env(self) -> dict[str, str]:
        runtime = self.home / "run"
        return {
            **os.environ,
            "HOME": str(self.home),
            "DISPLAY": self.display,
            "XDG_RUNTIME_DIR": str(runtime),
            "XDG_CONFIG_HOME": str(self.home / ".config"),
            "XDG_CACHE_HOME": str(self.home / ".cache"),
            "XDG_DATA_HOME": str(self.home / ".local" / "share"),
            "LANG": "C.UTF-8",
            "QT_QPA_PLATFORM": "xcb",
            # No browser here: Qt opens links with xdg-open, which records the URL.
            "PATH": f"{self.home / 'bin'}:{os.environ.get('PATH', '')}",
            "BROWSER": str(self.home / "bin" / "xdg-open"),
        }

    @property
    def opened_urls(self) -> list[str]:
        """The URLs nheko asked the desktop to open (a clicked link), in order."""
        path = self.home / "opened-urls.txt"
        return path.read_text().splitlines() if path.exists() else []

    def start(self) -> None:
        (self.home / "run").mkdir(parents=True, exist_ok=True, mode=0o700)
        conf = self.home / ".config" / "nheko" / "nheko.conf"
        if not conf.exists():
            # A wider room list, so room names read whole in the screenshots.
            conf.parent.mkdir(parents=True, exist_ok=True)
            conf.write_text("[user]\nsidebar\\room_list_width=330\n")
        self.shots.mkdir(parents=True, exist_ok=True)
        opener = self.home / "bin" / "xdg-open"
        opener.parent.mkdir(parents=True, exist_ok=True)
        opener.write_text(f'#!/bin/sh\nprintf "%s\\n" "$1" >> "{self.home}/opened-urls.txt"\n')
        opener.chmod(0o755)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            ["dbus-run-session", "--", "sh", "-c", LAUNCH],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        window = wait_for(self._window, "nheko's window")
        wait_for(lambda: "starting nheko" in self.log(), "nheko to start")
        self.xdo("windowsize", str(window), str(WIDTH), str(HEIGHT))
        wait_for(self._drawn, "nheko to draw its window", deadline=90)
        time.sleep(1.0)  # let the resized page lay itself out before clicking on it

    def _drawn(self) -> bool:
        """Whether the screen shows more than one colour (nheko has painted)."""
        spread = subprocess.run(
            "import -window root png:- | convert - -format '%[fx:standard_deviation]' info:",
            shell=True,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        try:
            return float(spread) > 0.05
        except ValueError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            # Our own process group: D-Bus, the keyring and nheko started for this test.
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None

    def _window(self) -> int | None:
        out = subprocess.run(
            ["xdotool", "search", "--name", "^nheko$"],
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.split()
        return int(out[0]) if out else None

    def xdo(self, *args: str) -> str:
        return subprocess.run(
            ["xdotool", *args], env=self.env, capture_output=True, text=True, check=True
        ).stdout

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def click(self, at: tuple[int, int]) -> None:
        self.xdo("mousemove", str(at[0]), str(at[1]), "click", "1")
        time.sleep(0.5)

    def key(self, *keys: str) -> None:
        self.xdo("key", "--delay", "80", *keys)
        time.sleep(0.3)

    def type(self, text: str) -> None:
        """Latin text is typed key by key; anything else is pasted, as xdotool cannot
        type Cyrillic into Qt under Xvfb (its keymap has no Russian layout)."""
        if text.isascii():
            self.xdo("type", "--delay", "25", text)
        else:
            self.paste(text)
        time.sleep(0.3)

    def paste(self, text: str) -> None:
        owner = subprocess.Popen(
            ["xclip", "-quiet", "-selection", "clipboard"],
            env=self.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        assert owner.stdin is not None
        owner.stdin.write(text.encode())
        owner.stdin.close()
        time.sleep(0.3)
        try:
            self.key("ctrl+v")
            time.sleep(0.5)
        finally:
            owner.terminate()
            owner.wait(timeout=10)

    def find_link(self, top: int = 100) -> tuple[int, int] | None:
        """The middle of the topmost line of link-coloured text in the timeline.

        nheko draws links in its theme's link colour (light theme: #0077b5); the room
        list, the header's topic links (above ``top``) and the composer are left out.
        """
        shot = self.screenshot("find-link", settle=0.5)
        from PIL import Image

        with Image.open(shot) as image:
            rgb = image.convert("RGB")
            for y in range(top, HEIGHT - 50):
                xs = [x for x in range(380, WIDTH - 70) if rgb.getpixel((x, y)) == LINK]
                if len(xs) >= 20:
                    return (xs[0] + xs[-1]) // 2, y
        return None

    def reply_to_newest(self, text: str) -> None:
        """Alt+Up (nheko's shortcut: reply to the newest message), then send ``text``."""
        self.key("alt+Up")
        time.sleep(0.5)
        self.send(text)

    def window_title(self) -> str:
        window = self._window()
        return self.xdo("getwindowname", str(window)).strip() if window else ""

    def screenshot(self, name: str, settle: float = 1.5) -> Path:
        """The whole screen as ``shots/NN-name.png`` (after ``settle`` seconds of drawing)."""
        time.sleep(settle)
        path = self.shots / f"{len(self.taken) + 1:02d}-{name}.png"
        subprocess.run(
            ["import", "-window", "root", str(path)], env=self.env, check=True, timeout=30
        )
        self.taken.append(path)
        return path

    def setting(self, key: str) -> str | None:
        """A value from nheko's own settings file (``auth/access_token`` and the like)."""
        conf = self.home / ".config" / "nheko" / "nheko.conf"
        if not conf.exists():
            return None
        section, name = key.split("/", 1)
        current = ""
        for line in conf.read_text(errors="replace").splitlines():
            if line.startswith("["):
                current = line.strip("[]")
            elif current == section and line.startswith(f"{name}="):
                return line.split("=", 1)[1]
        return None

    def log_in(self, user_id: str, password: str, homeserver: str) -> str:
        """Fill nheko's login form as a person does; returns the access token nheko got.

        nheko first looks up ``https://<server>/.well-known``; on a test server that
        fails and nheko shows its «Homeserver address» field, where the address goes.
        """
        self.click(WELCOME_LOGIN)
        time.sleep(1.5)  # the page slides in
        # Keys typed while the page is still settling can be lost: retype until nheko
        # starts its server lookup for the Matrix ID.
        for _ in range(3):
            self.click(MATRIX_ID_FIELD)
            self.key("ctrl+a")
            self.type(user_id)
            self.key("Tab")
            with contextlib.suppress(AssertionError):
                wait_for(lambda: "[debug] hostname:" in self.log(), "server lookup", 10)
                break
        else:
            self.screenshot("login-stuck", settle=0)
            raise AssertionError("nheko never looked up the server of the Matrix ID")
        wait_for(lambda: "Autodiscovery failed" in self.log(), "the server lookup to fail")
        time.sleep(0.5)
        self.type(password)
        self.key("Tab")
        self.type("nheko")
        self.key("Tab", "ctrl+a")
        self.type(homeserver)
        self.screenshot("login-form", settle=0.5)

        def token() -> str | None:
            return self.setting("auth/access_token")

        # The first Return after typing sometimes only closes the field's tooltip.
        for _ in range(3):
            self.key("Return")
            with contextlib.suppress(AssertionError):
                return str(wait_for(token, "nheko to sign in", deadline=10))
        raise AssertionError(f"nheko did not sign in:\n{self.log()[-3000:]}")

    def skip_encryption_setup(self) -> None:
        """Every new device gets «Setup Encryption»; a pupil would press Cancel."""
        wait_for(lambda: "SelfVerificationCheck" in self.log(), "the encryption set-up dialog")
        time.sleep(1.0)
        self.click(ENCRYPTION_CANCEL)

    def open_room(self, name: str) -> None:
        """Ctrl+K, the room's name, Return: nheko's own quick switcher."""
        self.key("ctrl+k")
        time.sleep(0.5)
        self.type(name)
        time.sleep(0.7)
        self.key("Return")
        time.sleep(1.0)

    def send(self, text: str) -> None:
        """Type into the open room's composer and press Return."""
        self.type(text)
        self.key("Return")

    def rooms_in_log(self) -> set[str]:
        return set(re.findall(r"![A-Za-z0-9_\-]+", self.log()))
