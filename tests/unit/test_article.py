"""Finding the article in a page (ingest.article) and telling a lead from an article
(ingest.fulltext.wants_article): pure, on the pages in tests/data/articles/."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest

from feedsvc.ingest.article import extract
from feedsvc.ingest.fulltext import wants_article
from feedsvc.model import ParsedEntry

ARTICLES = Path(__file__).parents[1] / "data" / "articles"
URL = "https://baohatinh.example.vn/kinh-te/hon-1200-ha-lua-he-thu-bi-ngap-ung.html"
HTML = "text/html; charset=utf-8"
LEAD = "<p>Mưa lớn kéo dài từ đêm 14/9 khiến hơn 1.200 ha lúa hè thu bị ngập úng.</p>"


def page(name: str) -> bytes:
    return (ARTICLES / name).read_bytes()


def article_of(
    body: bytes,
    *,
    selector: str | None = None,
    content_type: str | None = HTML,
    url: str = URL,
    lead: str = LEAD,
) -> str:
    found = extract(body, url=url, content_type=content_type, selector=selector, feed_content=lead)
    assert found.error is None
    assert found.content is not None
    return found.content


def error_of(body: bytes, *, selector: str | None = None, content_type: str | None = HTML) -> str:
    found = extract(body, url=URL, content_type=content_type, selector=selector, feed_content=LEAD)
    assert found.content is None
    assert found.error is not None
    return found.error


def test_selector_takes_the_article_and_nothing_around_it() -> None:
    content = article_of(page("lua-he-thu-ngap-ung.html"), selector="div.article-content")

    assert content.startswith("<p>Theo báo cáo nhanh của Sở Nông nghiệp và Môi trường Hà Tĩnh")
    assert "“Lúa đã chín, nếu ngâm nước thêm hai, ba ngày nữa" in content
    assert "<figcaption>Trạm bơm Thạch Kênh vận hành hết công suất để tiêu úng." in content
    for around in ("Trang chủ", "Quảng cáo", "Bình luận", "Lê Thị Mai", "Đọc nhiều"):
        assert around not in content
    assert "Tin liên quan" not in content
    assert "(Baohatinh.vn)" not in content  # the page's lead sits outside the selector
    for code in ("<script", "<iframe", "googletag", "<textarea", "onclick", "style="):
        assert code not in content


def test_selector_pictures_and_links_are_absolute_and_lazy_pictures_shown() -> None:
    content = article_of(page("lua-he-thu-ngap-ung.html"), selector="div.article-content")

    site = "https://baohatinh.example.vn"
    assert f'src="{site}/uploads/2025/09/15/lua-ngap-cam-xuyen.jpg"' in content
    assert f'src="{site}/uploads/2025/09/15/bom-tieu-ung-thach-ha.jpg"' in content  # data-src
    assert "data:image" not in content
    assert f'href="{site}/kinh-te/nong-nghiep/huong-dan-cham-soc-lua-sau-ngap.html"' in content


def test_trafilatura_finds_the_article_among_menus_ads_and_comments() -> None:
    url = "https://baonghean.example.vn/giao-thong/thong-xe-cau-cua-hoi.html"
    content = article_of(page("cau-cua-hoi-thong-xe.html"), url=url)

    assert "<p>Cầu Cửa Hội có tổng chiều dài gần 5,2 km" in content
    assert "<h3>Bảo đảm an toàn giao thông sau thông xe</h3>" in content
    assert "trong quý IV/2025.</p>" in content
    assert "cau-cua-hoi-toan-canh.jpg" in content
    for around in (
        "Đặng Văn Lực",  # a comment
        "Ý kiến bạn đọc",
        "Tin mới",
        "Giá lúa tăng nhẹ",
        "Cùng chuyên mục",
        "Nhận bản tin mỗi sáng",
        "QUẢNG CÁO",
        "Xu hướng",
    ):
        assert around not in content
    assert 'href="https://baonghean.example.vn/multimedia/photo/' in content


def test_a_selector_that_matches_nothing_keeps_the_lead() -> None:
    error = error_of(page("cau-cua-hoi-thong-xe.html"), selector="div.article-content")

    assert error == "the selector 'div.article-content' matched nothing on the page"


def test_every_outermost_match_in_page_order() -> None:
    body = (
        "<html><body><div class='x'><p>Phần một của bài báo dài.</p>"
        "<div class='x'><p>lồng bên trong</p></div></div><aside>Quảng cáo</aside>"
        "<div class='x'><p>Phần hai của bài báo dài.</p></div></body></html>"
    ).encode()

    content = article_of(body, selector="div.x", lead="")

    assert content.count("lồng bên trong") == 1
    assert content.index("Phần một") < content.index("Phần hai")
    assert "Quảng cáo" not in content


@pytest.mark.parametrize(
    ("content_type", "shown"),
    [("application/pdf", "application/pdf"), ("image/jpeg; q=1", "image/jpeg")],
)
def test_a_page_that_is_not_html_keeps_the_lead(content_type: str, shown: str) -> None:
    error = error_of(page("bao-cao-kinh-te-quy-3.pdf"), content_type=content_type)

    assert error == f"not an HTML page ({shown})"


def test_without_a_content_type_only_what_looks_like_html_is_read() -> None:
    assert "Cầu Cửa Hội" in article_of(page("cau-cua-hoi-thong-xe.html"), content_type=None)
    assert error_of(page("bao-cao-kinh-te-quy-3.pdf"), content_type=None) == (
        "not an HTML page (no Content-Type)"
    )


def windows_1258(text: str) -> bytes:
    """``text`` as Vietnamese legacy pages carry it: letters precomposed, tones apart."""
    tones = {"\u0300", "\u0301", "\u0303", "\u0309", "\u0323"}
    spelled = []
    for char in text:
        marks = unicodedata.normalize("NFD", char)
        spelled.append(unicodedata.normalize("NFC", "".join(m for m in marks if m not in tones)))
        spelled.extend(m for m in marks if m in tones)
    return "".join(spelled).encode("cp1258")


def test_charset_of_the_page_itself_when_the_header_names_none() -> None:
    text = "<p>Người dân Cẩm Xuyên khẩn trương gặt lúa chạy lũ trên những cánh đồng ngập.</p>"
    body = windows_1258(
        "<html><head><meta charset='windows-1258'></head><body>"
        f"<div class='article-content'>{text * 3}</div></body></html>"
    )

    content = article_of(body, selector=".article-content", content_type="text/html", lead="")

    assert "Người dân Cẩm Xuyên khẩn trương gặt lúa" in content  # and in NFC


def test_base_href_decides_what_relative_links_mean() -> None:
    body = (
        "<html><head><base href='https://cdn.baohatinh.example.vn/bai/'></head><body>"
        "<div class='article-content'><p>Nội dung bài viết đủ dài để thay phần tóm tắt"
        " của nguồn tin, kèm <a href='anh/1.jpg'>ảnh</a>.</p></div></body></html>"
    ).encode()

    content = article_of(body, selector=".article-content", lead="")

    assert 'href="https://cdn.baohatinh.example.vn/bai/anh/1.jpg"' in content


def test_an_article_no_longer_than_the_feed_lead_is_not_used() -> None:
    body = b"<html><body><div class='article-content'><p>Ng\xe1\xba\xafn.</p></div></body></html>"

    assert error_of(body, selector=".article-content") == (
        "the page's article (5 characters) is no longer than the feed's"
    )


def test_a_page_with_no_article_text_keeps_the_lead() -> None:
    body = b"<html><body><div class='article-content'><script>x()</script></div></body></html>"

    assert error_of(body, selector=".article-content") == (
        "the article found on the page has no text"
    )


def entry(content: str, summary: str = "", link: str | None = URL) -> ParsedEntry:
    return ParsedEntry(identity=URL, title="Lúa ngập", link=link, summary=summary, content=content)


def test_a_lead_wants_its_article() -> None:
    assert wants_article(entry(""))
    assert wants_article(entry(LEAD, summary="Mưa lớn kéo dài từ đêm 14/9"))
    long_summary = "Tóm tắt dài. " * 150
    assert wants_article(entry(f"<p>{long_summary}</p>", summary=long_summary))  # a long lead


def test_an_article_in_the_feed_or_an_entry_without_link_does_not() -> None:
    article = "<p>" + "Cầu Cửa Hội có tổng chiều dài gần 5,2 km. " * 40 + "</p>"

    assert not wants_article(entry(article, summary="Cầu Cửa Hội có tổng chiều dài gần 5,2 km."))
    assert not wants_article(entry("", link=None))
