"""Messages built from prepared templates: headers, MIME parts, injection, DKIM, speed."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest

from feedsvc.model import Digest, DigestSection
from feedsvc.newsletter.message import MessageTemplate, prepare
from feedsvc.newsletter.render import RenderedDigest, render_confirmation
from feedsvc.newsletter.signing import SIGNED_HEADERS, Signer
from tests._dkim import SELECTOR, DkimKey, make_key, signed_headers, verify
from tests.unit.test_render import (
    CONFIG,
    UNTIL,
    assert_inert,
    golden_digest,
    hostile_entries,
    long_digest,
    render,
)

SENDER = "Bản tin Hà Tĩnh <bantin@example.vn>"
TO = "ban.doc@example.com"
DATE = datetime(2026, 11, 28, 0, 1, 2, tzinfo=UTC)
MESSAGE_ID = "<digest.42.20261128@example.vn>"
TOKEN = "eyJzIjo0MiwicCI6InVuc3Vic2NyaWJlIn0.Z0gUaw.k3y" * 3  # long, as signed tokens are
UNSUBSCRIBE = f"https://bantin.example.vn/unsubscribe/{TOKEN}"
MAILTO = f"mailto:unsubscribe+{TOKEN[:40]}@example.vn?subject=unsubscribe"
PREFERENCES = "https://bantin.example.vn/preferences/abc?lang=vi&from=email"


def template(
    rendered: RenderedDigest | None = None, signer: Signer | None = None
) -> MessageTemplate:
    return prepare(
        rendered or render(golden_digest()),
        sender=SENDER,
        reply_to="Tòa soạn <toasoan@example.vn>",
        list_id="daily",
        domain="example.vn",
        signer=signer,
    )


def build(prepared: MessageTemplate, **overrides: str) -> bytes:
    fields = {
        "to": TO,
        "unsubscribe_url": UNSUBSCRIBE,
        "unsubscribe_mailto": MAILTO,
        "preferences_url": PREFERENCES,
    }
    return prepared.build(message_id=MESSAGE_ID, date=DATE, **(fields | overrides))


def content(part: object) -> str:
    """A part's decoded text; parts are sent in canonical CRLF form (RFC 2046 4.1.1)."""
    assert isinstance(part, EmailMessage)
    text = part.get_content()
    assert isinstance(text, str)
    return text.replace("\r\n", "\n")


def parse(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def test_headers_parse_back() -> None:
    rendered = render(golden_digest())
    message = parse(build(template(rendered)))
    assert message["Subject"] == rendered.subject
    assert message["Subject"] == "Bản tin Hà Tĩnh — 28/11: Trẻ em, Xã hội, Kinh tế (7 tin mới)"
    assert message["From"].addresses[0].display_name == "Bản tin Hà Tĩnh"
    assert message["From"].addresses[0].addr_spec == "bantin@example.vn"
    assert message["Reply-To"].addresses[0].display_name == "Tòa soạn"
    assert message["To"] == TO
    assert message["Message-ID"] == MESSAGE_ID
    assert message["Date"].datetime == DATE
    assert message["MIME-Version"] == "1.0"
    assert message["List-Id"] == "Bản tin Hà Tĩnh <daily.example.vn>"
    assert message["List-Unsubscribe"] == f"<{UNSUBSCRIBE}>, <{MAILTO}>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message.defects == []


def test_list_unsubscribe_is_one_unfolded_line() -> None:
    raw = build(template())
    expected = f"List-Unsubscribe: <{UNSUBSCRIBE}>, <{MAILTO}>\r\n".encode()
    assert expected in raw
    assert len(expected) > 78  # the length Python's default policy would fold at


def test_vietnamese_headers_are_rfc2047_and_ascii() -> None:
    raw = build(template())
    head = raw.split(b"\r\n\r\n", 1)[0]
    head.decode("ascii")  # nothing raw 8-bit in the headers
    assert b"Subject: =?utf-8?" in head
    assert b"From: =?utf-8?" in head


def test_crlf_only_and_short_lines() -> None:
    raw = build(template())
    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert b"\r" not in raw.replace(b"\r\n", b"")
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998


@pytest.mark.parametrize(
    ("to", "header"),
    [
        ("nguyen@bücher.example", "nguyen@xn--bcher-kva.example"),  # may meet a plain server
        ("nguyễn@bücher.example", "nguyễn@bücher.example"),  # travels only with SMTPUTF8
    ],
)
def test_to_is_ascii_where_it_can_be_and_the_body_keeps_the_address_as_written(
    to: str, header: str
) -> None:
    raw = build(template(), to=to)
    assert f"\r\nTo: {header}\r\n".encode() in raw
    message = parse(raw)
    text, page = message.iter_parts()
    assert to in content(text)
    assert to in content(page)


def test_multipart_alternative_text_then_html_with_links_filled_in() -> None:
    rendered = render(golden_digest())
    message = parse(build(template(rendered)))
    assert message.get_content_type() == "multipart/alternative"
    text, page = message.iter_parts()
    assert text.get_content_type() == "text/plain"
    assert page.get_content_type() == "text/html"
    for part in (text, page):
        assert part.get_content_charset() == "utf-8"
        assert part["Content-Transfer-Encoding"] == "base64"
    expected_text = (
        rendered.text.replace("@@UNSUBSCRIBE_URL@@", UNSUBSCRIBE)
        .replace("@@PREFERENCES_URL@@", PREFERENCES)
        .replace("@@RECIPIENT@@", TO)
    )
    assert content(text) == expected_text
    expected_html = (
        rendered.html.replace("@@UNSUBSCRIBE_URL@@", UNSUBSCRIBE)
        .replace("@@PREFERENCES_URL@@", PREFERENCES.replace("&", "&amp;"))
        .replace("@@RECIPIENT@@", TO)
    )
    assert content(page) == expected_html
    assert "@@" not in content(text) + content(page)


def test_each_recipient_gets_their_own_links() -> None:
    prepared = template()
    first = build(prepared)
    second = prepared.build(
        to="nguoi.khac@example.com",
        message_id="<digest.43.20261128@example.vn>",
        date=DATE,
        unsubscribe_url="https://bantin.example.vn/unsubscribe/OTHER",
        unsubscribe_mailto="unsubscribe+other@example.vn",
        preferences_url="https://bantin.example.vn/preferences/OTHER",
    )
    other = parse(second)
    assert other["To"] == "nguoi.khac@example.com"
    assert other["List-Unsubscribe"] == (
        "<https://bantin.example.vn/unsubscribe/OTHER>, <mailto:unsubscribe+other@example.vn>"
    )
    text, page = other.iter_parts()
    assert "https://bantin.example.vn/unsubscribe/OTHER" in content(page)
    assert "nguoi.khac@example.com" in content(text)
    assert TOKEN not in second.decode("ascii")
    assert build(prepared) == first  # the same inputs give the same bytes (a resend)


def test_a_long_digest_decodes_whole() -> None:
    rendered = render(long_digest(60))
    message = parse(build(template(rendered)))
    text, page = message.iter_parts()
    assert content(page).startswith(rendered.html[:5000])
    assert content(page).rstrip().endswith("</html>")
    assert content(text).startswith(rendered.text[:2000])


def test_header_injection_through_feed_text_is_a_title() -> None:
    evil = "Xã hội\r\nBcc: victim@example.com\r\n\r\nbody"
    digest = Digest(
        (DigestSection("xa-hoi", evil, golden_digest().sections[1].entries),), UNTIL, UNTIL
    )
    rendered = render(digest)
    forged = RenderedDigest(
        subject="Tin nóng\r\nBcc: victim@example.com\nX-Evil: 1\u2028Cc: a@b.c",
        html=rendered.html,
        text=rendered.text,
    )
    for variant in (rendered, forged):
        raw = build(template(variant))
        message = parse(raw)
        assert message["Bcc"] is None
        assert message["Cc"] is None
        assert message["X-Evil"] is None
        assert "Bcc: victim@example.com" in message["Subject"]
        assert b"\r\nBcc:" not in raw


def test_hostile_feed_entries_leave_no_header_or_script() -> None:
    entries = tuple(hostile_entries()[:-1])  # as parsed from hostile-markup.rss
    digest = Digest((DigestSection("xa-hoi", "Xã hội", entries),), UNTIL, UNTIL)
    message = parse(build(template(render(digest))))
    assert message["Bcc"] is None
    text, page = message.iter_parts()
    assert_inert(content(page))
    # A plain-text title is text: the text part shows it as the publisher wrote it.
    assert "Tin <script>alert(1)</script> nóng" in content(text)


def test_sender_with_line_breaks_cannot_add_headers() -> None:
    prepared = prepare(
        render(golden_digest()),
        sender="Bản tin\r\nBcc: victim@example.com\r\n <bantin@example.vn>",
        reply_to=None,
        list_id="daily",
        domain="example.vn",
        signer=None,
    )
    message = parse(build(prepared))
    assert message["Bcc"] is None
    assert message["Reply-To"] is None
    assert message["From"].addresses[0].addr_spec == "bantin@example.vn"


@pytest.mark.parametrize(
    "overrides",
    [
        {"to": "victim@example.com\r\nBcc: other@example.com"},
        {"to": "not an address"},
        {"message_id": "<a@b>\r\nBcc: x@y"},
        {"message_id": "no-brackets@example.vn"},
        {"unsubscribe_url": "https://x.example/u\r\nBcc: x@y"},
        {"unsubscribe_url": "https://x.example/u> , <https://evil.example/"},
        {"unsubscribe_url": ""},
        {"unsubscribe_mailto": "mailto:a@b\nBcc: x@y"},
        {"preferences_url": "https://x.example/p\r\n"},
        {"unsubscribe_url": "https://x.example/" + "u" * 1000},
    ],
)
def test_per_message_values_are_checked(overrides: dict[str, str]) -> None:
    prepared = template()
    fields = {
        "to": TO,
        "message_id": MESSAGE_ID,
        "unsubscribe_url": UNSUBSCRIBE,
        "unsubscribe_mailto": MAILTO,
        "preferences_url": PREFERENCES,
    }
    with pytest.raises(ValueError, match=r"."):
        prepared.build(date=DATE, **(fields | overrides))


def test_naive_date_and_missing_link_are_refused() -> None:
    prepared = template()
    with pytest.raises(ValueError, match="aware"):
        prepared.build(
            to=TO,
            message_id=MESSAGE_ID,
            date=DATE.replace(tzinfo=None),
            unsubscribe_url="https://x/u",
        )
    with pytest.raises(ValueError, match="PREFERENCES_URL"):
        prepared.build(to=TO, message_id=MESSAGE_ID, date=DATE, unsubscribe_url="https://x/u")


def test_mailto_is_optional_and_may_be_a_bare_address() -> None:
    prepared = template()
    assert parse(build(prepared, unsubscribe_mailto=""))["List-Unsubscribe"] == f"<{UNSUBSCRIBE}>"
    bare = parse(build(prepared, unsubscribe_mailto="unsubscribe@example.vn"))
    assert bare["List-Unsubscribe"] == f"<{UNSUBSCRIBE}>, <mailto:unsubscribe@example.vn>"


def test_list_id_keeps_a_label_already_on_the_domain() -> None:
    prepared = prepare(
        render(golden_digest()),
        sender="bantin@example.vn",
        reply_to=None,
        list_id="bantin.example.vn",
        domain="example.vn",
        signer=None,
    )
    message = parse(build(prepared))
    assert message["List-Id"] == "<bantin.example.vn>"
    assert message["From"] == "bantin@example.vn"
    bracketed = prepare(
        render(golden_digest()),
        sender=SENDER,
        reply_to=None,
        list_id="<d.x.vn>",
        domain="x.vn",
        signer=None,
    )
    assert parse(build(bracketed))["List-Id"] == "Bản tin Hà Tĩnh <d.x.vn>"
    with pytest.raises(ValueError, match="List-Id"):
        prepare(
            render(golden_digest()),
            sender=SENDER,
            reply_to=None,
            list_id="a b",
            domain="x",
            signer=None,
        )


def test_confirmation_is_a_one_off_email_without_list_headers() -> None:
    prepared = prepare(
        render_confirmation(config=CONFIG, locale="vi", categories=["tre-em"], schedule="daily"),
        sender=SENDER,
        reply_to=None,
        list_id=None,
        domain="example.vn",
        signer=None,
    )
    confirm = "https://bantin.example.vn/confirm/TOKEN"
    message = parse(prepared.build(to=TO, message_id=MESSAGE_ID, date=DATE, confirm_url=confirm))
    assert message["Subject"] == "Xác nhận đăng ký nhận tin từ Bản tin Hà Tĩnh"
    for name in ("List-Id", "List-Unsubscribe", "List-Unsubscribe-Post"):
        assert message[name] is None
    text, page = message.iter_parts()
    assert f"Xác nhận đăng ký: {confirm}" in content(text)
    assert f'href="{confirm}"' in content(page)
    assert f"tại địa chỉ {TO}." in content(text)


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> DkimKey:
    return make_key(tmp_path_factory.mktemp("dkim"))


@pytest.fixture(scope="module")
def signer(key: DkimKey) -> Signer:
    return Signer.from_pem("example.vn", SELECTOR, key.private_key_file.read_bytes())


def test_dkim_signature_verifies_and_covers_list_unsubscribe(key: DkimKey, signer: Signer) -> None:
    signed = build(template(signer=signer))
    assert signed.startswith(b"DKIM-Signature: ")
    assert verify(signed, key, "example.vn")
    assert signed_headers(signed) == [name.lower() for name in SIGNED_HEADERS] * 2
    header = parse(signed)["DKIM-Signature"]
    assert "c=relaxed/relaxed" in header
    assert f"t={int(DATE.timestamp())};" in header  # the message's Date
    field = signed.split(b"\r\nFrom: ")[0]
    assert max(len(line) for line in field.split(b"\r\n")) <= 78
    unsigned = build(template())
    assert signed.endswith(unsigned)  # the same message, one field added at the top
    assert build(template(signer=signer)) == signed  # a resend is the same bytes
    forged = signed.replace(TOKEN.encode(), TOKEN[::-1].encode(), 1)
    assert not verify(forged, key, "example.vn")


def test_every_recipient_s_message_verifies(key: DkimKey, signer: Signer) -> None:
    prepared = template(render(long_digest(44)), signer=signer)
    for n in range(3):
        message = build(prepared, unsubscribe_url=f"{UNSUBSCRIBE}{n}", to=f"doc.gia{n}@example.com")
        assert verify(message, key, "example.vn")


def test_a_body_that_relaxed_canonicalization_changes_still_verifies(
    key: DkimKey, signer: Signer
) -> None:
    header = b"From: bantin@example.vn\r\nTo:  ban.doc@example.com \r\nSubject: x\r\n"
    for body in (b"a  b \r\n\tc\r\n\r\n\r\n", b"no final line break", b""):
        message = signer.sign(header, body, DATE) + header + b"\r\n" + body
        assert verify(message, key, "example.vn"), body


def test_a_key_verifiers_would_refuse_is_refused_up_front(tmp_path: Path) -> None:
    short = make_key(tmp_path, bits=768).private_key_file.read_bytes()
    with pytest.raises(ValueError, match="768-bit key"):
        Signer.from_pem("example.vn", SELECTOR, short)
    with pytest.raises(ValueError, match="not an RSA private key"):
        Signer.from_pem("example.vn", SELECTOR, b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END")
