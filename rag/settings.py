"""One settings object for every command, the UI and the tests.

Defaults live here; each field can be overridden by an environment variable
``RAG_<FIELD NAME IN CAPITALS>`` and, for the CLI, by flags (see ``rag.cli``).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, get_type_hints

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _default_home() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "newsrag"


@dataclass
class Settings:
    # Where things live
    corpus_dir: Path = PROJECT_ROOT / "corpus"
    index_dir: Path = PROJECT_ROOT / "index"
    home_dir: Path = field(default_factory=_default_home)  # models, downloads, wheel cache

    # Embeddings: a provisioned model key (see rag.models), a sentence-transformers
    # model name, or a local path.
    embedding_model: str = "embeddinggemma-300m"
    embedding_dtype: str = "auto"  # auto | bf16 | fp32
    embedding_batch_size: int = 16
    query_prompt: str | None = None  # None: the model's own "query" prompt
    document_prompt: str | None = None  # None: the model's own "document" prompt

    # Chunking (sizes in the embedding model's tokens)
    chunk_tokens: int = 160
    chunk_overlap_sentences: int = 1

    # Index
    faiss_index: str = "auto"  # auto | flat | hnsw | ivfpq

    # Retrieval
    top_k: int = 5
    search_mode: str = "hybrid"  # dense | lexical | hybrid
    rrf_k: int = 60
    dense_weight: float = 1.0
    lexical_weight: float = 2.0  # scaled per query by its word coverage (see retrieve.py)
    article_weight: float = 2.0  # weight of article-level fusion added to each passage; 0 = off
    candidates: int = 30  # per retriever, before fusion

    # Answering
    context_passages: int = 3  # passages given to the LLM
    passage_tokens: int = 120  # LLM tokens per passage (best sentences and their neighbours)
    history_turns: int = 2  # conversation turns the follow-up rewrite sees
    # Turns also put in the answer prompt. 0: the LLM answers the rewritten, self-contained
    # question alone; history would cost ~5 s of prefill per turn on 2 cores (bench/report.py).
    answer_history_turns: int = 0
    # Refuse without the LLM when the best passage is both semantically far (cosine below
    # refusal_min_dense) and shares few words with the question (coverage below
    # refusal_min_coverage); calibrated on tests/data/dev.jsonl: set as high as possible while
    # refusing no answerable question there (check with `rag eval … --answers`).
    refusal_min_dense: float = 0.35
    refusal_min_coverage: float = 0.5
    # An LLM answer that only repeats the question or a headline, or is not the kind of
    # answer asked for (rag.answer_types), means the model found no answer: it is refused
    # when the best passage's cosine is also below this, and otherwise replaced by the
    # extractive answer. On tests/data/dev.jsonl echoing answers had 0.38-0.42 for
    # unanswerable questions and 0.61-0.77 for answerable ones.
    echo_refusal_min_dense: float = 0.5

    # LLM: a provisioned model key, a path to a GGUF file, or "" for none.
    llm_model: str = "qwen2.5-coder-1.5b-instruct"
    llm_url: str = ""  # OpenAI-compatible server, e.g. http://127.0.0.1:8080/v1
    llm_threads: int = 0  # 0: all cores
    llm_context: int = 4096
    llm_max_tokens: int = 320
    llm_reuse_prefix: bool = True  # keep the evaluated system prompt + examples (KV state)
    llm_timeout: float = 120.0  # seconds a remote LLM server may stay silent mid-answer
    temperature: float = 0.1

    # Limits
    max_question_chars: int = 2000
    max_upload_bytes: int = 2_000_000

    # UI
    host: str = "127.0.0.1"
    port: int = 7860
    language: str = "ru"

    @property
    def models_dir(self) -> Path:
        return self.home_dir / "models"

    @property
    def downloads_dir(self) -> Path:
        return self.home_dir / "downloads"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then ``RAG_*`` environment variables, then explicit overrides."""
        environ = dict(os.environ if environ is None else environ)
        values: dict[str, Any] = {}
        hints = get_type_hints(cls)
        for f in fields(cls):
            key = "RAG_" + f.name.upper()
            if key in environ:
                values[f.name] = _coerce(environ[key], hints[f.name], key)
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)
        for f in fields(settings):  # accept str for paths everywhere
            if hints[f.name] is Path:
                setattr(settings, f.name, Path(getattr(settings, f.name)).expanduser())
        return settings

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


def _coerce(raw: str, kind: Any, key: str) -> Any:
    text = str(kind)
    try:
        if kind is bool:
            return raw.strip().lower() in {"1", "true", "yes", "on"}
        if kind is int:
            return int(raw)
        if kind is float:
            return float(raw)
        if kind is Path:
            return Path(raw).expanduser()
        if "None" in text and raw.strip() == "":
            return None
        return raw
    except ValueError as exc:
        raise ValueError(f"{key}={raw!r} is not a valid {getattr(kind, '__name__', kind)}") from exc
