"""The UI over a dated archive: the filter row, the chip of a time filter read from the
question, cited articles' outlet and date, and the Timeline tab.

Three news pages from three outlets and years are indexed once with the real embedding
model; the server runs in this process over that engine, without an LLM (extractive
answers: fast, and the wording does not matter here), driven by real Chromium."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.engine import Engine
from rag.settings import Settings
from rag.timefilter import filters_for
from rag.ui.filters import BadDate, applied_note, describe, parse_filters, question_chip
from rag.ui.labels import LABELS
from rag.ui.render import answer_view, citation_choices, render_timeline
from tests.archive_files import news_page, seed
from tests.conftest import CORPUS
from tests.test_ui import CHROMIUM_ARGS

RU, EN = LABELS["ru"], LABELS["en"]
SHOTS = Path("/tmp/ui15")  # screenshots to look at

# file: (seed article, outlet, publication time)
PAGES = {
    "tengri.html": ("000_14c9b7630dbfab34.txt", "Tengrinews", "2015-03-12T10:00:00+06:00"),
    "kazinform.html": ("003_1e54f2a5aa88fe05.txt", "Kazinform", "2016-01-20T09:30:00+06:00"),
    "zakon.html": ("001_2058e0d0ac905499.txt", "Zakon.kz", "2019-06-05T12:00:00+06:00"),
}
QUESTION = "Сколько терактов предотвращено с 2016 года?"
CHAT_CLIP = {"x": 0, "y": 0, "width": 1400, "height": 880}  # the chat, its chip and filters


# ---------------------------------------------------------------- without a server


def test_a_question_filter_can_be_dropped_and_explicit_ones_stay():
    documents = {"a": {"date": "2016-01-20"}}
    found = filters_for(QUESTION, documents)
    assert (found.since, found.expression) == ("2016-01-01", "с 2016 года")
    assert filters_for(QUESTION, documents, read_question=False) is None
    chosen = parse_filters("", "", "Kazinform", RU)
    kept = filters_for(QUESTION, documents, chosen, read_question=False)
    assert kept == chosen and not kept.expression


def test_the_filter_row_reads_dates_as_the_cli_does_and_names_a_bad_one():
    assert parse_filters("", " ", "", RU) is None
    f = parse_filters("2015", "2015-06", "Tengrinews", RU)
    assert (f.since, f.until, f.source, f.strict) == (
        "2015-01-01",
        "2015-06-30",
        "Tengrinews",
        True,
    )
    for bad in ("вчера", "2015-13", "15.03.2015"):
        with pytest.raises(BadDate, match="ГГГГ-ММ-ДД") as caught:
            parse_filters("", bad, "", RU)
        assert f"«{bad}»" in str(caught.value)
    with pytest.raises(BadDate, match="YYYY-MM-DD"):
        parse_filters("yesterday", "", "", EN)


def test_the_chip_says_the_dates_the_question_added():
    def chip(question: str, lang: str = "ru") -> str:
        found = filters_for(question, {"a": {"date": "2016-01-20"}})
        return question_chip(found.to_dict(), LABELS[lang])[2]

    assert chip("теракты в 2015 году") == "2015 г. ✕"
    assert chip("теракты с 2014 года") == "с 2014 г. ✕"
    assert chip("теракты до 2016 года") == "по 2015 г. ✕"
    assert chip("теракты в прошлом месяце") == "2015-12 ✕"
    assert describe(parse_filters("2015-03-05", "2016", "", RU), RU) == (
        "с 2015-03-05 по 2016-12-31"
    )
    assert chip("attacks in 2019", "en") == "2019 ✕"
    # an explicit filter (the row's) is no chip: it is removed where it was set
    row, note, _ = question_chip(filters_for(QUESTION, {}).to_dict(), RU)
    assert row["visible"] and note == "Время из вопроса «<span class='doc'>с 2016 года</span>»:"
    assert question_chip(parse_filters("2015", "", "", RU).to_dict(), RU)[0]["visible"] is False
    assert question_chip(None, RU)[0]["visible"] is False
    assert describe(parse_filters("2015-03", "", "", RU), RU) == "с 2015-03-01"
    note = applied_note(parse_filters("", "", "Kazinform", RU), RU)
    assert "Фильтр: <span class='doc'>Kazinform</span>" in note


def test_answers_name_each_cited_articles_outlet_and_date():
    cite = {
        "n": 1,
        "file": "tengri.html",
        "title": "11 терактов",
        "start": 0,
        "end": 9,
        "text": "11 терактов предотвращено.",
        "date": "2015-03-12",
        "source": "Tengrinews",
    }
    undated = {**cite, "n": 2, "file": "a.txt", "date": None, "source": ""}
    result = {"answer": "Предотвращено 11 терактов [1][2].", "refused": False, "llm": "x"}
    text, _ = answer_view({**result, "citations": [cite, undated]}, RU, turn=0)
    assert "Tengrinews, 2015-03-12" in text and RU["no_date"] in text
    assert text.count('href="#cite-0-1"') == 2  # in the answer and in its sources
    assert (
        citation_choices([cite])[0][0] == "[1] 11 терактов — Tengrinews, 2015-03-12 — tengri.html"
    )
    assert citation_choices([undated])[0][0] == "[2] 11 терактов — a.txt"


def test_timeline_entries_show_date_outlet_and_a_link_each():
    entries = [
        {"date": "2015-03-12", "file": "t.html", "title": "T", "start": 0, "end": 5,
         "text": "Швейкин <b>сказал</b>", "source": "Tengrinews", "date_from": "article"},
        {"date": "2019", "file": "u.txt", "title": "U", "start": 3, "end": 9,
         "text": "В 2019 году Швейкин", "source": "", "date_from": "sentence"},
    ]  # fmt: skip
    shown = render_timeline(entries, "Швейкин", RU)
    assert "href='#tl-0'" in shown and "href='#tl-1'" in shown
    assert "<mark>Швейкин</mark>" in shown and "&lt;b&gt;" in shown
    assert RU["timeline_year_from_text"] in shown and "Tengrinews" in shown
    assert render_timeline([], "x", EN) == f"<p>{EN['timeline_none']}</p>"


# ---------------------------------------------------------------- over a real index


@pytest.fixture(scope="module")
def archive(tmp_path_factory, embedder) -> Engine:
    """Three dated pages from three outlets, indexed; no LLM."""
    root = tmp_path_factory.mktemp("archive")
    corpus = root / "corpus"
    corpus.mkdir()
    for name, (source, outlet, published) in PAGES.items():
        title, paragraphs = seed(CORPUS / source)
        (corpus / name).write_bytes(news_page(title, paragraphs, published, outlet))
    settings = Settings.from_env(corpus_dir=corpus, index_dir=root / "index", llm_model="")
    engine = Engine(settings)
    engine.__dict__["embedder"] = embedder
    engine.build_index()
    return engine


def _answer(engine: Engine, **options) -> dict:
    events = engine.ask(QUESTION, use_llm=False, **options)
    return next(e["result"] for e in events if e["type"] == "done")


def test_ask_without_the_questions_time_filter(archive):
    assert archive.outlets() == ["Kazinform", "Tengrinews", "Zakon.kz"]
    with_it = _answer(archive)
    assert with_it["filters"]["expression"] == "с 2016 года"
    assert "tengri.html" not in {p["file"] for p in with_it["passages"]}
    without = _answer(archive, question_filters=False)
    assert without["filters"] is None
    assert "tengri.html" in {p["file"] for p in without["passages"]}
    cited = {c["file"]: c for c in without["citations"]}
    assert cited["tengri.html"]["date"] == "2015-03-12"
    assert cited["tengri.html"]["source"] == "Tengrinews"


# ---------------------------------------------------------------- in the browser


@pytest.fixture(scope="module")
def browser_page(archive):
    """The app over ``archive`` in this process, and a Chromium page factory."""
    from playwright.sync_api import expect, sync_playwright

    from tests.test_llm_limit import serve

    server, thread, url = serve(archive)
    SHOTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)

        def new_page():
            page = browser.new_page(viewport={"width": 1400, "height": 1000}, locale="ru-RU")
            page.goto(url)
            expect(page.get_by_role("tab", name=RU["chat"])).to_be_visible(timeout=60_000)
            return page

        yield new_page
        browser.close()
    server.should_exit = True
    thread.join(timeout=20)


def _pick_source(page, prefix: str, outlet: str) -> None:
    page.locator(f"#{prefix}-source input").click()
    page.get_by_role("option", name=outlet, exact=True).click()


def _search(page, query: str):
    from playwright.sync_api import expect

    results = page.locator("#search-results")
    page.locator("#search-query textarea").fill(query)
    page.locator("#search-button").click()
    expect(results.locator(".passage, .bad-date").first).to_be_visible(timeout=60_000)
    page.wait_for_timeout(300)  # the last update settled
    return results


def _files(results) -> set[str]:
    return {t.split(" · ")[0] for t in results.locator(".passage small").all_inner_texts()}


@pytest.mark.browser
def test_the_filter_row_narrows_search_and_a_bad_date_is_named(browser_page):
    from playwright.sync_api import expect

    page = browser_page()
    page.get_by_role("tab", name=RU["search"]).click()
    results = _search(page, "теракты Казахстан")
    assert _files(results) == set(PAGES)

    _pick_source(page, "search", "Kazinform")
    results = _search(page, "теракты Казахстан")
    expect(results).to_contain_text("Фильтр: Kazinform")
    assert _files(results) == {"kazinform.html"}

    _pick_source(page, "search", RU["all_sources"])
    page.locator("#search-since input").fill("2016")
    page.locator("#search-until input").fill("2016-12")
    results = _search(page, "теракты Казахстан")
    assert _files(results) == {"kazinform.html"}
    page.screenshot(path=str(SHOTS / "search_filtered.png"), full_page=True)

    page.locator("#search-until input").fill("2016-13")
    results = _search(page, "теракты Казахстан")
    expect(results.locator(".bad-date")).to_contain_text("«2016-13»")
    assert results.locator(".passage").count() == 0
    expect(page.locator("#search-query textarea")).to_have_value("теракты Казахстан")
    expect(page.locator("#search-until input")).to_have_value("2016-13")
    page.screenshot(path=str(SHOTS / "search_bad_date.png"), full_page=True)
    page.close()


@pytest.mark.browser
def test_a_time_expression_shows_a_chip_that_removes_it(browser_page):
    from playwright.sync_api import expect

    page = browser_page()
    chip = page.locator("#time-chip")
    expect(chip).to_be_hidden()
    page.locator("#question textarea").fill(QUESTION)
    page.locator("#send").click()
    expect(chip).to_be_visible(timeout=120_000)
    expect(chip).to_have_text("с 2016 г. ✕")
    expect(page.locator("#time-chip-note")).to_contain_text("«с 2016 года»")
    evidence = page.locator("#evidence")
    expect(evidence).to_contain_text("2016-01-20")
    assert "2015-03-12" not in evidence.inner_text()  # the 2015 article is filtered out
    sources = page.locator("#chatbot .sources")
    before = sources.count()  # 1, or 0 if the first answer was a refusal
    page.screenshot(path=str(SHOTS / "chat_chip.png"), clip=CHAT_CLIP)

    chip.click()  # the same question again, over all dates
    expect(chip).to_be_hidden(timeout=120_000)
    expect(evidence).to_contain_text("2015-03-12", timeout=120_000)
    expect(sources).to_have_count(before + 1, timeout=60_000)
    expect(sources.last).to_contain_text("Tengrinews, 2015-03-12")
    expect(page.locator("#citations")).to_contain_text("Tengrinews, 2015-03-12")
    page.screenshot(path=str(SHOTS / "chat_unchipped.png"), full_page=True)

    # a bad date in the chat's row: said in the chat, the question kept in its box
    page.locator("#chat-since input").fill("15.03.2015")
    page.locator("#question textarea").fill(QUESTION)
    page.locator("#send").click()
    expect(page.locator("#chatbot")).to_contain_text("«15.03.2015» не подходит", timeout=60_000)
    expect(page.locator("#question textarea")).to_have_value(QUESTION)
    page.close()


@pytest.mark.browser
def test_the_timeline_lists_dated_sentences_that_open_their_article(browser_page):
    from playwright.sync_api import expect

    page = browser_page()
    page.get_by_role("tab", name=RU["timeline"]).click()
    page.locator("#timeline-query input").fill("Швейкин")
    page.locator("#timeline-button").click()
    entries = page.locator("#timeline-entries .tl-entry")
    expect(entries.first).to_be_visible(timeout=60_000)
    dates = [d.strip() for d in page.locator("#timeline-entries .tl-date").all_inner_texts()]
    assert dates == sorted(dates) and len(set(dates)) >= 2, dates
    assert dates[0].startswith("2015") and dates[-1].startswith("2019"), dates
    expect(entries.first).to_contain_text("Tengrinews")
    expect(entries.last).to_contain_text("Zakon.kz")

    last = entries.last.locator("a.tl")
    sentence = " ".join(last.inner_text().split())
    last.click()
    mark = page.locator("#timeline-article-view mark")
    expect(mark).to_be_visible(timeout=30_000)
    assert " ".join(mark.inner_text().split()) == sentence
    expect(page.locator("#timeline-article")).to_contain_text("Zakon.kz")
    page.wait_for_timeout(500)
    page.screenshot(path=str(SHOTS / "timeline.png"))
    page.close()
