"""The operator never sees a traceback: every mistake is one line, `file:line` when it is
about config.yaml, and exit 1. `check` reports what `run` would refuse, and `run`
refuses exactly that. Real processes, real sockets, real files."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._net import free_port, taken_port

SECRET = "k" * 32


def write_config(
    tmp_path: Path, port: int, extra: str = "", base_url: str = "", host: str = "127.0.0.1"
) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(
        'site:\n  title: "Bản tin"\n'
        f'  base_url: "{base_url or "https://tin.example.vn"}"\n'
        f"http:\n  host: {host}\n  port: {port}\n"
        'categories:\n  - id: xa-hoi\n    title: "Xã hội"\n' + extra,
        encoding="utf-8",
    )
    return path


def feedsvc(
    *args: str, config: Path, env: dict[str, str | None] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run feedsvc; ``env`` sets variables, or unsets those given as None."""
    environment = {**os.environ, "COLUMNS": "200", "FEEDSVC_SECRET_KEY": SECRET}
    for name, value in (env or {}).items():
        if value is None:
            environment.pop(name, None)
        else:
            environment[name] = value
    return subprocess.run(
        [sys.executable, "-m", "feedsvc", *args, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environment,
    )


def one_line_failure(result: subprocess.CompletedProcess[str]) -> str:
    """The single line a failed command printed (and it did fail, without a traceback)."""
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture
def taken() -> Iterator[int]:
    with taken_port() as port:
        yield port


def test_run_on_a_taken_port_is_one_line_and_never_says_started(tmp_path: Path, taken: int) -> None:
    config = write_config(tmp_path, taken)
    line = one_line_failure(feedsvc("run", config=config))
    assert line == (
        f"{config}:6: http.port: cannot listen on 127.0.0.1:{taken}:"
        " the port is in use (is feedsvc already running?)"
    )
    assert one_line_failure(feedsvc("serve", config=config)) == line


def test_run_on_an_address_not_on_this_machine_is_one_line(tmp_path: Path) -> None:
    config = write_config(tmp_path, free_port(), host="192.0.2.7")  # TEST-NET-1: nobody's
    line = one_line_failure(feedsvc("run", config=config))
    assert line.startswith(f"{config}:5: http.host: cannot listen on 192.0.2.7:")
    assert line.endswith("the address is not on this machine")


def test_smtp_password_unset_fails_check_and_run_alike(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        free_port(),
        "mail:\n  backend: smtp\n  smtp:\n    host: 127.0.0.1\n    password_env: OE_SMTP_PW\n",
    )
    expected = f"{config}:14: mail.smtp.password_env: $OE_SMTP_PW is not set (mail.backend is smtp)"
    unset: dict[str, str | None] = {"OE_SMTP_PW": None}
    checked = feedsvc("check", config=config, env=unset)
    assert checked.returncode == 1
    assert checked.stderr.splitlines() == [expected, "1 problem found"]
    ran = feedsvc("run", config=config, env=unset)
    assert one_line_failure(ran) == expected
    assert "started" not in ran.stderr


def test_invalid_from_and_reply_to_fail_check_with_their_lines(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        free_port(),
        'newsletter:\n  from: "Bản tin <bantin@@example.vn>"\n  reply_to: "toà soạn"\n',
    )
    checked = feedsvc("check", config=config)
    assert checked.returncode == 1
    assert "Traceback" not in checked.stderr
    assert f"{config}:11: newsletter.from: 'Bản tin <bantin@@example.vn>' is not an email" in (
        checked.stderr
    )
    assert f"{config}:12: newsletter.reply_to: 'toà soạn' is not an email" in checked.stderr
    assert "2 problems found" in checked.stderr


def test_check_lists_every_environment_problem_on_its_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    config = write_config(
        tmp_path,
        free_port(),
        'storage:\n  url: "postgresql+psycopg2://feedsvc@127.0.0.1/feedsvc"\ndata_dir: file/var\n',
    )
    checked = feedsvc("check", config=config, env={"FEEDSVC_SECRET_KEY": "short"})
    assert checked.returncode == 1
    assert "Traceback" not in checked.stderr
    lines = checked.stderr.splitlines()
    assert lines == [
        f"{config}:1: site.secret_key_env: $FEEDSVC_SECRET_KEY has 5 characters;"
        " a secret key needs at least 16",
        f"{config}:11: storage.url: the database driver is not installed"
        " (No module named 'psycopg2')",
        f"{config}:12: data_dir: cannot write to {tmp_path / 'file' / 'var'}:"
        f" {tmp_path / 'file'} is not a folder",
        "3 problems found",
    ]


def test_warnings_print_but_do_not_fail_the_check(tmp_path: Path, taken: int) -> None:
    config = write_config(tmp_path, taken, base_url="http://tin.example.vn")
    checked = feedsvc("check", config=config)
    assert checked.returncode == 0, checked.stderr
    assert checked.stderr.splitlines() == [
        f"{config}:3: warning: site.base_url is not https:"
        " one-click unsubscribe (RFC 8058) expects an HTTPS URL",
        f"{config}:6: warning: http.port: cannot listen on 127.0.0.1:{taken}:"
        " the port is in use (is feedsvc already running?)",
    ]
    assert checked.stdout.strip() == f"{config}: ok (0 sources, 1 categories; 2 warnings)"


@pytest.mark.parametrize(
    "command",
    [("run",), ("serve",), ("digest", "send", "daily"), ("check",)],
    ids=lambda command: " ".join(command),
)
def test_a_short_secret_key_is_one_line_from_every_command(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    config = write_config(tmp_path, free_port())
    result = feedsvc(*command, config=config, env={"FEEDSVC_SECRET_KEY": "short"})
    if command == ("check",):
        assert result.returncode == 1
        assert "a secret key needs at least 16" in result.stderr
        return
    line = one_line_failure(result)
    assert "$FEEDSVC_SECRET_KEY" in line
    assert "a secret key needs at least 16" in line


def test_import_opml_skips_outlines_that_are_not_http(tmp_path: Path) -> None:
    config = write_config(tmp_path, free_port(), "sources: []\n")
    outlines = tmp_path / "feeds.opml"
    outlines.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        "<opml version='2.0'><head><title>x</title></head><body>\n"
        '  <outline type="rss" text="Tốt" xmlUrl="https://x.vn/tot.rss"/>\n'
        '  <outline type="rss" text="Tệp" xmlUrl="file:///etc/passwd"/>\n'
        '  <outline type="rss" text="FTP" xmlUrl="ftp://x.vn/feed"/>\n'
        "</body></opml>\n",
        encoding="utf-8",
    )
    result = feedsvc("sources", "import-opml", str(outlines), config=config)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        f"{outlines}:4: skipped: 'file:///etc/passwd' is not an http(s) URL",
        f"{outlines}:5: skipped: 'ftp://x.vn/feed' is not an http(s) URL",
    ]
    assert "added 1 sources" in result.stdout
    assert "https://x.vn/tot.rss" in config.read_text(encoding="utf-8")
    assert feedsvc("check", config=config).returncode == 0
