"""Sentence-transformers embeddings with the model's own query/document prompts."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import numpy as np

from .errors import RagError
from .settings import Settings

log = logging.getLogger(__name__)

# Prompts for well-known models that do not store them in their config.
KNOWN_PROMPTS = {
    "e5": ("query: ", "passage: "),
    "bge-m3": ("", ""),
}
GEMMA_DOCUMENT_PROMPT = "title: none | text: "


class ModelMissingError(RagError, RuntimeError):
    """A configured model is not on disk and cannot be fetched."""


class EmbeddingMismatchError(RagError, RuntimeError):
    """The index was built with another embedding model or dimension than the one in use."""


def check_index_matches(manifest: dict, settings: Settings, embedder, vector: np.ndarray) -> None:
    """Refuse to search an index with vectors of another model: the cosines would be noise."""
    built_model = manifest.get("embedding_model")
    built_dim = manifest.get("dimension")
    served = (manifest.get("signature") or {}).get("embedding_served_model")
    now_served = getattr(embedder, "served_model", None)
    problem = None
    if built_model and built_model != settings.embedding_model:
        problem = f"the settings name {settings.embedding_model}"
    elif built_dim and int(built_dim) != len(vector):
        problem = f"{getattr(embedder, 'name', 'the embedder')} gives {len(vector)} dimensions"
    elif served and now_served and served != now_served:
        problem = f"the embedding server now serves {now_served}"
    if problem:
        via = f" served as {served}" if served else ""
        raise EmbeddingMismatchError(
            f"the index was built with the embedding model {built_model}{via} ({built_dim} "
            f"dimensions), but {problem}; rebuild it with `rag index --rebuild` or use the "
            "model it was built with (RAG_EMBEDDING_MODEL, RAG_EMBEDDING_URL)"
        )


def cpu_has_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_embedding_model(settings: Settings) -> str:
    """A provisioned key maps to its folder; anything else is passed to sentence-transformers."""
    from .models import MODELS

    spec = MODELS.get(settings.embedding_model)
    if spec is None:
        return settings.embedding_model
    path = spec.target(settings.models_dir)
    if not spec.is_installed(settings.models_dir):
        raise ModelMissingError(
            f"embedding model {spec.key!r} is not provisioned in {settings.models_dir}; "
            "run `rag models` (or ./start.sh) first"
        )
    return str(path)


def model_prompts(stored: dict, name: str, settings: Settings) -> tuple[str, str]:
    """The (query, document) prompts: the model's stored ones, a known model's, or the
    settings' overrides. Any backend embedding for this index applies the same ones."""
    query = stored.get("query", stored.get("Retrieval-query", ""))
    document = stored.get("document", stored.get("Retrieval-document", ""))
    if not stored:
        for marker, (q, d) in KNOWN_PROMPTS.items():
            if marker in name.lower():
                query, document = q, d
    if settings.query_prompt is not None:
        query = settings.query_prompt
    if settings.document_prompt is not None:
        document = settings.document_prompt
    return query, document


def document_inputs(prompt: str, texts: Sequence[str], titles: Sequence[str] | None) -> list[str]:
    """Passages as the model expects them, with the document prompt (and titles)."""
    if titles is not None and prompt == GEMMA_DOCUMENT_PROMPT:
        # EmbeddingGemma's card: "title: {title | none} | text: {content}"
        return [f"title: {t or 'none'} | text: {x}" for x, t in zip(texts, titles, strict=True)]
    return [prompt + x for x in texts]


def folder_fingerprint(path: Path) -> str:
    """Cheap identity of a model folder: names and sizes of all files, contents of small ones."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = file.relative_to(path).as_posix()
        size = file.stat().st_size
        digest.update(f"{rel}\0{size}\0".encode())
        if size < 1_000_000:
            digest.update(file.read_bytes())
    return digest.hexdigest()


class Embedder:
    """Loads a sentence-transformers model once and embeds queries and passages."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.name = resolve_embedding_model(settings)
        if Path(self.name).exists():  # a local folder must never trigger a hub lookup
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        import torch
        from sentence_transformers import SentenceTransformer

        if settings.embedding_threads:
            # process-wide in torch: the embedder is its only user in this project
            torch.set_num_threads(settings.embedding_threads)
        use_bf16 = settings.embedding_dtype == "bf16" or (
            settings.embedding_dtype == "auto" and cpu_has_bf16()
        )
        try:
            self.model = SentenceTransformer(self.name, device="cpu")
        except OSError as exc:
            raise ModelMissingError(
                f"cannot load embedding model {self.name!r}: {exc}. Offline, only provisioned "
                "models or local folders work; run `rag models` or set RAG_EMBEDDING_MODEL."
            ) from exc
        if use_bf16:
            self.model = self.model.to(torch.bfloat16)
        self.dtype = "bf16" if use_bf16 else "fp32"
        get_dim = getattr(self.model, "get_embedding_dimension", None) or (
            self.model.get_sentence_embedding_dimension
        )
        self.dim = int(get_dim())
        self.query_prompt, self.document_prompt = self._prompts()

    def _prompts(self) -> tuple[str, str]:
        return model_prompts(getattr(self.model, "prompts", {}) or {}, self.name, self.settings)

    @cached_property
    def fingerprint(self) -> str:
        path = Path(self.name)
        ident = folder_fingerprint(path) if path.is_dir() else self.name
        return hashlib.sha256(
            f"{ident}|{self.query_prompt}|{self.document_prompt}|{self.dim}".encode()
        ).hexdigest()[:16]

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        encoded = self.model.tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        return [len(ids) for ids in encoded]

    def _document_inputs(self, texts: Sequence[str], titles: Sequence[str] | None) -> list[str]:
        return document_inputs(self.document_prompt, texts, titles)

    def embed_documents(
        self, texts: Sequence[str], titles: Sequence[str] | None = None, progress: bool = False
    ) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self.model.encode(
            self._document_inputs(texts, titles),
            batch_size=self.settings.embedding_batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        vectors = self.model.encode(
            [self.query_prompt + t for t in texts],
            batch_size=self.settings.embedding_batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def embed_raw(self, texts: Sequence[str]) -> np.ndarray:
        """Texts as given, without a prompt: what an embedding server is asked for."""
        vectors = self.model.encode(
            list(texts),
            batch_size=self.settings.embedding_batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)
