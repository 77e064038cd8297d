"""Archives of saved web pages, PDFs and Word files: extraction, metadata, indexing."""

from __future__ import annotations

import io
import json

import pytest

from rag.corpus import CorpusError, parse, read_corpus
from rag.dates import find_date
from tests.archive_files import BOILERPLATE, docx_file, news_page, pdf_file, seed
from tests.conftest import CORPUS, run_cli

SEED = CORPUS / "000_14c9b7630dbfab34.txt"


@pytest.fixture(scope="module")
def article() -> tuple[str, list[str]]:
    return seed(SEED)


def test_html_page_keeps_the_article_and_drops_the_site_chrome(article):
    title, paragraphs = article
    page = news_page(title, paragraphs, "2015-03-12T10:00:00+06:00", "Tengrinews")
    doc = parse("news/page.html", page)
    assert doc.format == "html"
    assert (doc.title, doc.date, doc.source, doc.language) == (
        title,
        "2015-03-12",
        "Tengrinews",
        "ru",
    )
    assert doc.author == "Айгуль Серикова"
    flat = " ".join(doc.original.split())
    for paragraph in paragraphs:  # white space is normalised (nbsp, runs of spaces)
        assert " ".join(paragraph.split()) in flat
    leaked = [b for b in BOILERPLATE if b in doc.original]
    assert not leaked, leaked
    assert "<" not in doc.original


def test_pdf_and_docx_give_the_article_text(article):
    title, paragraphs = article
    for name, data in (
        ("a.pdf", pdf_file(title, paragraphs)),
        ("a.docx", docx_file(title, paragraphs)),
    ):
        doc = parse(name, data)
        assert doc.format == name[2:]
        assert doc.title == title
        assert doc.language == "ru"
        assert doc.date == ""  # no dateline, and the file's own creation time is not a story date
        flat = " ".join(doc.original.split())
        for paragraph in paragraphs:
            assert " ".join(paragraph.split()) in flat


def test_unconvertible_files_are_skipped_with_a_reason(tmp_path, article):
    from fpdf import FPDF
    from pypdf import PdfReader, PdfWriter

    title, paragraphs = article
    blank = FPDF()
    blank.add_page()  # a page with no text layer, as a scan without OCR
    (tmp_path / "scan.pdf").write_bytes(bytes(blank.output()))
    writer = PdfWriter()
    for page in PdfReader(io.BytesIO(pdf_file(title, paragraphs))).pages:
        writer.add_page(page)
    writer.encrypt("secret", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    (tmp_path / "locked.pdf").write_bytes(out.getvalue())
    (tmp_path / "broken.docx").write_bytes(b"PK\x03\x04 not really a zip")
    (tmp_path / "menu.html").write_bytes(
        b"<html><body><nav><a href='/'>Home</a></nav></body></html>"
    )
    (tmp_path / "cut.htm").write_bytes(b"<html><body><div class=")
    (tmp_path / "good.docx").write_bytes(docx_file(title, paragraphs))
    docs, skipped = read_corpus(tmp_path)
    assert [d.file for d in docs] == ["good.docx"]
    reasons = {s.file: s.reason for s in skipped}
    assert "text layer" in reasons["scan.pdf"]
    assert "encrypted" in reasons["locked.pdf"]
    assert "corrupt DOCX" in reasons["broken.docx"]
    assert "no article text" in reasons["menu.html"]
    assert "cut.htm" in reasons
    with pytest.raises(CorpusError):
        parse("x.pdf", b"%PDF-1.4 garbage")


def test_dateline_dates_keep_only_a_written_year():
    text = (CORPUS / "004_f51bb655b442c524.txt").read_text("utf-8")
    assert parse("004.txt", text.encode()).date == "--10-01"  # "НУР-СУЛТАН, 01 октября."
    assert find_date("АСТАНА, 3 марта 2015 г. Аким города …") == "2015-03-03"
    assert find_date("11 декабря. Суд признал виновными …") == "--12-11"
    # a date inside the story is an event, not the publication date
    assert find_date("Заголовок статьи о суде\nТекст.\nОтметим, 11 декабря суд признал …") == ""
    assert parse("000.txt", SEED.read_bytes()).date == ""


def test_converted_files_index_and_cite_into_the_extracted_text(make_engine, article):
    title, paragraphs = article
    engine = make_engine([])
    corpus = engine.settings.corpus_dir
    (corpus / "page.html").write_bytes(
        news_page(title, paragraphs, "2015-03-12T10:00:00+06:00", "Tengrinews")
    )
    (corpus / "story.pdf").write_bytes(pdf_file(title, paragraphs))
    (corpus / "story.docx").write_bytes(docx_file(title, paragraphs))
    (corpus / "000.txt").write_bytes(SEED.read_bytes())
    other_title, other = seed(CORPUS / "003_1e54f2a5aa88fe05.txt")
    (corpus / "astana.html").write_bytes(
        news_page(other_title, other, "2016-01-20T09:30:00+06:00", "Kazinform")
    )
    report = engine.build_index()
    # the DOCX holds the page's text exactly: indexed once (tests/test_duplicates.py)
    assert sorted(report.files_embedded) == ["000.txt", "astana.html", "page.html", "story.pdf"]
    assert report.files_copies == ["story.docx"]

    index = engine.index
    docs = index.manifest["documents"]
    assert docs["page.html"]["format"] == "html"
    assert (docs["page.html"]["date"], docs["page.html"]["source"]) == ("2015-03-12", "Tengrinews")
    assert docs["000.txt"]["date"] is None
    extracted = {
        row["file"]: row["text"]
        for row in map(json.loads, (index.path / "extracted.jsonl").read_text("utf-8").splitlines())
    }
    assert set(extracted) == {"astana.html", "page.html", "story.pdf", "story.docx"}
    for chunk in index.chunks:
        if chunk.file in extracted:
            assert extracted[chunk.file][chunk.start : chunk.end] == chunk.text

    out = run_cli(engine, "search", "Швейкин 11 терактов", "--json", "--k", "8")
    results = json.loads(out.stdout)["results"]
    by_file = {r["file"]: r for r in results}
    assert by_file["page.html"]["date"] == "2015-03-12"
    assert by_file["page.html"]["source"] == "Tengrinews"
    # the other formats are copies of that story: the earliest (dated) one is shown
    copies = {d["file"]: d for d in by_file["page.html"]["duplicates"]}
    assert set(copies) == {"000.txt", "story.docx", "story.pdf"}
    assert copies["000.txt"]["date"] is None
    for r in results:
        text = extracted.get(r["file"]) or (corpus / r["file"]).read_text("utf-8")
        assert text[r["start"] : r["end"]] == r["text"]

    # filters: explicit ones are strict (undated articles out), a question's are lenient
    def files(*args: str) -> tuple[list[str], dict | None]:
        out = json.loads(run_cli(engine, "search", *args, "--json", "--mode", "lexical").stdout)
        return sorted({r["file"] for r in out["results"]}), out["filters"]

    assert files("теракты Астана", "--source", "kazinform")[0] == ["astana.html"]
    assert files("теракты Астана", "--since", "2016")[0] == ["astana.html"]
    assert files("теракты Астана", "--until", "2015-12")[0] == ["page.html"]
    found, applied = files("Сколько терактов предотвращено в 2015 году?")
    assert applied["expression"] == "в 2015 году"
    assert (applied["since"], applied["until"]) == ("2015-01-01", "2015-12-31")
    assert "astana.html" not in found and "page.html" in found
    # relative to the newest article (2016-01-20), not to today
    found, applied = files("что писали о терактах в прошлом месяце")
    assert (applied["since"], applied["until"]) == ("2015-12-01", "2015-12-31")
    assert "astana.html" not in found and "page.html" not in found
    assert "000.txt" in found  # undated: the story's earliest undated copy stays
    bad = run_cli(engine, "search", "теракты", "--since", "вчера", check=False)
    assert bad.returncode != 0 and "YYYY" in bad.stderr

    # timeline: dated sentences naming Швейкин, oldest first, each a citation
    out = json.loads(run_cli(engine, "timeline", "Швейкин", "--json").stdout)
    entries = out["entries"]
    assert entries and all("Швейкин" in e["text"] for e in entries)
    assert [e["date"] for e in entries] == sorted(e["date"] for e in entries)
    assert "page.html" in {e["file"] for e in entries}  # the only dated copy
    # undated copies place a sentence only by a year it names itself
    assert all(e["date_from"] == "sentence" for e in entries if e["file"] != "page.html")
    for e in entries:
        assert extracted[e["file"]][e["start"] : e["end"]] == e["text"]
    out = json.loads(run_cli(engine, "timeline", "теракты", "--json").stdout)
    dates = [e["date"] for e in out["entries"]]
    assert dates == sorted(dates) and "2016-01-20" in dates and "2015-03-12" in dates

    # incremental: an unchanged original (same bytes) is reused, a changed one re-read
    (corpus / "story.docx").write_bytes(docx_file(title + " (обновлено)", paragraphs))
    again = engine.build_index()
    assert again.files_embedded == ["story.docx"]
    assert sorted(again.files_reused) == ["000.txt", "astana.html", "page.html", "story.pdf"]


def test_time_expressions_in_questions():
    from rag.timefilter import explicit, from_question

    assert from_question("Что случилось в 2019 году?", None).since == "2019-01-01"
    assert from_question("What happened in 2019?", None).until == "2019-12-31"
    since = from_question("Сколько терактов предотвращено с 2014 года?", None)
    assert (since.since, since.until, since.expression) == ("2014-01-01", None, "с 2014 года")
    assert from_question("теракты до 2016 года", None).until == "2015-12-31"
    assert from_question("что было в прошлом месяце", None) is None  # no dated articles
    last = from_question("что было в прошлом месяце", "2024-03-15")
    assert (last.since, last.until) == ("2024-02-01", "2024-02-29")
    assert from_question("итоги в прошлом году", "2024-03-15").since == "2023-01-01"
    assert from_question("Сколько терактов предотвращено?", "2024-03-15") is None
    lenient = from_question("в 2015 году", None)
    assert lenient.allows(None) and lenient.allows("--10-01") and not lenient.allows("2016-01-01")
    strict = explicit(since="2015-03")
    assert strict.since == "2015-03-01" and not strict.allows(None)
    assert explicit(source="Tengri").allows(None, "Tengrinews")
    assert explicit() is None
