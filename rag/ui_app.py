"""Gradio interface: chat with citations, passage search, article management.

A thin shell over ``rag.engine.Engine``: everything per browser session (the
conversation, the citations of the last answer, the user's settings) lives in
``gr.State``; the engine holds only the models and the index, shared read-only.
The chat event runs one at a time (the LLM has one context); other users wait in
Gradio's queue and see their position. Searches and rebuilds run beside it, and a
rebuild swaps the index in atomically, so questions keep using the old one until then.
"""

from __future__ import annotations

import argparse
import html
import logging
import os
import time
import unicodedata
from pathlib import Path

import gradio as gr

from .answer import QuestionError
from .corpus import ARTICLE_SUFFIXES, CorpusError, load_document, parse
from .engine import Engine
from .index import IndexError_
from .llm import LLMError
from .settings import Settings

log = logging.getLogger(__name__)

LABELS = {
    "ru": {
        "title": "Новости: вопросы и ответы",
        "chat": "Чат",
        "search": "Поиск",
        "articles": "Статьи",
        "settings": "Настройки",
        "question": "Ваш вопрос",
        "placeholder": "Например: Сколько терактов предотвращено с 2014 года?",
        "send": "Спросить",
        "stop": "Стоп",
        "clear": "Очистить разговор",
        "evidence": "Найденные фрагменты",
        "citations": "Цитаты ответа",
        "article": "Статья",
        "searching": "🔎 Ищу в статьях…",
        "thinking": "✍️ Пишу ответ…",
        "rewriting": "↻ Уточняю вопрос по разговору…",
        "unsupported": "не подтверждено источниками",
        "fallback_echo": "Модель лишь повторила вопрос или заголовок; вот подходящие "
        "предложения из статей:",
        "fallback_language": "Модель ответила не на языке вопроса; вот подходящие "
        "предложения из статей:",
        "fallback_off_type": "Ответ модели был не тем, о чём спрашивали (например, дата "
        "вместо суммы); вот подходящие предложения из статей:",
        "query": "Запрос",
        "mode": "Режим поиска",
        "find": "Найти",
        "passages": "Число фрагментов",
        "temperature": "Температура",
        "answers": "Ответы",
        "answers_llm": "пишет языковая модель",
        "answers_extractive": "подходящие предложения из статей (без модели, быстрее)",
        "rebuild": "Обновить индекс",
        "upload": "Добавить статьи (.txt, .md)",
        "overwrite": "Заменять существующие файлы",
        "status": "Состояние",
        "models": "Модели",
        "none": "Ничего не найдено.",
        "pick": "Выберите цитату, чтобы увидеть её в статье.",
    },
    "en": {
        "title": "News: questions and answers",
        "chat": "Chat",
        "search": "Search",
        "articles": "Articles",
        "settings": "Settings",
        "question": "Your question",
        "placeholder": "E.g.: How many attacks were prevented since 2014?",
        "send": "Ask",
        "stop": "Stop",
        "clear": "Clear conversation",
        "evidence": "Retrieved passages",
        "citations": "Citations",
        "article": "Article",
        "searching": "🔎 Searching the articles…",
        "thinking": "✍️ Writing…",
        "rewriting": "↻ Working out the question from the conversation…",
        "unsupported": "not supported by the sources",
        "fallback_echo": "The model only repeated the question or a headline; here are the "
        "best-matching sentences from the articles:",
        "fallback_language": "The model did not answer in the language of the question; here "
        "are the best-matching sentences from the articles (in their language):",
        "fallback_off_type": "The model's answer was not of the kind asked for (a date for an "
        "amount, say); here are the best-matching sentences from the articles:",
        "query": "Query",
        "mode": "Search mode",
        "find": "Find",
        "passages": "Passages",
        "temperature": "Temperature",
        "answers": "Answers",
        "answers_llm": "written by the language model",
        "answers_extractive": "best-matching sentences from the articles (no model, faster)",
        "rebuild": "Update the index",
        "upload": "Add articles (.txt, .md)",
        "overwrite": "Replace existing files",
        "status": "Status",
        "models": "Models",
        "none": "Nothing found.",
        "pick": "Pick a citation to see it in its article.",
    },
}

CSS = """
#article-view { max-height: 520px; overflow-y: auto; white-space: pre-wrap; line-height: 1.5;
  border: 1px solid var(--border-color-primary); padding: 12px; border-radius: 8px; }
#article-view mark { background: #ffe066; padding: 1px 0; }
.passage { border-left: 3px solid #4c6ef5; padding: 4px 10px; margin: 8px 0; }
.passage small { color: var(--body-text-color-subdued); }
.unsupported { background: #ffe3e3; }
"""

SCROLL_JS = """() => { setTimeout(() => {
  const m = document.querySelector('#article-view mark');
  if (m) m.scrollIntoView({block: 'center'}); }, 150); }"""


def render_passages(passages: list[dict], empty: str) -> str:
    if not passages:
        return f"<p>{html.escape(empty)}</p>"
    out = []
    for p in passages:
        n = p.get("n", p.get("rank"))
        out.append(
            f"<div class='passage'><b>[{n}] {html.escape(p['title'])}</b><br>"
            f"<small>{html.escape(p['file'])} · {p['start']}–{p['end']}</small>"
            f"<p>{html.escape(' '.join(p['text'].split()))}</p></div>"
        )
    return "\n".join(out)


def render_article(
    settings: Settings, file: str, start: int, end: int, expected: str | None = None
) -> str:
    """The whole article with [start:end] highlighted; only files inside the corpus.

    ``expected`` is the cited text: if the file no longer has it at those offsets, the
    article was edited after indexing and the reader is told so instead of being shown
    a wrong highlight.
    """
    try:
        doc = load_document(settings.corpus_dir, file)
    except (CorpusError, OSError) as exc:
        return f"<div id='article-view'><p>⚠️ {html.escape(str(exc))}</p></div>"
    text = doc.original
    in_bounds = 0 <= start <= end <= len(text)
    if not in_bounds or (expected is not None and text[start:end] != expected):
        note = (
            f"⚠️ {file} has changed since it was indexed: the cited passage is no longer at "
            "these offsets. Update the index (Articles tab) and ask again."
        )
        return f"<div id='article-view'><p>{html.escape(note)}</p></div>"
    body = (
        html.escape(text[:start])
        + "<mark>"
        + html.escape(text[start:end])
        + "</mark>"
        + html.escape(text[end:])
    )
    head = f"<b>{html.escape(doc.title)}</b><br><small>{html.escape(file)} · {start}–{end}</small>"
    return f"<div>{head}</div><div id='article-view'>{body}</div>"


def format_answer(result: dict, labels: dict) -> str:
    text = result["answer"]
    for sentence in result.get("unsupported", []):
        text = text.replace(sentence, f"⚠️ {sentence} _({labels['unsupported']})_")
    if result.get("fallback"):
        text = f"_ℹ️ {labels['fallback_' + result['fallback']]}_\n\n{text}"
    return text


def citation_choices(citations: list[dict]) -> list[tuple[str, int]]:
    return [(f"[{c['n']}] {c['title']} — {c['file']}", i) for i, c in enumerate(citations)]


def safe_upload_name(name: str) -> str:
    """A plain file name for the corpus, or a ValueError that says why not."""
    base = name.strip()
    if not base or "/" in base or "\\" in base or base.startswith("."):
        raise ValueError(f"«{name}»: имя файла не должно содержать путь или начинаться с точки")
    invisible = any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp") for ch in base)
    if invisible or any(ch in base for ch in '<>:"|?*') or ".." in base:
        raise ValueError(f"«{name!r}»: недопустимые символы в имени файла")
    if len(base.encode("utf-8", "surrogatepass")) > 200:
        raise ValueError(f"«{base[:40]}…»: имя файла длиннее 200 байт")
    if Path(base).suffix.lower() not in ARTICLE_SUFFIXES:
        raise ValueError(f"«{base}»: принимаются только файлы .txt и .md")
    return base


def add_articles(
    settings: Settings, uploads: list[tuple[str, bytes]], overwrite: bool
) -> list[str]:
    """Validate and store uploaded articles; one message per file, accepted or refused."""
    messages = []
    for name, data in uploads:
        try:
            base = safe_upload_name(name)
            if len(data) > settings.max_upload_bytes:
                raise ValueError(f"«{base}»: файл больше {settings.max_upload_bytes // 1000} КБ")
            target = settings.corpus_dir / base
            if target.exists() and not overwrite:
                raise ValueError(
                    f"«{base}»: такой файл уже есть; отметьте «заменять», чтобы перезаписать"
                )
            parse(base, data)  # refuses binary, empty, undecodable
            tmp = target.with_name(f".{base}.upload")
            tmp.write_bytes(data)
            os.replace(tmp, target)
            messages.append(f"✅ «{base}» добавлен")
        except CorpusError as exc:
            messages.append(f"❌ «{os.path.basename(name)}»: {exc}")
        except ValueError as exc:
            messages.append(f"❌ {exc}")
        except OSError as exc:  # the folder is read-only, the disk is full, ...
            messages.append(f"❌ «{os.path.basename(name)}»: не удалось сохранить ({exc})")
    return messages


def articles_table(engine: Engine) -> list[list]:
    try:
        docs = engine.index.manifest["documents"]
    except IndexError_:
        return []
    return [[d["title"], f, d["chunks"], d["indexed_at"]] for f, d in sorted(docs.items())]


def status_text(engine: Engine) -> str:
    try:
        index = engine.index
    except IndexError_ as exc:
        return f"⚠️ {exc}"
    head = (
        f"Индекс {index.build_id}: {len(index.manifest['documents'])} статей, "
        f"{len(index)} фрагментов."
    )
    problem = engine.retriever.problem()
    if problem:
        return f"{head} ⚠️ {problem}. Нажмите «Обновить индекс»."
    st = engine.corpus_status()  # hashes every article: only when the index itself is fine
    if st["up_to_date"]:
        return head + " Корпус не менялся с последней сборки."
    parts = [
        f"{k}: {', '.join(v)}"
        for k, v in (
            ("добавлены", st["added"]),
            ("изменены", st["changed"]),
            ("удалены", st["removed"]),
        )
        if v
    ]
    return head + " ⚠️ Корпус изменился — " + "; ".join(parts) + ". Нажмите «Обновить индекс»."


def build_app(engine: Engine, lang: str = "ru") -> gr.Blocks:
    labels = LABELS.get(lang, LABELS["ru"])
    settings = engine.settings

    with gr.Blocks(title=labels["title"]) as app:
        gr.Markdown(f"## {labels['title']}")
        history_state = gr.State([])  # [(question, answer)] of this browser session
        citations_state = gr.State([])  # citations of the last answer
        prefs_state = gr.State(
            {
                "k": settings.context_passages,
                "mode": settings.search_mode,
                "temperature": settings.temperature,
                "use_llm": True,
            }
        )

        with gr.Tab(labels["chat"], id="chat"), gr.Row():
            with gr.Column(scale=3):
                chatbot = gr.Chatbot(label=labels["chat"], height=460, elem_id="chatbot")
                question = gr.Textbox(
                    label=labels["question"],
                    placeholder=labels["placeholder"],
                    elem_id="question",
                    lines=1,
                    max_lines=4,
                )
                with gr.Row():
                    send = gr.Button(labels["send"], variant="primary", elem_id="send")
                    stop = gr.Button(labels["stop"], elem_id="stop")
                    clear = gr.Button(labels["clear"], elem_id="clear")
                citation_pick = gr.Radio(
                    [], label=labels["citations"], elem_id="citations", type="value"
                )
            with gr.Column(scale=2):
                evidence = gr.HTML(f"<p>{labels['evidence']}</p>", elem_id="evidence")
                article = gr.HTML(f"<p>{labels['pick']}</p>", elem_id="article")

        def respond(message: str, history: list, chat: list, prefs: dict):
            chat = list(chat or [])
            chat.append({"role": "user", "content": message})
            chat.append({"role": "assistant", "content": labels["searching"]})
            yield chat, history, gr.update(), [], gr.update(choices=[], value=None), ""
            try:
                events = engine.ask(
                    message,
                    history,
                    use_llm=prefs["use_llm"],
                    k=prefs["k"],
                    mode=prefs["mode"],
                    temperature=prefs["temperature"],
                )
                streamed = ""
                for event in events:
                    if event["type"] == "evidence":
                        status = "rewriting" if event.get("provisional") else "thinking"
                        chat[-1]["content"] = labels[status]
                        yield (
                            chat,
                            history,
                            render_passages(event["passages"], labels["none"]),
                            [],
                            gr.update(),
                            "",
                        )
                    elif event["type"] == "token":
                        streamed += event["text"]
                        chat[-1]["content"] = streamed
                        yield chat, history, gr.update(), [], gr.update(), ""
                    elif event["type"] == "done":
                        result = event["result"]
                        chat[-1]["content"] = format_answer(result, labels)
                        history = [*history, (message, result["answer"])]
                        cites = result["citations"]
                        yield (
                            chat,
                            history,
                            gr.update(),
                            cites,
                            gr.update(choices=citation_choices(cites), value=None),
                            "",
                        )
            except QuestionError as exc:
                chat[-1]["content"] = f"⚠️ {exc}"
                yield chat, history, gr.update(), [], gr.update(), ""
            except (LLMError, IndexError_, OSError, RuntimeError) as exc:
                log.exception("answer failed")
                chat[-1]["content"] = f"⚠️ Ошибка: {exc}"
                yield chat, history, gr.update(), [], gr.update(), ""

        outputs = [chatbot, history_state, evidence, citations_state, citation_pick, question]
        inputs = [question, history_state, chatbot, prefs_state]
        submit = question.submit(
            respond,
            inputs,
            outputs,
            concurrency_limit=1,
            concurrency_id="llm",
            api_visibility="private",
        )
        click = send.click(
            respond, inputs, outputs, concurrency_limit=1, concurrency_id="llm", api_name="ask"
        )
        stop.click(None, None, None, cancels=[submit, click])
        clear.click(
            lambda: (
                [],
                [],
                f"<p>{labels['evidence']}</p>",
                [],
                gr.update(choices=[], value=None),
                f"<p>{labels['pick']}</p>",
            ),
            None,
            [chatbot, history_state, evidence, citations_state, citation_pick, article],
        )

        def show_citation(index, cites):
            if index is None or not cites or index >= len(cites):
                return gr.update()
            c = cites[index]
            return render_article(settings, c["file"], c["start"], c["end"], c.get("text"))

        citation_pick.change(show_citation, [citation_pick, citations_state], article).then(
            None, None, None, js=SCROLL_JS
        )

        with gr.Tab(labels["search"], id="search"):
            with gr.Row():
                query = gr.Textbox(label=labels["query"], elem_id="search-query", scale=4)
                mode = gr.Radio(
                    ["hybrid", "dense", "lexical"],
                    value=settings.search_mode,
                    label=labels["mode"],
                    scale=2,
                )
            find = gr.Button(labels["find"], elem_id="search-button")
            results = gr.HTML(elem_id="search-results")

            def run_search(q: str, m: str, prefs: dict) -> str:
                q = " ".join((q or "").split())
                if not q:
                    return "<p>Введите запрос.</p>"
                if len(q) > settings.max_question_chars:
                    return f"<p>⚠️ Запрос длиннее {settings.max_question_chars} символов.</p>"
                try:
                    hits = engine.search(q, k=max(5, prefs["k"]), mode=m)
                except IndexError_ as exc:
                    return f"<p>⚠️ {html.escape(str(exc))}</p>"
                return render_passages([h.to_dict() for h in hits], labels["none"])

            find.click(run_search, [query, mode, prefs_state], results, concurrency_limit=4)
            query.submit(run_search, [query, mode, prefs_state], results, concurrency_limit=4)

        with gr.Tab(labels["articles"], id="articles"):
            status = gr.Markdown(elem_id="index-status")
            table = gr.Dataframe(
                headers=["Заголовок", "Файл", "Фрагменты", "Проиндексирован"],
                interactive=False,
                elem_id="articles-table",
            )
            with gr.Row():
                upload = gr.File(
                    label=labels["upload"],
                    file_count="multiple",
                    file_types=list(ARTICLE_SUFFIXES),
                    elem_id="upload",
                )
                with gr.Column():
                    overwrite = gr.Checkbox(label=labels["overwrite"], value=False)
                    rebuild = gr.Button(labels["rebuild"], variant="primary", elem_id="rebuild")
            upload_log = gr.Markdown(elem_id="upload-log")

            def refresh():
                return status_text(engine), articles_table(engine)

            def on_upload(files, replace):
                uploads = []
                for f in files or []:
                    path = Path(getattr(f, "name", f))
                    original = getattr(f, "orig_name", None) or path.name
                    uploads.append((original, path.read_bytes()))
                messages = add_articles(settings, uploads, replace)
                return ("\n\n".join(messages), *refresh())

            def on_rebuild(progress=gr.Progress()):  # noqa: B008 - Gradio injects it
                def report(fraction: float, message: str) -> None:
                    progress(fraction, desc=message)

                try:
                    result = engine.build_index(on_progress=report)
                    text = result.summary()
                except IndexError_ as exc:
                    text = f"⚠️ {exc}"
                except OSError as exc:  # e.g. disk full: the build folder is discarded
                    log.exception("index build failed")
                    text = f"⚠️ Сборка не удалась ({exc}); используется прежний индекс."
                return (text.replace("\n", "  \n"), *refresh())

            upload.upload(on_upload, [upload, overwrite], [upload_log, status, table])
            rebuild.click(
                on_rebuild,
                None,
                [upload_log, status, table],
                concurrency_limit=1,
                concurrency_id="rebuild",
                api_name="rebuild",
            )

        with gr.Tab(labels["settings"], id="settings"):
            k_slider = gr.Slider(
                1, 8, value=settings.context_passages, step=1, label=labels["passages"]
            )
            mode_pref = gr.Radio(
                ["hybrid", "dense", "lexical"], value=settings.search_mode, label=labels["mode"]
            )
            temp_slider = gr.Slider(
                0.0, 1.0, value=settings.temperature, step=0.05, label=labels["temperature"]
            )
            # The extractive answers are right more often on the development set (README,
            # *Answer quality*) but refuse less: let each user choose.
            answers_pref = gr.Radio(
                [(labels["answers_llm"], "llm"), (labels["answers_extractive"], "extractive")],
                value="llm",
                label=labels["answers"],
                elem_id="answers-pref",
            )
            llm_name = settings.llm_url or settings.llm_model or "— (extractive answers)"
            gr.Markdown(
                f"**{labels['models']}:** embeddings `{settings.embedding_model}`, "
                f"LLM `{llm_name}`, index `{settings.index_dir}`, corpus `{settings.corpus_dir}`"
            )

            def set_prefs(k, m, t, answers):
                use_llm = answers == "llm"
                return {"k": int(k), "mode": m, "temperature": float(t), "use_llm": use_llm}

            controls = [k_slider, mode_pref, temp_slider, answers_pref]
            for control in controls:
                control.change(set_prefs, controls, prefs_state)

        app.load(refresh, None, [status, table], api_name="status")
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="newsrag web UI")
    parser.add_argument("--host", default=None, help="default 127.0.0.1 (RAG_HOST)")
    parser.add_argument("--port", type=int, default=None, help="default 7860 (RAG_PORT)")
    parser.add_argument("--lang", choices=["ru", "en"], default=None)
    parser.add_argument("--no-preload", action="store_true", help="load models on first use")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings = Settings.from_env(host=args.host, port=args.port, language=args.lang)
    engine = Engine(settings)
    if not args.no_preload:
        started = time.time()
        try:  # the LLM first: a missing or damaged model file fails in seconds
            engine.llm  # noqa: B018
        except LLMError as exc:
            raise SystemExit(f"error: {exc}") from exc
        engine.embedder  # noqa: B018
        log.info("models loaded in %.1f s", time.time() - started)
    auth = None
    if os.environ.get("RAG_USERNAME") and os.environ.get("RAG_PASSWORD"):
        auth = (os.environ["RAG_USERNAME"], os.environ["RAG_PASSWORD"])
    app = build_app(engine, settings.language)
    app.queue(default_concurrency_limit=4, max_size=64).launch(
        server_name=settings.host,
        server_port=settings.port,
        share=False,
        auth=auth,
        css=CSS,
        show_error=False,
        max_file_size=settings.max_upload_bytes,
    )
