"""``python -m devtools.walkthrough`` tells a newcomer what is missing, never a traceback.

It needs a running ``make run``, the sample school's codes and Chromium (which only
``make test`` installs); for each one missing it prints ✗ and says what to do.
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from devtools.homeserver import REPO_ROOT
from devtools.walkthrough import Walk, browser_lesson
from tests.harness import free_port


def walkthrough(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devtools.walkthrough", *args],
        cwd=REPO_ROOT,
        env={
            **os.environ,
            "PYTHONPATH": str(REPO_ROOT),
            "PARTA_VAR": str(tmp_path / "var"),
            # Nothing listens here: the platform is not running.
            "PARTA_PORT": str(free_port()),
            "PARTA_CHROMIUM": str(tmp_path / "no-chromium"),
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_without_codes_platform_or_chromium_it_says_so(tmp_path: Path) -> None:
    out = walkthrough(tmp_path)
    assert out.returncode == 1
    assert "Traceback" not in out.stdout + out.stderr, out.stdout + out.stderr
    assert "`make test` installs" in out.stdout
    assert "✗ the sample school's sign-in codes" in out.stdout
    assert "README" in out.stdout

    codes = tmp_path / "codes.csv"
    codes.write_text(
        "Логин;ФИО;Роль;Класс;Код для входа\n"
        "@admin:localhost;Завуч;администратор;;ABCD-EFGH-JKLM\n",
        encoding="utf-8",
    )
    out = walkthrough(tmp_path, "--codes", str(codes))
    assert out.returncode == 1
    assert "Traceback" not in out.stdout + out.stderr, out.stdout + out.stderr
    assert "✗ 1.1 administrator signs in with the code" in out.stdout
    assert "Is `make run` going?" in out.stdout


async def test_the_lesson_steps_without_chromium_are_a_cross(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PARTA_CHROMIUM", str(tmp_path / "no-chromium"))
    walk = Walk()
    args = argparse.Namespace(headed=False, klass="5А")
    await browser_lesson(walk, {}, {}, "http://127.0.0.1:9", {}, {}, "@x:localhost", args)
    printed = capsys.readouterr().out
    assert printed.startswith("✗ 2.3–2.11 the lesson in Chromium: Chromium is not installed")
    assert "`make test` installs" in printed
    assert walk.failures == ["the lesson in Chromium"]
