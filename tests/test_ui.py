"""The Gradio app for real: a server process, headless Chromium, gradio_client sessions."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from rag import prompts
from rag.processes import start_app
from rag.settings import PROJECT_ROOT
from rag.ui.labels import LABELS
from rag.ui.render import format_answer
from rag.ui.store import add_articles, safe_upload_name
from tests.conftest import CORPUS

ARTIFACTS = PROJECT_ROOT / "artifacts"


def _start(tmp: Path, built_engine, **env_extra) -> tuple[subprocess.Popen, str]:
    corpus, index = tmp / "corpus", tmp / "index"
    shutil.copytree(built_engine.settings.corpus_dir, corpus)
    shutil.copytree(built_engine.settings.index_dir, index)
    return start_app(corpus, index, tmp / "server.log", **env_extra)


@pytest.fixture
def server(tmp_path, built_engine):
    servers = []

    def start(**env):
        proc, url = _start(tmp_path, built_engine, **env)
        servers.append(proc)
        return url, tmp_path / "corpus"

    yield start
    for proc in servers:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_upload_names_are_checked(tmp_path):
    from rag.settings import Settings

    settings = Settings.from_env(corpus_dir=tmp_path, max_upload_bytes=1000)
    for bad in ("../evil.txt", "/etc/passwd.txt", ".hidden.txt", "a/b.txt", "x.exe", "..txt"):
        with pytest.raises(ValueError):
            safe_upload_name(bad)
    text = "Заголовок новой статьи о безопасности\n\nТекст.".encode()
    messages = add_articles(
        settings,
        [
            ("ok.txt", text),
            ("../up.txt", text),
            ("big.txt", b"a" * 2000),
            ("bin.txt", bytes(range(256))),
            ("ok.txt", text),
        ],
        overwrite=False,
    )
    assert messages[0].startswith("✅") and all(m.startswith("❌") for m in messages[1:])
    assert "уже есть" in messages[4] and "больше" in messages[2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.txt"]
    assert add_articles(settings, [("ok.txt", text)], overwrite=True)[0].startswith("✅")


def test_answer_text_marks_unsupported_sentences_and_says_when_made_of_article_sentences():
    result = {
        "answer": "Предотвращено 11 терактов [1]. Их было сто [2].",
        "unsupported": ["Их было сто [2]."],
        "fallback": "echo",
        "llm": "qwen",
    }
    text = format_answer(result, LABELS["ru"])
    assert text.startswith(f"_ℹ️ {LABELS['ru']['made_of_sentences']}_")
    assert f"⚠️ Их было сто [2]. _({LABELS['ru']['unsupported']})_" in text
    plain = {"answer": "Да [1].", "fallback": None, "llm": "qwen"}
    assert format_answer(plain, LABELS["en"]) == "Да [1]."
    for lang in LABELS:
        for why in ("echo", "language", "off_type"):  # never which check fired
            shown = format_answer({**plain, "fallback": why}, LABELS[lang])
            assert shown == f"_ℹ️ {LABELS[lang]['made_of_sentences']}_\n\nДа [1]."
        no_model = format_answer({**plain, "llm": None}, LABELS[lang])
        assert LABELS[lang]["made_of_sentences"] in no_model


CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Every text of the page that is the UI's own: text nodes and the attributes people read,
# minus article content (titles, file names, passages, answers made of its sentences),
# which the renderers mark with class "doc" and Gradio shows in the listed places.
UI_TEXTS_JS = """() => {
  const skip = '.doc, #chatbot .bot, #citations .wrap label';
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (!el || el.closest(skip) || el.closest('script, style')) continue;
    if (n.textContent.trim()) out.push(n.textContent.trim());
  }
  for (const el of document.querySelectorAll('[placeholder], [title], [aria-label]')) {
    if (el.closest(skip)) continue;
    for (const a of ['placeholder', 'title', 'aria-label'])
      if (el.getAttribute(a)) out.push(el.getAttribute(a));
  }
  out.push(document.title);
  return out;
}"""


def tab_to(page, selector: str, key: str = "Tab", presses: int = 60) -> None:
    """Press ``key`` until the focused element matches ``selector``: keyboard-only
    navigation must reach it within ``presses`` presses."""
    focused = f"() => document.activeElement.matches({selector!r})"
    for _ in range(presses):
        page.keyboard.press(key)
        if page.evaluate(focused):
            return
    assert page.evaluate(focused), f"{key} never reached {selector}"


def _cyrillic(texts: list[str]) -> list[str]:
    return sorted({t for t in texts if any("\u0400" <= ch <= "\u04ff" for ch in t)})


@pytest.mark.browser
def test_english_ui_shows_no_russian_of_its_own(server):
    """--lang en (RAG_LANGUAGE=en): labels, tabs, statuses, messages and notes in English."""
    from playwright.sync_api import expect, sync_playwright

    en = LABELS["en"]
    url, corpus = server(RAG_LANGUAGE="en", RAG_LLM_MODEL="")  # extractive: fast
    seen: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000}, locale="en-US")
        page.goto(url)
        expect(page.get_by_role("tab", name=en["chat"])).to_be_visible(timeout=60_000)
        seen += page.evaluate(UI_TEXTS_JS)

        page.locator("#send").click()  # an empty question: the message is English
        expect(page.locator("#chatbot")).to_contain_text(en["empty_question"], timeout=60_000)
        page.locator("#question textarea").fill("How many attacks were prevented since 2014?")
        page.locator("#send").click()
        expect(page.locator("#citations label").first).to_be_visible(timeout=120_000)
        page.locator("#citations label").first.click()
        expect(page.locator("#article-view mark")).to_be_visible(timeout=30_000)
        seen += page.evaluate(UI_TEXTS_JS)
        page.screenshot(path="/tmp/ui_en_chat.png", full_page=True)

        page.get_by_role("tab", name=en["search"]).click()
        page.locator("#search-button").click()
        expect(page.locator("#search-results")).to_contain_text(en["empty_query"])
        seen += page.evaluate(UI_TEXTS_JS)
        page.locator("#search-query textarea").fill("terrorist attacks prevented")
        page.locator("#search-button").click()
        expect(page.locator("#search-results .passage").first).to_be_visible(timeout=60_000)
        seen += page.evaluate(UI_TEXTS_JS)

        page.get_by_role("tab", name=en["articles"]).click()
        expect(page.locator("#index-status")).to_contain_text("articles", timeout=30_000)
        existing = sorted(Path(corpus).glob("*.txt"))[0]
        page.locator("#upload input[type=file]").set_input_files(str(existing))
        expect(page.locator("#upload-log")).to_contain_text("exists", timeout=60_000)
        seen += page.evaluate(UI_TEXTS_JS)

        page.get_by_role("tab", name=en["settings"]).click()
        expect(page.locator("#models")).to_be_visible()
        seen += page.evaluate(UI_TEXTS_JS)
        page.screenshot(path="/tmp/ui_en_settings.png", full_page=True)
        browser.close()
    built = next((Path(corpus).parent / "index").rglob("manifest.json"))
    manifest = json.loads(built.read_text("utf-8"))
    titles = {d["title"] for d in manifest["documents"].values()}  # the table's cells
    assert not _cyrillic([t for t in seen if t not in titles]), _cyrillic(seen)
    assert {en["empty_query"], en["col_title"], en["models"] + ":"} <= set(seen)


@pytest.mark.browser
def test_browser_end_to_end(server):
    from playwright.sync_api import expect, sync_playwright

    url, corpus = server()  # default LLM
    ARTIFACTS.mkdir(exist_ok=True)
    new_article = Path(corpus).parent / "Учения_в_Таразе.txt"
    new_article.write_text(
        "Антитеррористические учения прошли в Таразе\n\n"
        "В Таразе оперативный штаб провёл учения «Кобальт-2024» с участием 250 сотрудников.",
        encoding="utf-8",
    )
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000}, locale="ru-RU")
        page.goto(url)
        page.locator("#question textarea").fill("Сколько терактов предотвращено с 2014 года?")
        page.locator("#send").click()
        expect(page.locator("#evidence .passage").first).to_be_visible(timeout=120_000)
        citation = page.locator("#citations label").first
        expect(citation).to_be_visible(timeout=300_000)
        answer = page.locator("#chatbot .message").last
        expect(answer).to_contain_text("11")
        page.screenshot(path=str(ARTIFACTS / "ui_chat.png"), full_page=True)

        citation.click()
        mark = page.locator("#article-view mark")
        expect(mark).to_be_visible(timeout=30_000)
        marked = mark.inner_text()
        article_text = (CORPUS / "000_14c9b7630dbfab34.txt").read_text("utf-8")
        assert " ".join(marked.split()) in " ".join(article_text.split())
        page.wait_for_timeout(500)
        assert mark.evaluate(
            "m => { const r = m.getBoundingClientRect(); return r.top >= 0 && r.bottom <= window.innerHeight; }"
        )
        page.screenshot(path=str(ARTIFACTS / "ui_citation.png"), full_page=True)

        # a follow-up: passages show while the LLM rewrites it, then the answer replaces
        # the status
        chat = page.locator("#chatbot")
        page.locator("#question textarea").fill("А кто об этом рассказал?")
        page.locator("#send").click()
        expect(chat).to_contain_text(LABELS["ru"]["rewriting"], timeout=120_000)
        expect(page.locator("#evidence .passage").first).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "ui_followup_rewriting.png"), full_page=True)
        # done: the answer's citations are listed, or it is the refusal, which has none
        done = page.locator("#citations label").or_(chat.get_by_text(prompts.REFUSAL["ru"]))
        expect(done.first).to_be_visible(timeout=300_000)
        expect(chat).not_to_contain_text(LABELS["ru"]["rewriting"])
        page.screenshot(path=str(ARTIFACTS / "ui_followup.png"), full_page=True)

        page.get_by_role("tab", name="Статьи").click()
        page.locator("#upload input[type=file]").set_input_files(str(new_article))
        expect(page.locator("#upload-log")).to_contain_text("добавлен", timeout=60_000)
        expect(page.locator("#index-status")).to_contain_text("Корпус изменился", timeout=30_000)
        page.locator("#rebuild").click()
        expect(page.locator("#upload-log")).to_contain_text("incremental update", timeout=300_000)
        expect(page.locator("#index-status")).to_contain_text("6 статей")
        page.screenshot(path=str(ARTIFACTS / "ui_articles.png"), full_page=True)

        page.get_by_role("tab", name="Поиск").click()
        page.locator("#search-query textarea").fill("учения Кобальт в Таразе")
        page.locator("#search-button").click()
        first = page.locator("#search-results .passage").first
        expect(first).to_contain_text("Учения_в_Таразе.txt", timeout=60_000)
        page.screenshot(path=str(ARTIFACTS / "ui_search.png"), full_page=True)

        # extractive answers, chosen in this session's settings
        page.get_by_role("tab", name="Настройки").click()
        page.locator("#answers-pref").get_by_text("подходящие предложения из статей").click()
        page.get_by_role("tab", name="Чат").click()
        page.locator("#question textarea").fill(
            "Кто назвал Казахстан образцом в процессе репатриации боевиков?"
        )
        page.locator("#send").click()
        last = page.locator("#chatbot .message").last
        expect(last).to_contain_text("Шрайвер", timeout=60_000)
        expect(page.locator("#citations label").first).to_be_visible(timeout=30_000)
        assert "Модель" not in last.inner_text()  # no LLM, so no note about its answer
        page.get_by_role("tab", name="Настройки").click()
        page.screenshot(path=str(ARTIFACTS / "ui_settings.png"), full_page=True)
        browser.close()


def test_two_sessions_do_not_share_history(server):
    from gradio_client import Client

    url, _ = server(RAG_LLM_MODEL="")  # extractive answers: fast and deterministic
    first = ("Кто назвал Казахстан образцом процесса репатриации?", "004_f51bb655b442c524.txt")
    second = ("Сколько терактов предотвращено с 2014 года?", "000_14c9b7630dbfab34.txt")
    results: dict[str, list] = {}

    def session(name: str, question: str) -> None:
        client = Client(url, verbose=False)
        chat = client.predict(question, [], api_name="/ask")[0]
        follow = client.predict("А что ещё известно об этом?", chat, api_name="/ask")
        results[name] = [chat, follow]

    threads = [
        threading.Thread(target=session, args=("a", first[0])),
        threading.Thread(target=session, args=("b", second[0])),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    (_, follow_a), (_, follow_b) = results["a"], results["b"]
    text_a = str(follow_a[0])
    text_b = str(follow_b[0])
    assert first[0] in text_a and second[0] not in text_a
    assert second[0] in text_b and first[0] not in text_b
    # each follow-up was answered from its own conversation's article
    assert first[1] in str(follow_a[2]) and second[1] in str(follow_b[2])  # citation list


@pytest.mark.parametrize("mode", ["quote", "llm"])
def test_quote_mode_shows_linked_sentences_before_the_llm_is_done(server, mode):
    """``RAG_ANSWER_MODE=quote`` with a real (tiny) llama.cpp model: the chat shows the
    verified article sentences with working citation links (the draft) before the LLM's
    lead is in, and again in the final answer; the LLM mode links only the final one."""
    from gradio_client import Client

    url, _ = server(
        RAG_ANSWER_MODE=mode, RAG_LLM_MODEL="smollm2-135m-instruct", RAG_LLM_CONTEXT="2048"
    )
    job = Client(url, verbose=False).submit(
        "Сколько терактов предотвращено с 2014 года?", [], api_name="/ask"
    )
    job.result(timeout=300)
    answers = [str(out[0][-1]) for out in job.outputs()]
    linked = [a for a in answers if "#cite-" in a]
    if mode == "quote":  # the draft, then the final answer
        assert len(linked) >= 2 and "11" in linked[0]
    else:
        assert len(linked) == 1


def run_load(url: str, figures: Path, users: int, seconds: int) -> dict:
    """bench/load.py against ``url``: its exit code must be 0; returns its JSON report."""
    run = subprocess.run(
        [
            sys.executable,
            str(PROJECT_ROOT / "bench/load.py"),
            *("--url", url, "--users", str(users), "--duration", str(seconds)),
            *("--json", str(figures)),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report = json.loads(figures.read_text(encoding="utf-8"))
    assert report["run"]["errors"] == 0 and not report["server"]["died"]
    return report


def test_short_load_run_has_no_errors(server, tmp_path):
    """bench/load.py for 30 s against a live server: 3 users, searches, answers, follow-ups."""
    url, _ = server(RAG_LLM_MODEL="")
    report = run_load(url, tmp_path / "load.json", users=3, seconds=30)
    assert {"search", "answer"} <= set(report["kinds"]) and report["run"]["requests"] > 10


def test_short_llm_soak_has_no_errors_and_keeps_answering(server, tmp_path):
    """The CI-sized LLM soak (bench/load.py): 4 users ask, follow up and search for 60 s
    against a live server whose answers come from a real (tiny) llama.cpp model, one at a
    time; every request is answered, the server stays up and its memory is sampled."""
    url, _ = server(RAG_LLM_MODEL="smollm2-135m-instruct", RAG_LLM_CONTEXT="2048")
    report = run_load(url, tmp_path / "soak.json", users=4, seconds=60)
    assert report["kinds"]["answer"]["requests"] >= 2
    assert report["memory"]["samples"] >= 10


@pytest.mark.browser
def test_citations_in_the_answer_open_their_span_by_mouse_and_keyboard(server):
    """Each [n] in an answer is a link: its title is the cited sentence; Tab + Enter or a
    click opens the article with that span highlighted and in view."""
    from playwright.sync_api import expect, sync_playwright

    url, _ = server(RAG_LLM_MODEL="")  # extractive answers: fast, with [n] markers
    first = ("Сколько терактов предотвращено с 2014 года?", "000_14c9b7630dbfab34.txt")
    in_view = (
        "m => { const r = m.getBoundingClientRect();"
        " return r.top >= 0 && r.bottom <= window.innerHeight; }"
    )
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900}, locale="ru-RU")
        page.goto(url)
        page.locator("#question textarea").fill(first[0])
        page.locator("#send").click()
        link = page.locator("#chatbot a.cite").first
        expect(link).to_be_visible(timeout=120_000)
        expect(link).to_have_text("[1]")
        tip = link.get_attribute("title")
        assert tip and "терактов" in tip  # title: the cited sentence, on hover/focus

        # keyboard only: Tab from the question box reaches the link, Enter opens it
        page.locator("#question textarea").focus()
        tab_to(page, "a.cite", "Shift+Tab")
        page.screenshot(path="/tmp/ui_cite_focus.png")
        page.keyboard.press("Enter")
        mark = page.locator("#article-view mark")
        expect(mark).to_be_visible(timeout=30_000)
        expect(page.locator("#article")).to_contain_text(first[1])
        assert " ".join(mark.inner_text().split()) in " ".join(tip.split())
        page.wait_for_timeout(500)
        assert mark.evaluate(in_view)
        page.screenshot(path="/tmp/ui_cite_open.png")

        browser.close()
