"""The ``feedsvc`` command. Thin: it parses arguments, calls the modules, prints.

Every operator-facing failure is one line and exit 1, never a traceback: a
``click.ClickException``, or any ``FeedsvcError`` raised under a command, which
the :class:`_Commands` group turns into one (a ``ConfigError`` prints each of its
problems as ``file:line: message``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from feedsvc import __version__, config_edit, opml, preflight, search
from feedsvc import config as config_module
from feedsvc import log as logsetup
from feedsvc._table import PlainTable
from feedsvc._terminal import shown
from feedsvc.config import Config
from feedsvc.errors import ConfigError, FeedsvcError
from feedsvc.model import PollResult, Source, utcnow
from feedsvc.newsletter import consent, roster
from feedsvc.newsletter.topics import write_cell
from feedsvc.search import SearchHit, Snippet
from feedsvc.store import Store

if TYPE_CHECKING:  # loaded lazily: `feedsvc check` need not import aiohttp or feedgen
    from feedsvc.ingest.poll import Poller
    from feedsvc.lease import Holder
    from feedsvc.newsletter.deliver import Deliverer, Summary
    from feedsvc.publish.regenerate import Publisher

log = logging.getLogger("feedsvc.cli")
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="FEEDSVC_CONFIG",
    default="config.yaml",
    show_default=True,
    help="The configuration file.",
)


def load_config(path: Path) -> Config:
    """config.yaml; a ``ConfigError`` (each problem on its own line, exit 1) when invalid."""
    return config_module.load(path)


def preflight_config(config: Config) -> None:
    """Refuse what ``feedsvc check`` reports as errors (``ConfigError``); log its warnings."""
    for warning in preflight.require(config):
        log.warning("config warning", extra={"fields": {"problem": warning.text}})


@contextmanager
def opened_store(config: Config) -> Iterator[Store]:
    """The migrated store for ``config``, closed afterwards; a one-line error if unreachable."""
    store = _open_store(config)
    try:
        yield store
    finally:
        store.close()


def _open_store(config: Config) -> Store:
    try:
        return Store.open(config.database_url)
    except Exception as exc:  # SQLAlchemy/driver errors: say where, not how
        reason = " ".join(str(getattr(exc, "orig", exc)).split())[:300]
        raise click.ClickException(f"database {_safe_url(config.database_url)}: {reason}") from exc


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


class _Commands(click.Group):
    """The command group: feedsvc's own errors, raised anywhere under a command, end as
    one-line messages and exit 1, never as a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            for problem in exc.problems:
                err.print(problem, markup=False)
            ctx.exit(1)
        except FeedsvcError as exc:
            raise click.ClickException(" ".join(str(exc).split())) from exc


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="feedsvc")
@click.option("-v", "--verbose", is_flag=True, help="Log debug events.")
@click.option(
    "--log-format", type=click.Choice(["text", "json"]), default="text", help="Log line format."
)
def main(verbose: bool, log_format: logsetup.Format) -> None:
    """feedsvc: polls feeds, republishes them per category, emails digests."""
    logsetup.setup(logging.DEBUG if verbose else logging.INFO, log_format)


@main.command()
@config_option
def check(config_path: Path) -> None:
    """Validate config.yaml and what `run` needs of this machine; print each problem as
    file:line: message. Warnings (a port in use, a base_url without https) do not fail it."""
    config: Config | None = None
    try:
        config = config_module.load(config_path)
    except ConfigError as exc:
        lines, warnings = exc.problems, 0
    else:
        findings = preflight.inspect(config)
        lines = [str(finding) for finding in findings]
        warnings = sum(finding.warning for finding in findings)
    for line in lines:
        err.print(line, markup=False)
    errors = len(lines) - warnings
    noted = f"{warnings} warning{_plural(warnings)}" if warnings else ""
    if errors or config is None:
        total = f"{errors} problem{_plural(errors)} found"
        err.print(f"{total} ({noted})" if noted else total, markup=False)
        raise SystemExit(1)
    counts = f"{len(config.sources)} sources, {len(config.categories)} categories"
    out.print(f"{config_path}: ok ({counts}{'; ' + noted if noted else ''})", markup=False)


def _plural(count: int) -> str:
    return "" if count == 1 else "s"


@main.group()
def db() -> None:
    """The database."""


@db.command("upgrade")
@config_option
def db_upgrade(config_path: Path) -> None:
    """Create the database or migrate it to this version's schema.

    Entries stored before story detection existed get their stories here (series,
    related stories, one story across sources).
    """
    config = load_config(config_path)
    with opened_store(config) as store:
        pending = store.stories.pending(utcnow())
        if pending:
            out.print(f"detecting the stories of {pending:,} stored entries…", markup=False)
            _publisher(config, store).detect(utcnow())
        out.print(f"database {_safe_url(config.database_url)} is up to date", markup=False)


@main.command()
@click.argument("source_ids", nargs=-1)
@click.option("--force", is_flag=True, help="Also poll retired sources and ignore Retry-After.")
@click.option(
    "--wait", "wait_for_leases", is_flag=True, help="Wait for sources another process is polling."
)
@config_option
def poll(
    source_ids: tuple[str, ...], force: bool, wait_for_leases: bool, config_path: Path
) -> None:
    """Poll sources now (all, or those named) and store what is new."""
    from feedsvc.lease import describe

    config = load_config(config_path)
    _check_ids(config, source_ids)
    with opened_store(config) as store:
        results, held = asyncio.run(
            _poll(config, store, list(source_ids) or None, force, wait_for_leases)
        )
        publisher = _publisher(config, store)
        asyncio.run(publisher.announce(publisher.after_poll(results, utcnow())))
    _print_results(results)
    if held:
        err.print(describe(held, ("source", "sources")), markup=False)


def _publisher(config: Config, store: Store) -> Publisher:
    from feedsvc.publish.regenerate import Publisher

    return Publisher(config, store)


@main.command()
@config_option
def publish(config_path: Path) -> None:
    """Regenerate every category feed (after editing categories, say)."""
    config = load_config(config_path)
    with opened_store(config) as store:
        publisher = _publisher(config, store)
        changed = publisher.publish_all(utcnow())
        asyncio.run(publisher.announce(changed))
    out.print(f"{len(changed)} documents changed: {' '.join(changed) or '-'}", markup=False)


@main.command()
@config_option
def serve(config_path: Path) -> None:
    """Serve the feeds and pages over HTTP only (no polling)."""
    from feedsvc.schedule import http_server

    config = load_config(config_path)
    preflight_config(config)
    sockets = preflight.listen(config)  # before anything else: a port in use ends here
    with opened_store(config) as store:
        _publisher(config, store).publish_all(utcnow())
        server = http_server(config, store, embedded=False)
        log.info("serving", extra={"fields": {"http": f"{config.http.host}:{config.http.port}"}})
        with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises Ctrl-C once stopped
            asyncio.run(server.serve(sockets=sockets))


def _check_ids(config: Config, ids: Sequence[str]) -> None:
    known = [source.id for source in config.sources]
    for source_id in ids:
        if source_id not in known:
            hint = config_module._did_you_mean(source_id, known)
            raise click.ClickException(f"unknown source id {source_id!r}{hint}")


async def _poll(
    config: Config, store: Store, ids: list[str] | None, force: bool, wait_for_leases: bool
) -> tuple[list[PollResult], list[Holder]]:
    from feedsvc.ingest.poll import Poller

    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:  # -v logs every poll
        # Every source's outcome is in the table printed afterwards: an INFO line per
        # source on stderr as well doubled the output, cost more CPU than the 304 it
        # reported and scrolled through the progress bar. Failures are still logged.
        logging.getLogger("feedsvc.poll").setLevel(logging.WARNING)
    async with Poller(config, store) as poller:
        await asyncio.to_thread(poller.sync_sources)
        if not out.is_terminal:
            results = await poller.poll(ids, force=force, wait_for_leases=wait_for_leases)
        else:
            results = await _poll_with_progress(poller, ids, force, wait_for_leases)
        return results, await asyncio.to_thread(poller.held)


async def _poll_with_progress(
    poller: Poller, ids: list[str] | None, force: bool, wait_for_leases: bool
) -> list[PollResult]:
    with Progress(
        TextColumn("polling"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=out,
        transient=True,
        refresh_per_second=2,  # a redraw costs about 1 ms of CPU; 10 a second was rich's
    ) as progress:
        task = progress.add_task("poll", total=None)
        return await poller.poll(
            ids,
            force=force,
            wait_for_leases=wait_for_leases,
            on_claimed=lambda n: progress.update(task, total=n),
            on_result=lambda _: progress.advance(task),
        )


def _print_results(results: list[PollResult]) -> None:
    if not results:
        out.print(
            "nothing to poll (every source is paused, retired, held back or leased elsewhere)"
        )
        return
    table = PlainTable("source", "status", "new", "backlog", "updated", "error")
    for result in sorted(results, key=lambda r: r.source_id):
        problem = result.error or (f"warning: {result.warning}" if result.warning else "")
        style = "red" if result.error else ("yellow" if result.warning else None)
        table.add_row(
            result.source_id,
            result.status,
            str(result.new),
            str(result.backlog or ""),
            str(result.updated),
            shown(problem).plain,  # the server's words: no escape or bidi characters
            style=style,
        )
    out.print(table)
    failed = sum(1 for r in results if r.error)
    new = sum(r.new for r in results)
    backlog = sum(r.backlog for r in results)
    out.print(f"{len(results)} polled, {new} new, {failed} failed", markup=False)
    if backlog:
        out.print(
            f"{backlog} of the new entries are backlog (published over a day before their"
            " source's first poll): they appear in the feeds but never in a digest",
            markup=False,
        )


@main.group()
def sources() -> None:
    """Sources and their health."""


@sources.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@config_option
def sources_list(as_json: bool, config_path: Path) -> None:
    """Every source: status, last error, when it was and will be polled."""
    config = load_config(config_path)
    with opened_store(config) as store:
        store.sources.sync([(s.id, s.url) for s in config.sources], utcnow())
        rows = store.sources.list()
    titles = {source.id: source.title for source in config.sources}
    if as_json:
        click.echo(
            json.dumps([_source_json(s, titles) for s in rows], ensure_ascii=False, indent=2)
        )
        return
    table = Table("source", "status", "entries", "last polled", "next poll", "errors", "last error")
    for source in rows:
        table.add_row(
            source.id if source.active else f"{source.id} (removed)",
            source.status.value + (" ⚠" if source.warning else ""),
            str(source.entries),
            _when(source.last_polled_at),
            _when(source.next_poll_at),
            str(source.error_count or ""),
            shown(source.last_error or source.warning),
        )
    out.print(table)


def _source_json(source: Source, titles: dict[str, str | None]) -> dict[str, Any]:
    def iso(when: datetime | None) -> str | None:
        return when.isoformat() if when else None

    return {
        "id": source.id,
        "title": titles.get(source.id) or source.title,
        "url": source.url,
        "config_url": source.config_url,
        "active": source.active,
        "status": source.status.value,
        "last_error": source.last_error,
        "warning": source.warning,
        "error_count": source.error_count,
        "last_polled_at": iso(source.last_polled_at),
        "next_poll_at": iso(source.next_poll_at),
        "retry_after": iso(source.retry_after),
        "entries": source.entries,
    }


def _when(when: datetime | None) -> str:
    return when.astimezone().strftime("%Y-%m-%d %H:%M:%S") if when else "-"


@sources.command("pause")
@click.argument("source_id")
@config_option
def sources_pause(source_id: str, config_path: Path) -> None:
    """Stop polling a source, in every process sharing the database, until `resume`."""
    _operate(config_path, source_id, "pause")


@sources.command("resume")
@click.argument("source_id")
@config_option
def sources_resume(source_id: str, config_path: Path) -> None:
    """Poll a paused source again on its schedule."""
    _operate(config_path, source_id, "resume")


def _operate(config_path: Path, source_id: str, action: str) -> None:
    from feedsvc.ingest import operate

    config = load_config(config_path)
    _check_ids(config, [source_id])
    by = f"cli:{os.environ.get('USER') or 'unknown'}"
    with opened_store(config) as store:
        store.sources.sync([(s.id, s.url) for s in config.sources], utcnow())
        if action == "pause":
            done = operate.pause(store, source_id, by=by, now=utcnow())
        else:
            done = operate.resume(store, source_id, by=by)
    out.print(f"{source_id}: {done}", markup=False)


@sources.command("export-opml")
@config_option
def sources_export_opml(config_path: Path) -> None:
    """Print the sources as OPML (for another feed reader)."""
    config = load_config(config_path)
    titles = {category.id: category.title for category in config.categories}
    outlines = [
        opml.Outline(
            source.url,
            source.title or source.id,
            titles.get(source.categories[0], "") if source.categories else "",
        )
        for source in config.sources
    ]
    sys.stdout.buffer.write(opml.write(config.site.title, outlines, utcnow()))


@sources.command("import-opml")
@click.argument("file", type=click.File("rb"))
@click.option("--category", "categories", multiple=True, help="File every imported source here.")
@config_option
def sources_import_opml(file: Any, categories: tuple[str, ...], config_path: Path) -> None:
    """Add the feeds of an OPML file to config.yaml (existing URLs are skipped, and so are
    outlines that cannot be sources, each reported by line)."""
    config = load_config(config_path)
    found = config_edit.sources_from_outlines(config, opml.read(file.read()), list(categories))
    for skipped in found.skipped:
        err.print(f"{file.name}:{skipped.line}: skipped: {skipped.reason}", markup=False)
    new = found.sources
    if not new:
        out.print("nothing to import: every feed is already configured or skipped")
        return
    text = config_edit.add_sources(config_path.read_text(encoding="utf-8"), new)
    try:
        config_module.parse(text, config_path)
    except ConfigError as exc:
        raise click.ClickException("; ".join(exc.problems)) from None
    config_edit.write_atomically(config_path, text)
    out.print(f"added {len(new)} sources to {config_path}: {', '.join(s.id for s in new)}")


@main.command("search")
@click.argument("text")
@click.option("--category", help="Only entries filed under this category id.")
@click.option("--limit", type=click.IntRange(1, 200), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@config_option
def search_command(
    text: str, category: str | None, limit: int, as_json: bool, config_path: Path
) -> None:
    """Search the stored entries, with or without tones ("da nang" finds "Đà Nẵng")."""
    config = load_config(config_path)
    if category is not None and category not in {c.id for c in config.categories}:
        raise click.ClickException(f"unknown category {category!r} (see config.yaml categories)")
    with opened_store(config) as store:
        hits = store.search.search(search.parse(text), category, limit)
    titles = {s.id: s.title for s in config.sources if s.title}
    hits = [replace(h, source=titles.get(h.entry.source_id) or h.source) for h in hits]
    if as_json:
        click.echo(json.dumps([_hit_json(h) for h in hits], ensure_ascii=False, indent=2))
        return
    if not hits:
        out.print("nothing found", markup=False)
        return
    table = Table("title", "source", "published", "snippet", show_lines=True)
    for hit in hits:
        table.add_row(
            _marked(hit.title), shown(hit.source), _when(hit.entry.date), _marked(hit.snippet)
        )
    out.print(table)


def _hit_json(hit: SearchHit) -> dict[str, Any]:
    entry = hit.entry
    return {
        "id": entry.id,
        "title": entry.title,
        "url": entry.link,
        "source": hit.source,
        "source_id": entry.source_id,
        "published_at": entry.date.isoformat(),
        "snippet": hit.snippet.text,
    }


def _marked(snippet: Snippet) -> Text:
    """A snippet for the terminal: remote text shown literally, the matches in bold."""
    line = Text()
    for piece, marked in snippet.pieces:
        line.append(shown(piece).plain, style="bold reverse" if marked else None)
    return line


@main.command()
@config_option
def run(config_path: Path) -> None:
    """Run the service until SIGINT/SIGTERM: poll every source on its interval."""
    from feedsvc.schedule import Service

    config = load_config(config_path)
    preflight_config(config)
    with opened_store(config) as store:
        asyncio.run(Service(config, store).run())


@main.group()
def subscribers() -> None:
    """Subscribers of the digests (stored in the database, never in config.yaml)."""


@subscribers.command("add")
@click.argument("email")
@click.option("--category", "categories", multiple=True, help="A category id (repeatable).")
@click.option("--schedule", help="One of newsletter.schedules (default: default_schedule).")
@click.option("--locale", type=click.Choice(["vi", "en"]), help="Language of the emails.")
@click.option("--confirmed", is_flag=True, help="Active at once, without double opt-in.")
@click.option(
    "--topic",
    "topics",
    multiple=True,
    help='A topic to follow by email, e.g. "đà nẵng" (repeatable).',
)
@config_option
def subscribers_add(
    email: str,
    categories: tuple[str, ...],
    schedule: str | None,
    locale: str | None,
    confirmed: bool,
    topics: tuple[str, ...],
    config_path: Path,
) -> None:
    """Add a subscriber: pending, and sent the confirmation email, unless --confirmed."""
    config = load_config(config_path)
    try:
        signup = roster.check_signup(
            config,
            email,
            categories or [c.id for c in config.categories],
            schedule,
            locale,
            topics,
        )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    if signup.smtputf8:
        err.print(f"warning: {signup.email}: {SMTPUTF8_WARNING}", markup=False)
    with opened_store(config) as store:
        try:
            added = consent.add(
                config, store, signup, confirmed=confirmed, origin="cli", now=utcnow()
            )
        except consent.ConsentError as exc:
            raise click.ClickException(str(exc)) from None
        if added.queued is None:
            out.print(f"added {added.subscriber.email} ({added.subscriber.status})", markup=False)
            return
        outcome = _send_now(config, store, [added.queued])[added.queued]
    out.print(f"added {signup.email} (pending); {outcome}", markup=False)


SMTPUTF8_WARNING = (
    "the part before @ is not ASCII, so only mail servers with SMTPUTF8 can deliver to it"
)


@subscribers.command("confirm")
@click.argument("emails", nargs=-1, required=True)
@config_option
def subscribers_confirm(emails: tuple[str, ...], config_path: Path) -> None:
    """Make pending subscribers active (they confirmed some other way)."""
    config = load_config(config_path)
    with opened_store(config) as store:
        _each(
            emails, lambda email: consent.confirm(store, consent.known(store, email), utcnow())[1]
        )


@subscribers.command("unsubscribe")
@click.argument("emails", nargs=-1, required=True)
@config_option
def subscribers_unsubscribe(emails: tuple[str, ...], config_path: Path) -> None:
    """Stop sending to these subscribers (they stay listed, as unsubscribed)."""
    config = load_config(config_path)
    with opened_store(config) as store:
        _each(
            emails,
            lambda email: consent.unsubscribe(store, consent.known(store, email), origin="cli"),
        )


@subscribers.command("resend")
@click.argument("emails", nargs=-1, required=True)
@config_option
def subscribers_resend(emails: tuple[str, ...], config_path: Path) -> None:
    """Send pending subscribers their confirmation email again (the same link)."""
    config = load_config(config_path)
    queued: dict[str, int] = {}

    def resend(email: str) -> str:
        outcome, row = consent.resend(store, email, origin="cli", now=utcnow())
        if row is not None:
            queued[email] = row
        return outcome

    with opened_store(config) as store:
        failures = _each(emails, resend, report=False)
        sent = _send_now(config, store, list(queued.values()))
    for email in emails:
        if email in queued:
            out.print(f"{email}: {sent[queued[email]]}", markup=False)
        elif email not in failures:
            out.print(f"{email}: {consent.Outcome.ALREADY_ACTIVE}, nothing sent", markup=False)
    if failures:
        raise SystemExit(1)


def _each(emails: Sequence[str], action: Callable[[str], str], *, report: bool = True) -> set[str]:
    """Do ``action`` for each address; print each outcome, or its error on stderr.

    Every address is tried; one that fails makes the command exit 1 at the end
    (after the others are done), unless ``report`` is off (the caller decides).
    """
    failures: set[str] = set()
    for email in emails:
        try:
            outcome = action(email)
        except consent.ConsentError as exc:
            err.print(f"error: {exc}", markup=False)
            failures.add(email)
            continue
        if report:
            out.print(f"{email}: {outcome}", markup=False)
    if failures and report:
        raise SystemExit(1)
    return failures


def _send_now(config: Config, store: Store, ids: Sequence[int]) -> dict[int, str]:
    """Send these queued confirmations before the command exits; each one's outcome."""
    from feedsvc.lease import process_owner
    from feedsvc.newsletter.confirmations import send_queued
    from feedsvc.newsletter.mail import create_mailer
    from feedsvc.newsletter.tokens import Tokens

    async def send() -> None:
        mailer = create_mailer(config)
        try:
            tokens = Tokens.from_config(config)
            await send_queued(config, store, mailer, tokens, process_owner(), only=ids)
        finally:
            await mailer.close()

    if ids:
        asyncio.run(send())
    return {row: _sent(*outcome) for row, outcome in store.confirmations.outcomes(ids).items()}


def _sent(state: str, detail: str | None) -> str:
    """One confirmation's outcome, as the operator reads it."""
    if state == "sent":
        return "confirmation sent"
    if state == "skipped" and detail == "too soon":
        return "confirmation not sent: too soon after the last one to this mailbox (one a minute)"
    if state == "queued":
        return f"confirmation not sent yet, will be retried: {detail}"
    return f"confirmation not sent: {detail or state}"


@subscribers.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@config_option
def subscribers_list(as_json: bool, config_path: Path) -> None:
    """Every subscriber with status, categories, schedule and language."""
    config = load_config(config_path)
    with opened_store(config) as store:
        everyone = store.subscribers.list()
    if as_json:
        rows = [
            {
                "email": s.email,
                "status": s.status.value,
                "categories": list(s.categories),
                "schedule": s.schedule,
                "locale": s.locale,
                "created_at": s.created_at.isoformat(),
                "confirmed_at": s.confirmed_at.isoformat() if s.confirmed_at else None,
                "bounce_count": s.bounce_count,
                "topics": list(s.topics),
            }
            for s in everyone
        ]
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    table = Table("email", "status", "categories", "schedule", "locale", "bounces", "topics")
    for s in everyone:
        table.add_row(
            s.email,
            s.status.value,
            " ".join(s.categories),
            s.schedule,
            s.locale,
            str(s.bounce_count or ""),
            shown(write_cell(s.topics)),
        )
    out.print(table)
    out.print(f"{len(everyone)} subscribers", markup=False)


@subscribers.command("remove")
@click.argument("email")
@config_option
def subscribers_remove(email: str, config_path: Path) -> None:
    """Delete a subscriber: the address and its links (delivery counts stay, anonymous)."""
    config = load_config(config_path)
    with opened_store(config) as store:
        consent.delete(store, consent.known(store, email), origin="cli")
    out.print(f"removed {email}", markup=False)


@subscribers.command("import")
@click.argument("file", type=click.File("r", encoding="utf-8-sig"))
@click.option("--confirmed", is_flag=True, help="Import as active (they opted in elsewhere).")
@config_option
def subscribers_import(file: Any, confirmed: bool, config_path: Path) -> None:
    """Import CSV rows email,categories,schedule,locale[,status,created_at,confirmed_at,topics].

    New pending rows are sent the confirmation email. Unsubscribed and bounced
    addresses stay so, with or without --confirmed; addresses already here are
    left as they are.
    """
    config = load_config(config_path)
    rows, problems = roster.read_csv(config, file.read())
    for problem in problems:
        err.print(f"{file.name}: {problem}", markup=False)
    with opened_store(config) as store:
        done = consent.import_rows(config, store, rows, confirmed=confirmed, now=utcnow())
        sent = _send_now(config, store, done.queued)
    mailed = sum(outcome == "confirmation sent" for outcome in sent.values())
    out.print(
        f"imported {done.active + done.pending} ({done.active} active, {done.pending} pending, "
        f"{mailed} confirmations sent), kept {done.kept} unsubscribed or bounced, "
        f"already present {done.present}, rejected {len(problems)}"
        + (f", {done.limited} over the per-mailbox limit (resend later)" if done.limited else ""),
        markup=False,
    )


@subscribers.command("export")
@config_option
def subscribers_export(config_path: Path) -> None:
    """Print every subscriber as CSV, with status and consent times."""
    config = load_config(config_path)
    with opened_store(config) as store:
        click.echo(roster.write_csv(store.subscribers.list()), nl=False)


@main.group()
def digest() -> None:
    """Digest newsletters."""


def _schedule(config: Config, name: str) -> str:
    if name not in config.newsletter.schedules:
        hint = config_module._did_you_mean(name, list(config.newsletter.schedules))
        raise click.ClickException(f"unknown schedule {name!r}{hint}")
    return name


def _deliverer(config: Config, store: Store, mailer: Any) -> Deliverer:
    from feedsvc.lease import process_owner
    from feedsvc.newsletter.compose import subscriber_links
    from feedsvc.newsletter.deliver import Deliverer
    from feedsvc.newsletter.tokens import Tokens

    links = subscriber_links(config, Tokens.from_config(config))
    return Deliverer(config, store, mailer, links=links, owner=process_owner())


@digest.command("send")
@click.argument("schedule")
@click.option("--dry-run", is_flag=True, help="Show who would get what; send and write nothing.")
@click.option("--now", "at_now", is_flag=True, help="Close a period now instead of the latest due.")
@click.option(
    "--wait", "wait_for_leases", is_flag=True, help="Wait for digests another process holds."
)
@config_option
def digest_send(
    schedule: str, dry_run: bool, at_now: bool, wait_for_leases: bool, config_path: Path
) -> None:
    """Send the latest due period's digests of SCHEDULE (or, with --now, a period closed now)."""
    from feedsvc.lease import describe
    from feedsvc.newsletter.mail import create_mailer

    config = load_config(config_path)
    _schedule(config, schedule)
    with opened_store(config) as store:
        if dry_run:
            _print_dry_run(config, store, schedule)
            return
        mailer = create_mailer(config)
        deliverer = _deliverer(config, store, mailer)
        plan = deliverer.plan_now(schedule) if at_now else deliverer.plan(schedule)
        if plan.resumed:
            out.print(
                f"finishing the {schedule} period of {plan.period:%Y-%m-%d %H:%M:%S} UTC"
                " that an earlier --now left unfinished",
                markup=False,
            )
        summary = asyncio.run(_send(deliverer, mailer, schedule, wait_for_leases))
        why = deliverer.why_nothing(plan) if not summary.states.get("sent") else None
    states = ", ".join(f"{n} {state}" for state, n in sorted(summary.states.items())) or "nothing"
    out.print(
        f"{schedule} {plan.period:%Y-%m-%d %H:%M} UTC: {plan.subscribers} subscribers, "
        f"{plan.created} new deliveries; {states}",
        markup=False,
    )
    if summary.held:
        err.print(describe(summary.held, ("delivery", "deliveries")), markup=False)
    elif why:
        out.print(why, markup=False)


async def _send(deliverer: Deliverer, mailer: Any, schedule: str, wait_for_leases: bool) -> Summary:
    try:
        return await deliverer.send(
            schedule,
            wait=deliverer.config.mail.retry_delay * 8,
            wait_for_leases=wait_for_leases,
        )
    finally:
        await mailer.close()


def _print_dry_run(config: Config, store: Store, schedule: str) -> None:
    from feedsvc.newsletter.digests import Digests, period_windows

    period, windows = period_windows(config, store, schedule, utcnow())
    digests = Digests(config, store)
    table = Table("email", "stories", "sections")
    for subscriber, window in windows:
        if window is None:
            table.add_row(subscriber.email, "-", "(an earlier digest is still being sent)")
            continue
        found = digests.for_subscriber(subscriber, window.since, window.until)
        sections = ", ".join(section.title or "your topics" for section in found.sections)
        table.add_row(subscriber.email, str(found.count), sections or "(nothing new: no email)")
    out.print(table)
    out.print(f"dry run for {schedule} {period:%Y-%m-%d %H:%M} UTC: nothing sent", markup=False)


@digest.command("preview")
@click.argument("schedule")
@click.argument("email")
@click.option("--latest", is_flag=True, help="The latest due period, as `digest send` sends it.")
@click.option(
    "--html",
    "html_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the HTML part to this file.",
)
@click.option(
    "--text",
    "text_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the text part to this file.",
)
@config_option
def digest_preview(
    schedule: str,
    email: str,
    latest: bool,
    html_file: Path | None,
    text_file: Path | None,
    config_path: Path,
) -> None:
    """Show the edition EMAIL would get from SCHEDULE: by default the upcoming one, the
    stories so far for the next fire time. Nothing is sent or recorded."""
    from feedsvc.newsletter.digests import local_time
    from feedsvc.newsletter.preview import preview

    config = load_config(config_path)
    _schedule(config, schedule)
    with opened_store(config) as store:
        subscriber = store.subscribers.by_email(email)
        if subscriber is None:
            raise click.ClickException(f"no subscriber {email}")
        deliverer = _deliverer(config, store, None)
        now = utcnow()
        shown = preview(
            config, store, deliverer.composer(), schedule, subscriber, now, latest=latest
        )
        if shown is None:
            raise click.ClickException(
                f"an earlier {schedule} digest to {subscriber.email} is still being sent"
            )
        if shown.send_at is not None:
            head = f"upcoming {schedule} edition for {subscriber.email}, to be sent "
            head += f"{local_time(config, shown.send_at)}: {shown.digest.count} stories so far"
        else:
            head = f"latest {schedule} edition for {subscriber.email}, period "
            head += f"{local_time(config, shown.window.until)}: {shown.digest.count} stories"
        since = local_time(config, shown.window.since)
    out.print(head, markup=False)
    if shown.message is None:
        out.print(f"nothing new for {subscriber.email} since {since}: no email", markup=False)
        return
    for path, subtype in ((html_file, "html"), (text_file, "plain")):
        if path is not None:
            path.write_text(shown.part(subtype), encoding="utf-8")
            out.print(f"wrote the {subtype} part to {path}", markup=False)
    if html_file is None and text_file is None:
        click.echo(f"Subject: {shown.subject}\n")
        click.echo(shown.part("plain"))


@digest.command("test")
@click.argument("schedule")
@click.option("--to", "address", required=True, help="Where to send it (need not subscribe).")
@click.option("--category", "categories", multiple=True, help="A category id (repeatable).")
@click.option("--locale", type=click.Choice(["vi", "en"]), help="Language of the email.")
@config_option
def digest_test(
    schedule: str, address: str, categories: tuple[str, ...], locale: str | None, config_path: Path
) -> None:
    """Send the upcoming edition of SCHEDULE to ADDRESS as a test: subject marked
    [Thử]/[Test], inert links, nothing recorded."""
    from feedsvc.newsletter.mail import SendStatus, create_mailer
    from feedsvc.newsletter.preview import reader_for_test
    from feedsvc.newsletter.roster import normalize_email

    config = load_config(config_path)
    _schedule(config, schedule)
    known = [category.id for category in config.categories]
    for category in categories:
        if category not in known:
            hint = config_module._did_you_mean(category, known)
            raise click.ClickException(f"unknown category {category!r}{hint}")
    try:
        to = normalize_email(address)
    except ValueError as exc:
        raise click.ClickException(f"{address}: {exc}") from None
    reader = reader_for_test(config, schedule, to, list(categories), locale)
    with opened_store(config) as store:
        mailer = create_mailer(config)
        deliverer = _deliverer(config, store, mailer)
        shown, result = asyncio.run(
            _send_test(config, store, mailer, schedule, reader, deliverer.domain)
        )
    if result is None:
        raise click.ClickException(
            f"nothing new for the upcoming {schedule} edition yet: no test email sent"
        )
    if result.status is not SendStatus.SENT:
        raise click.ClickException(f"test email to {to} not sent: {result.detail}")
    out.print(
        f"sent a test of the upcoming {schedule} edition ({shown.digest.count} stories) to {to}",
        markup=False,
    )


async def _send_test(
    config: Config, store: Store, mailer: Any, schedule: str, reader: Any, domain: str
) -> Any:
    from feedsvc.newsletter.preview import send_test

    try:
        return await send_test(config, store, mailer, schedule, reader, utcnow(), domain)
    finally:
        await mailer.close()


@main.group()
def bounces() -> None:
    """Delivery reports that come back after sending: bounces and complaints."""


@bounces.command("process")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@config_option
def bounces_process(files: tuple[Path, ...], config_path: Path) -> None:
    """Read DSN (RFC 3464) and ARF (RFC 5965) reports from FILES; each counts once."""
    from feedsvc.newsletter.reports import ReportProcessor

    config = load_config(config_path)
    with _one_line_errors(), opened_store(config) as store:
        processor = ReportProcessor.from_config(config, store)
        for path in files:
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise click.ClickException(f"{path}: {exc.strerror or exc}") from exc
            processed = processor.process(data, f"file:{path.resolve()}")
            out.print(f"{path}: {_report_line(processed)}", markup=False)


@bounces.command("fetch")
@config_option
def bounces_fetch(config_path: Path) -> None:
    """Read mail.bounces.mailbox once, as `feedsvc run` does every mail.bounces.every."""
    from feedsvc.newsletter.reports import read_mailbox

    config = load_config(config_path)
    with _one_line_errors(), opened_store(config) as store:
        processed = read_mailbox(config, store)
    for item in processed:
        out.print(f"{item.origin}: {_report_line(item)}", markup=False)
    out.print(f"{len(processed)} reports read", markup=False)


@contextmanager
def _one_line_errors() -> Iterator[None]:
    """feedsvc's own errors (an unreachable mailbox, an unusable key) as one line, exit 1."""
    try:
        yield
    except FeedsvcError as exc:
        raise click.ClickException(" ".join(str(exc).split())) from exc


def _report_line(processed: Any) -> str:
    """One report's outcome for a person: what it was, which delivery, what it did."""
    if processed.outcome is None:
        return "processed before: nothing changed"
    delivery = processed.match.delivery
    about = (
        f"delivery {delivery.id} (subscriber {delivery.subscriber_id})"
        if delivery is not None
        else "no delivery of ours"
    )
    line = f"{processed.report.kind.value} report, {about}: {processed.outcome.value}"
    if delivery is None and processed.match.reason:
        line += f" ({processed.match.reason})"
    return line


@main.group()
def admin() -> None:
    """The operator console at /admin (http.admin)."""


@admin.command("hash-password")
def admin_hash_password() -> None:
    """Read a password on standard input; print its hash for http.admin_password_env."""
    from feedsvc.signin import hash_password

    if sys.stdin.isatty():
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True, err=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise click.ClickException("no password on standard input")
    click.echo(hash_password(password))
