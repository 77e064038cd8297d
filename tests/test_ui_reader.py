"""The reader's UI: article management, search hits that open their passage, exported
conversations, reader-level notes, and no server paths in the page.

Unit tests call the store and the renderers directly; the browser tests share one
extractive server (no LLM: fast, and the wording does not matter here) and run in file
order, the one that deletes and replaces articles last."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from rag.index import IndexCorruptError, IndexMissingError
from rag.llm import LLMError
from rag.processes import start_app, stop_server
from rag.settings import Settings
from rag.ui.labels import LABELS
from rag.ui.render import (
    answer_view,
    mark_words,
    reader_error,
    render_article,
    without_paths,
)
from rag.ui.store import article_rows, corpus_file, delete_article, replace_article
from tests.conftest import CORPUS
from tests.test_ui import CHROMIUM_ARGS, tab_to

RU = LABELS["ru"]
GOLD = "000_14c9b7630dbfab34.txt"  # the article on the 11 prevented attacks
QUESTION = "Сколько терактов предотвращено с 2014 года?"
SHOTS = Path("/tmp/ui19")  # screenshots to look at


# ---------------------------------------------------------------- store and renderers


def test_query_words_and_their_inflections_are_marked_and_the_rest_escaped():
    text = 'Теракты <script>x</script> предотвращены: 11 терактов, "и" не только'
    marked = mark_words(text, "предотвращено терактов и")
    assert marked.count("<mark>") == 3
    assert "<mark>Теракты</mark>" in marked and "<mark>терактов</mark>" in marked
    assert "<mark>предотвращены</mark>" in marked
    assert "<script>" not in marked and "&lt;script&gt;" in marked
    assert "<mark>и</mark>" not in marked  # a stop word is not marked
    assert mark_words("<b>", "b") == "&lt;<mark>b</mark>&gt;"


def test_errors_reach_the_reader_without_server_paths():
    assert without_paths("no index in /srv/news/index; build it") == "no index in …; build it"
    assert without_paths("model '/root/.cache/newsrag/q.gguf' is missing") == (
        "model '…' is missing"
    )
    assert without_paths("и/или http://127.0.0.1:8080/v1") == "и/или http://127.0.0.1:8080/v1"
    cases = [
        IndexMissingError("no index in /srv/news/index; build it with `rag index`"),
        IndexCorruptError("/srv/news/index/builds/x/faiss.index is damaged"),
        LLMError("model file /root/.cache/newsrag/qwen.gguf is truncated"),
        OSError(28, "No space left on device", "/srv/news/corpus/a.txt"),
        RuntimeError("something in /srv/news"),
    ]
    for lang, labels in LABELS.items():
        for exc in cases:
            shown = reader_error(exc, labels)
            assert shown and "/srv" not in shown and "/root" not in shown, (lang, shown)
    assert reader_error(cases[0], RU) == RU["err_no_index"]
    assert "No space left on device" in reader_error(cases[3], RU)


def test_a_refusal_suggests_next_steps_and_links_the_closest_articles():
    passage = {"n": 1, "file": GOLD, "title": "Т1", "start": 0, "end": 5, "text": "Текст"}
    result = {
        "answer": "В найденных статьях нет ответа.",
        "refused": True,
        "citations": [],
        "passages": [passage, {**passage, "n": 2}, {**passage, "n": 3, "file": "b.txt"}],
    }
    text, targets = answer_view(result, RU, turn=4)
    assert RU["refusal_next"] in text and RU["refusal_closest"] in text
    assert [t["file"] for t in targets] == [GOLD, "b.txt"] and [t["n"] for t in targets] == [1, 2]
    assert 'href="#cite-4-1"' in text and 'href="#cite-4-2"' in text


@pytest.fixture
def corpus_copy(tmp_path) -> Settings:
    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    (tmp_path / "outside.txt").write_text("Секретный файл вне корпуса\n\nТекст.", "utf-8")
    return Settings.from_env(corpus_dir=corpus, index_dir=tmp_path / "index")


def test_only_articles_inside_the_corpus_can_be_opened_deleted_or_replaced(corpus_copy):
    settings = corpus_copy
    corpus = settings.corpus_dir
    (corpus / "link.txt").symlink_to(corpus.parent / "outside.txt")
    (corpus / ".hidden.txt").write_text("скрытый", "utf-8")
    tricks = [
        "../outside.txt",
        str(corpus.parent / "outside.txt"),
        "sub/../../outside.txt",
        "link.txt",
        ".hidden.txt",
        "missing.txt",
        "",
        "..",
        "000_14c9b7630dbfab34.txt/..",
    ]
    for name in tricks:
        with pytest.raises(ValueError, match="нет в папке корпуса"):
            corpus_file(settings, name)
        assert delete_article(settings, name).startswith("❌")
        assert replace_article(settings, name, "x.txt", b"new text here").startswith("❌")
    assert (corpus.parent / "outside.txt").exists() and (corpus / "link.txt").is_symlink()
    assert corpus_file(settings, GOLD) == (corpus / GOLD).resolve()
    assert "удалён" in delete_article(settings, GOLD) and not (corpus / GOLD).exists()


def test_replace_keeps_the_name_and_format_and_refuses_a_bad_version(corpus_copy):
    settings = corpus_copy
    target = settings.corpus_dir / GOLD
    before = target.read_bytes()
    assert "того же формата" in replace_article(settings, GOLD, "new.html", b"<p>x</p>")
    assert replace_article(settings, GOLD, "new.txt", bytes(range(256))).startswith("❌")
    assert target.read_bytes() == before  # a refused version changes nothing
    new = "Новая версия статьи о терактах\n\nС 2014 года предотвращено 12 терактов.".encode()
    assert replace_article(settings, GOLD, "какое-то имя.TXT", new).startswith("✅")
    assert target.read_bytes() == new
    assert sorted(p.name for p in settings.corpus_dir.iterdir() if p.name.startswith(".")) == []


def test_every_article_has_a_status_title_date_and_source(corpus_copy, built_engine):
    settings = corpus_copy
    manifest = built_engine.index.manifest
    rows = {r.file: r for r in article_rows(settings, manifest)}
    assert {r.status for r in rows.values()} == {"indexed"}
    assert rows[GOLD].title == manifest["documents"][GOLD]["title"] and rows[GOLD].chunks > 0
    assert rows[GOLD].date == (manifest["documents"][GOLD]["date"] or "")

    corpus = settings.corpus_dir
    changed = "001_2058e0d0ac905499.txt"
    with (corpus / changed).open("a", encoding="utf-8") as fh:
        fh.write("\nДобавленный абзац о новых задержаниях.\n")
    (corpus / "new.txt").write_text("Новая статья о задержании в Алматы\n\nТекст.", "utf-8")
    (corpus / "broken.txt").write_bytes(b"\x00\x01\x02" * 100)
    (corpus / "003_1e54f2a5aa88fe05.txt").unlink()
    rows = {r.file: r for r in article_rows(settings, manifest)}
    assert rows[changed].status == "changed"
    assert rows["new.txt"].status == "new" and rows["new.txt"].title.startswith("Новая статья")
    assert rows["broken.txt"].status == "skipped" and "binary" in rows["broken.txt"].reason
    assert rows["003_1e54f2a5aa88fe05.txt"].status == "removed"
    assert [r.file for r in rows.values() if r.matches("алматы")] == ["new.txt"]
    assert article_rows(settings, None)[0].status == "new"  # no index yet


def test_the_viewer_opens_a_whole_article_without_a_highlight(corpus_copy):
    shown = render_article(corpus_copy, GOLD, labels=RU, view_id="articles-view")
    assert "id='articles-view'" in shown and "<mark>" not in shown and "11 терактов" in shown
    gone = render_article(corpus_copy, "nothing.txt", 0, 3, labels=RU)
    assert "больше нет в корпусе" in gone


# ---------------------------------------------------------------- in the browser


@pytest.fixture(scope="module")
def reader(tmp_path_factory, built_engine):
    """One extractive server over a private copy of the corpus and index, and Chromium."""
    from playwright.sync_api import sync_playwright

    root = tmp_path_factory.mktemp("reader")
    shutil.copytree(built_engine.settings.corpus_dir, root / "corpus")
    shutil.copytree(built_engine.settings.index_dir, root / "index")
    proc, url = start_app(root / "corpus", root / "index", root / "server.log", RAG_LLM_MODEL="")
    SHOTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield browser, url, root
        browser.close()
    stop_server(proc)


def _page(browser, url):
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1400, "height": 1000}, locale="ru-RU")
    page.goto(url)
    expect(page.get_by_role("tab", name=RU["chat"])).to_be_visible(timeout=60_000)
    return page


IN_VIEW = (
    "m => { const r = m.getBoundingClientRect();"
    " return r.top >= 0 && r.bottom <= window.innerHeight; }"
)


def _cell(table, text: str):
    """The table's cell showing ``text`` (a click on it picks that article)."""
    return table.locator("[data-testid^=cell-]", has_text=text).first


def _ask(page, question: str):
    """Ask in the chat; returns once the answer (with links, or a refusal) is done."""
    from playwright.sync_api import expect

    page.get_by_role("tab", name=RU["chat"]).click()
    answers = page.locator("#chatbot .message")
    before = answers.count()
    page.locator("#question textarea").fill(question)
    page.locator("#send").click()
    expect(page.locator("#export-md")).to_be_enabled(timeout=120_000)
    page.wait_for_function(
        "n => document.querySelectorAll('#chatbot .message').length >= n", arg=before + 2
    )
    expect(page.locator("#question textarea")).to_have_value("", timeout=30_000)
    return page.locator("#chatbot .message").last


@pytest.mark.browser
def test_a_search_hit_opens_its_article_at_the_passage_with_query_words_marked(reader):
    from playwright.sync_api import expect

    browser, url, _ = reader
    page = _page(browser, url)
    page.get_by_role("tab", name=RU["search"]).click()
    page.locator("#search-query textarea").fill("предотвращено терактов")
    page.locator("#search-button").click()
    first = page.locator("#search-results .passage").first
    expect(first).to_be_visible(timeout=60_000)
    marks = [" ".join(m.split()).lower() for m in first.locator("mark").all_inner_texts()]
    assert marks and all(m.startswith(("предотвращ", "теракт")) for m in marks), marks
    assert set(marks) - {"предотвращено", "терактов"}, marks  # inflected forms too
    hit_text = " ".join(first.locator("p").inner_text().split())
    page.screenshot(path=str(SHOTS / "search_marks.png"), full_page=True)

    first.locator("a.hit").click()
    mark = page.locator("#search-article-view mark")
    expect(mark).to_be_visible(timeout=30_000)
    assert " ".join(mark.inner_text().split()) == hit_text
    page.wait_for_timeout(500)
    assert mark.evaluate(IN_VIEW)
    page.screenshot(path=str(SHOTS / "search_open.png"))

    # the keyboard reaches a hit's link too
    page.locator("#search-query textarea").focus()
    tab_to(page, "a.hit", presses=40)
    page.close()


@pytest.mark.browser
def test_export_a_conversation_with_its_citations(reader, tmp_path):
    from playwright.sync_api import expect

    browser, url, _ = reader
    page = _page(browser, url)
    expect(page.locator("#export-md")).to_be_disabled()
    answer = _ask(page, QUESTION)
    link = answer.locator("a.cite").first
    expect(link).to_be_visible()
    expect(answer).to_contain_text(RU["made_of_sentences"])  # extractive: said plainly
    tip = link.get_attribute("title")
    sentence = " ".join(tip.split(": ", 1)[1].split())
    second = _ask(page, "Кто назвал Казахстан образцом в процессе репатриации боевиков?")
    expect(second.locator("a.cite").first).to_be_visible()
    page.screenshot(path=str(SHOTS / "chat_export.png"), full_page=True)

    with page.expect_download() as got:
        page.locator("#export-md").click()
    markdown = Path(got.value.path()).read_text("utf-8")
    assert got.value.suggested_filename.endswith(".md")
    assert f"## 1. {QUESTION}" in markdown and "## 2. Кто назвал" in markdown
    assert f"`{GOLD}`" in markdown and f"> {sentence}" in markdown
    with page.expect_download() as got:
        page.locator("#export-json").click()
    data = json.loads(Path(got.value.path()).read_text("utf-8"))
    first, _second = data["turns"]
    assert first["question"] == QUESTION
    source = next(s for s in first["sources"] if s["n"] == 1)
    assert source["file"] == GOLD and source["sentence"] == sentence
    assert source["start"] < source["end"] and source["title"] in tip
    (tmp_path / "conversation.md").write_text(markdown, "utf-8")

    page.locator("#clear").click()
    expect(page.locator("#export-md")).to_be_disabled(timeout=30_000)
    page.close()


@pytest.mark.browser
def test_a_refusal_offers_next_steps_and_opens_the_closest_article(reader):
    from playwright.sync_api import expect

    browser, url, _ = reader
    page = _page(browser, url)
    answer = _ask(page, "Сколько стоит билет на концерт в Париже?")
    expect(answer).to_contain_text(RU["refusal_next"])
    near = answer.locator("a.cite.near").first  # the closest article, as a link
    expect(near).to_be_visible()
    near.click()
    expect(page.locator("#article-view mark")).to_be_visible(timeout=30_000)
    assert " ".join(page.locator("#article-view mark").inner_text().split()) in " ".join(
        near.get_attribute("title").split()
    )
    page.screenshot(path=str(SHOTS / "refusal.png"), full_page=True)
    page.close()


@pytest.mark.browser
def test_articles_open_download_replace_delete_and_rebuild(reader):
    from playwright.sync_api import expect

    browser, url, root = reader
    corpus = root / "corpus"
    page = _page(browser, url)
    page.get_by_role("tab", name=RU["articles"]).click()
    table = page.locator("#articles-table")
    expect(table).to_contain_text(RU["stat_indexed"], timeout=30_000)
    expect(table).to_contain_text(GOLD)
    page.screenshot(path=str(SHOTS / "articles.png"), full_page=True)

    # the filter narrows the table to the one article on Astana
    page.locator("#articles-filter textarea").fill("Астане")
    expect(table).not_to_contain_text(GOLD, timeout=30_000)
    expect(table).to_contain_text("003_1e54f2a5aa88fe05.txt")
    page.locator("#articles-filter textarea").fill("")
    expect(table).to_contain_text(GOLD, timeout=30_000)

    # open (a click on its row) and download the original
    _cell(table, GOLD).click()
    viewer = page.locator("#articles-view")
    expect(viewer).to_contain_text("11 террористических актов", timeout=30_000)
    download = page.locator("#article-download")
    expect(download).to_be_enabled(timeout=30_000)
    with page.expect_download() as got:
        download.click()
    assert got.value.suggested_filename == GOLD
    assert Path(got.value.path()).read_bytes() == (corpus / GOLD).read_bytes()
    page.screenshot(path=str(SHOTS / "article_open.png"), full_page=True)

    # replace another article with a new version
    replaced = "002_d69177beeccd8da5.txt"
    version = root / "новая версия.txt"
    version.write_text(
        "Антитеррористические учения прошли в Таразе\n\n"
        "В Таразе оперативный штаб провёл учения «Кобальт-2024» с участием 250 сотрудников.",
        encoding="utf-8",
    )
    _cell(table, replaced).click()
    expect(page.locator("#article-download")).to_be_enabled(timeout=30_000)
    with page.expect_file_chooser() as chooser:
        page.locator("#article-replace").click()
    chooser.value.set_files(str(version))
    log = page.locator("#upload-log")
    expect(log).to_contain_text("заменён новой версией", timeout=60_000)
    expect(viewer).to_contain_text("Кобальт-2024", timeout=30_000)
    expect(table).to_contain_text(RU["stat_changed"])
    assert (corpus / replaced).read_bytes() == version.read_bytes()

    # delete the article on the 11 prevented attacks, after confirming
    _cell(table, GOLD).click()
    expect(viewer).to_contain_text("11 террористических актов", timeout=30_000)
    page.locator("#article-delete").click()
    expect(page.locator("#delete-confirm")).to_be_visible()
    expect(page.locator("#delete-question")).to_contain_text(GOLD)
    page.screenshot(path=str(SHOTS / "delete_confirm.png"), full_page=True)
    page.locator("#delete-yes").click()
    expect(log).to_contain_text("удалён из корпуса", timeout=30_000)
    expect(page.locator("#delete-confirm")).to_be_hidden()
    expect(table).to_contain_text(RU["stat_removed"])
    assert not (corpus / GOLD).exists()
    page.screenshot(path=str(SHOTS / "deleted.png"), full_page=True)

    page.locator("#rebuild").click()
    expect(log).to_contain_text("incremental update", timeout=300_000)
    expect(page.locator("#index-status")).to_contain_text("4 статей")
    expect(table).not_to_contain_text(GOLD)
    expect(table).not_to_contain_text(RU["stat_changed"])

    # the deleted article is no longer found or cited; the new version is
    page.get_by_role("tab", name=RU["search"]).click()
    page.locator("#search-query textarea").fill(
        "с 2014 года предотвращены 11 террористических актов"
    )
    page.locator("#search-button").click()
    results = page.locator("#search-results")
    expect(results.locator(".passage").first).to_be_visible(timeout=60_000)
    expect(results).not_to_contain_text(GOLD)
    page.locator("#search-query textarea").fill("учения Кобальт в Таразе")
    page.locator("#search-button").click()
    expect(results.locator(".passage").first).to_contain_text(replaced, timeout=60_000)

    answer = _ask(page, QUESTION)
    links = answer.locator("a.cite")
    titles = [links.nth(i).get_attribute("title") or "" for i in range(links.count())]
    citations = page.locator("#citations").inner_text()
    assert GOLD not in citations and "11 террористических актов" not in " ".join(titles)
    page.screenshot(path=str(SHOTS / "after_delete_chat.png"), full_page=True)
    page.close()


@pytest.mark.browser
def test_no_server_paths_in_the_page(reader, tmp_path):
    """A server with no index yet: the page says what to do and shows none of its folders."""
    from playwright.sync_api import expect

    browser = reader[0]
    corpus, index = tmp_path / "corpus", tmp_path / "index"
    shutil.copytree(CORPUS, corpus)
    proc, url = start_app(corpus, index, tmp_path / "server.log", RAG_LLM_MODEL="")
    settings = Settings.from_env()
    secrets = {str(tmp_path), str(corpus), str(index), str(settings.models_dir), str(Path.home())}
    pages = []
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000}, locale="ru-RU")
        page.goto(url)
        page.locator("#question textarea").fill(QUESTION)
        page.locator("#send").click()
        expect(page.locator("#chatbot")).to_contain_text(RU["err_no_index"], timeout=120_000)
        pages.append(page.content())
        page.get_by_role("tab", name=RU["search"]).click()
        page.locator("#search-query textarea").fill("теракты")
        page.locator("#search-button").click()
        expect(page.locator("#search-results")).to_contain_text(RU["err_no_index"])
        pages.append(page.content())
        page.get_by_role("tab", name=RU["articles"]).click()
        expect(page.locator("#index-status")).to_contain_text(RU["err_no_index"])
        expect(page.locator("#articles-table")).to_contain_text(RU["stat_new"])
        pages.append(page.content())
        page.get_by_role("tab", name=RU["settings"]).click()
        pages.append(page.content())
        page.screenshot(path=str(SHOTS / "no_index.png"), full_page=True)
        page.close()
    finally:
        stop_server(proc)
    for html in pages:
        leaked = [s for s in secrets if s in html]
        assert not leaked, leaked
    assert "no index in" in (tmp_path / "server.log").read_text()  # the console keeps it
