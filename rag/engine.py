"""The one Python API that the CLI, the UI and the benchmarks share.

Models are loaded lazily and once per process; everything per-user (conversation
history) is passed in by the caller, never stored here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import cached_property

from . import followup
from .index import BuildReport, IndexBuilder, IndexMissingError, corpus_status
from .llm import SlotQueue
from .retrieve import Hit, Retriever
from .settings import Settings
from .store import Snapshot, Store, open_store
from .timefilter import Filters, filters_for


class Engine:
    """``llm`` replaces the configured LLM backend (tests pass a scripted one)."""

    def __init__(self, settings: Settings | None = None, llm=None):
        self.settings = settings or Settings.from_env()
        self._load_lock = threading.Lock()
        self._llm_backend = llm
        # the one limit on answers generated at once, for the UI, the API and the CLI
        self.llm_slots_queue = SlotQueue(self.llm_slots())

    @cached_property
    def embedder(self):
        """In-process model, or the client of ``embedding_url``'s server."""
        from .remote_embeddings import load_embedder

        with self._load_lock:
            return load_embedder(self.settings)

    @cached_property
    def store(self) -> Store:
        """The embedded index files, or PostgreSQL when RAG_DATABASE_URL is set."""
        return open_store(self.settings)

    @cached_property
    def retriever(self) -> Retriever:
        return Retriever(self.settings, self.embedder, self.store)

    @property
    def index(self) -> Snapshot:
        return self.retriever.index

    def search(
        self,
        query: str,
        k: int | None = None,
        mode: str | None = None,
        filters: Filters | None = None,
    ) -> list[Hit]:
        """Ranked passages; ``filters`` keeps only articles of those dates/outlets."""
        return self.retriever.search(query, k=k, mode=mode, filters=filters)

    def timeline(self, query: str) -> list:
        """Dated sentences about ``query``, oldest first (see ``rag.timeline``)."""
        from .timeline import build

        return build(self.retriever.index, query)

    def filters_for(
        self, question: str, explicit: Filters | None = None, read_question: bool = True
    ) -> Filters | None:
        """The filters a search for ``question`` uses (see ``rag.timefilter.filters_for``)."""
        documents = self.retriever.index.manifest.get("documents", {})
        return filters_for(question, documents, explicit, read_question)

    def outlets(self) -> list[str]:
        """The outlets of the indexed articles, sorted, for a source filter to offer."""
        documents = self.retriever.index.manifest.get("documents", {})
        return sorted({d.get("source") or "" for d in documents.values()} - {""}, key=str.casefold)

    @cached_property
    def llm(self):
        """The configured LLM (None when none is configured), its prompt prefix evaluated,
        behind ``llm_slots_queue``."""
        from . import prompts
        from .llm import SharedLLM, load_llm

        with self._load_lock:
            llm = self._llm_backend or load_llm(self.settings)
            if llm is None:
                return None
            llm.warm_prefix(prompts.fixed_messages())
            if self.settings.llm_judge:
                llm.warm_prefix(prompts.judge_fixed_messages())
            return SharedLLM(llm, self.llm_slots_queue)

    def llm_slots(self) -> int:
        """Answers that may run at once: a model server's parallel slots, else one (the
        in-process model generates one answer at a time)."""
        return max(1, self.settings.llm_concurrency) if self.settings.llm_url else 1

    def needs_rewrite(self, question: str, history: list[tuple[str, str]] | None) -> bool:
        """A follow-up that refers back, when the rewrite may see history at all."""
        return followup.needs_rewrite(self.settings.history_turns, question, history)

    @staticmethod
    def contextual_query(question: str, history: list[tuple[str, str]]) -> str:
        """The search query for a follow-up without the LLM (see ``rag.followup``)."""
        return followup.contextual_query(question, history)

    def standalone_question(
        self, question: str, history: list[tuple[str, str]] | None, llm=None
    ) -> str:
        """The question as a self-contained search query (see ``rag.followup``)."""
        return followup.standalone_question(question, history, self.settings.history_turns, llm)

    def pipeline(self, use_llm: bool = True, answer_mode: str | None = None):
        """The answer pipeline made of this engine's parts (models load here, once);
        ``answer_mode`` overrides the setting for this pipeline ("llm" or "quote")."""
        from .answer import AnswerPipeline

        llm = self.llm if use_llm else None
        settings = self.settings
        if answer_mode is not None and answer_mode != settings.answer_mode:
            settings = settings.replace(answer_mode=answer_mode)
        return AnswerPipeline(settings, self.retriever, self.embedder, llm)

    def ask(self, question: str, history=None, use_llm: bool = True, **overrides):
        """Stream events for one question (see ``rag.answer.ask``)."""
        from .answer import ask

        return ask(self, question, history, use_llm, **overrides)

    def build_index(
        self,
        rebuild: bool = False,
        progress: bool = False,
        on_progress: Callable[[float, str], None] | None = None,
    ) -> BuildReport:
        builder = IndexBuilder(self.settings, self.embedder, progress=progress, store=self.store)
        return builder.build(rebuild=rebuild, on_progress=on_progress)

    def corpus_status(self) -> dict:
        """Added, changed and removed files; a damaged index is an error, not "all new"."""
        try:
            index = self.index
        except IndexMissingError:
            index = None
        return corpus_status(self.settings, index)


_DEFAULT: Engine | None = None


def default_engine() -> Engine:
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = Engine()
    return _DEFAULT


def search(query: str, k: int | None = None, mode: str | None = None) -> list[Hit]:
    """``rag.search("вопрос")``: ranked passages from the index in ``index/``."""
    return default_engine().search(query, k=k, mode=mode)


def build_index(rebuild: bool = False) -> BuildReport:
    """``rag.build_index()``: incremental (or full) build of ``index/`` from ``corpus/``."""
    return default_engine().build_index(rebuild=rebuild)
