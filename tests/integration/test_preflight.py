"""What `feedsvc run` needs of this machine, found before it starts: real files, real sockets."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from feedsvc import config, preflight
from feedsvc.errors import ConfigError
from tests._net import free_port, taken_port

SECRET = "s" * 32


def write(tmp_path: Path, text: str) -> config.Config:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return config.load(path)


def base(port: int, extra: str = "", *, base_url: str = "https://tin.example.vn") -> str:
    return (
        f'site:\n  title: "Bản tin"\n  base_url: "{base_url}"\n'
        f"http:\n  host: 127.0.0.1\n  port: {port}\n{extra}"
    )


@pytest.fixture
def taken() -> Iterator[int]:
    with taken_port() as port:
        yield port


def test_a_clean_config_has_no_findings(tmp_path: Path) -> None:
    loaded = write(tmp_path, base(free_port()))
    assert preflight.inspect(loaded, {"FEEDSVC_SECRET_KEY": SECRET}) == []


def test_every_problem_names_its_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    text = base(
        free_port(),
        'storage:\n  url: "mysql://feedsvc@127.0.0.1/feedsvc"\n'
        "data_dir: file/var\n"
        "mail:\n  backend: smtp\n  smtp:\n    password_env: OE_SMTP_PASSWORD\n"
        "  dkim:\n    domain: example.vn\n    selector: s\n    private_key_file: missing.pem\n",
    )
    loaded = write(tmp_path, text)
    found = [str(f) for f in preflight.inspect(loaded, {"FEEDSVC_SECRET_KEY": "short"})]
    path = loaded.path
    assert found == [
        f"{path}:1: site.secret_key_env: $FEEDSVC_SECRET_KEY has 5 characters;"
        " a secret key needs at least 16",
        f"{path}:8: storage.url: the database driver is not installed (No module named 'MySQLdb')",
        f"{path}:9: data_dir: cannot write to {tmp_path / 'file' / 'var'}:"
        f" {tmp_path / 'file'} is not a folder",
        f"{path}:13: mail.smtp.password_env: $OE_SMTP_PASSWORD is not set (mail.backend is smtp)",
        f"{path}:17: mail.dkim.private_key_file: cannot read {tmp_path / 'missing.pem'}:"
        " No such file or directory",
    ]


def test_an_outbox_that_cannot_be_written_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    loaded = write(tmp_path, base(free_port(), "mail:\n  outbox_dir: file/outbox\n"))
    [finding] = preflight.inspect(loaded, {})
    assert not finding.warning
    assert str(finding).startswith(f"{loaded.path}:8: mail.outbox_dir: cannot write to ")


def test_a_short_key_file_is_an_error(tmp_path: Path) -> None:
    loaded = write(tmp_path, base(free_port()))
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "secret.key").write_text("abc\n")
    [finding] = preflight.inspect(loaded, {})
    assert "the secret key is empty or too short; delete it to make a new one" in str(finding)


def test_plain_http_base_url_is_a_warning(tmp_path: Path) -> None:
    loaded = write(tmp_path, base(free_port(), base_url="http://tin.example.vn"))
    [finding] = preflight.inspect(loaded, {})
    assert finding.warning
    assert str(finding) == (
        f"{loaded.path}:3: warning: site.base_url is not https:"
        " one-click unsubscribe (RFC 8058) expects an HTTPS URL"
    )


def test_a_taken_port_is_a_warning_for_check_and_an_error_for_listen(
    tmp_path: Path, taken: int
) -> None:
    loaded = write(tmp_path, base(taken))
    [finding] = preflight.inspect(loaded, {})
    assert finding.warning
    assert str(finding) == (
        f"{loaded.path}:6: warning: http.port: cannot listen on 127.0.0.1:{taken}:"
        " the port is in use (is feedsvc already running?)"
    )
    assert preflight.inspect(loaded, {}, port=False) == []
    with pytest.raises(ConfigError) as info:
        preflight.listen(loaded)
    assert info.value.problems == [str(finding).replace("warning: ", "")]


def test_a_host_not_on_this_machine_cannot_be_listened_on(tmp_path: Path) -> None:
    loaded = write(tmp_path, base(free_port()).replace("127.0.0.1", "192.0.2.7"))
    with pytest.raises(ConfigError) as info:
        preflight.listen(loaded)
    [problem] = info.value.problems
    assert problem.startswith(f"{loaded.path}:5: http.host: cannot listen on 192.0.2.7:")
    assert problem.endswith("the address is not on this machine")


def test_listen_binds_the_port(tmp_path: Path) -> None:
    loaded = write(tmp_path, base(free_port()))
    sockets = preflight.listen(loaded)
    try:
        with socket.create_connection(("127.0.0.1", loaded.http.port), timeout=2):
            pass  # accepted into the backlog: it listens
    finally:
        for sock in sockets:
            sock.close()


def test_require_raises_the_errors_and_returns_the_warnings(tmp_path: Path) -> None:
    text = base(free_port(), "mail:\n  backend: smtp\n  smtp: {password_env: OE_PW}\n")
    loaded = write(tmp_path, text.replace("https://", "http://"))
    with pytest.raises(ConfigError) as info:
        preflight.require(loaded, {})
    assert info.value.problems == [
        f"{loaded.path}:9: mail.smtp.password_env: $OE_PW is not set (mail.backend is smtp)"
    ]
    [warning] = preflight.require(loaded, {"OE_PW": "x"})
    assert "site.base_url is not https" in str(warning)


def test_a_dkim_file_that_is_no_key_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "dkim.pem").write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n")
    text = base(
        free_port(),
        "mail:\n  dkim:\n    domain: example.vn\n    selector: s\n    private_key_file: dkim.pem\n",
    )
    loaded = write(tmp_path, text)
    [finding] = preflight.inspect(loaded, {})
    assert str(finding) == (
        f"{loaded.path}:11: mail.dkim.private_key_file: {tmp_path / 'dkim.pem'}:"
        " not an RSA private key in PEM form (PKCS#1 or PKCS#8)"
    )
