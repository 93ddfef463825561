"""The Jinja2 environments of the emails and the pages: a newsroom's own templates first.

``site.templates_dir`` (default ``templates/`` beside config.yaml) overrides the
packaged templates file by file: an operator copies one template there, edits it,
and every other one stays the package's. Jinja checks a
file's modification time before using its compiled copy, so an edited template is
used from the next render on, without a restart.

:func:`check` renders every template once with sample data, for ``feedsvc check``,
and reports a mistake as ``templates/email/digest.html:LINE: message``.
"""

from __future__ import annotations

import functools
import traceback
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Literal

from jinja2 import (
    BaseLoader,
    Environment,
    FileSystemLoader,
    PackageLoader,
    TemplateNotFound,
    TemplateSyntaxError,
    select_autoescape,
)
from jinja2.loaders import split_template_path

from feedsvc.config import Config

Kind = Literal["email", "web"]
PACKAGED = Path(__file__).parent / "templates"


def environment(config: Config, kind: Kind) -> Environment:
    """The environment for ``kind`` (emails escape HTML only in .html files; pages
    escape everything), with ``site.templates_dir`` in front of the package."""
    return _environment(config.templates_path, kind)


class _Loader(BaseLoader):
    """The newsroom's folder first, then the package; a packaged template already
    compiled is out of date as soon as an override of it appears."""

    def __init__(self, own: Path) -> None:
        self.folder = own
        self.own = FileSystemLoader(own)
        self.package = PackageLoader("feedsvc", "templates")

    def get_source(
        self, environment: Environment, template: str
    ) -> tuple[str, str | None, Callable[[], bool] | None]:
        try:
            return self.own.get_source(environment, template)
        except TemplateNotFound:
            pass
        source, filename, uptodate = self.package.get_source(environment, template)
        override = self.folder.joinpath(*split_template_path(template))

        def current() -> bool:
            return (uptodate is None or uptodate()) and not override.exists()

        return source, filename, current

    def list_templates(self) -> list[str]:
        own = self.own.list_templates() if self.folder.is_dir() else []
        return sorted({*own, *self.package.list_templates()})


@functools.cache
def _environment(own: Path, kind: Kind) -> Environment:
    loader = _Loader(own)
    if kind == "email":
        return Environment(
            loader=loader,
            autoescape=select_autoescape(enabled_extensions=("html",), default=False),
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
    return Environment(
        loader=loader,
        autoescape=select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def overridden(config: Config) -> list[str]:
    """The template names the newsroom's folder provides."""
    folder = config.templates_path
    if not folder.is_dir():
        return []
    return sorted(
        str(path.relative_to(folder))
        for path in folder.rglob("*")
        if path.is_file() and path.suffix in (".html", ".txt")
    )


def check(config: Config) -> Iterator[tuple[str, str]]:
    """``(where, message)`` for each template that does not parse or fails on sample data.

    Emails are rendered as a digest and a confirmation are; each page with the
    context the site gives every page. ``where`` is the file and line
    (``templates/email/digest.html:12``) as an operator finds it: their own file
    when they override it, else the package's.
    """
    from feedsvc.newsletter import samples  # samples imports render, which imports this

    seen: set[str] = set()  # a broken template fails every render that uses it: say it once
    for kind in ("email", "web"):
        env = environment(config, kind)
        for name in env.list_templates(filter_func=partial(_of_kind, kind)):
            try:
                env.get_template(name)
            except TemplateSyntaxError as exc:
                where = f"{_shown(config, exc.name or name)}:{exc.lineno}"
                seen.add(where)
                yield where, exc.message or str(exc)
    for name, render in samples.renders(config):
        try:
            render()
        except Exception as exc:  # a template failing at run time: undefined, a bad filter…
            template, line = _failing(exc, config)
            where = f"{_shown(config, template or name)}:{line}"
            if where not in seen:
                seen.add(where)
                yield where, f"{type(exc).__name__}: {exc}"


def _of_kind(kind: str, name: str) -> bool:
    return name.startswith(f"{kind}/")


def _shown(config: Config, name: str) -> str:
    own = config.templates_path / name
    if own.is_file():
        try:
            return str(own.relative_to(config.root))
        except ValueError:
            return str(own)
    return f"(packaged) templates/{name}"


def _failing(exc: BaseException, config: Config) -> tuple[str | None, int]:
    """The template and line an error was raised at (Jinja rewrites tracebacks to them)."""
    roots = (config.templates_path, PACKAGED)
    found: tuple[str | None, int] = (None, 1)
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        path = Path(frame.f_code.co_filename)
        for root in roots:
            if path.is_relative_to(root):
                found = (str(path.relative_to(root)), lineno)
    return found
