"""Chunking with the real embedding tokenizer: offsets, budget, overlap."""

from __future__ import annotations

import itertools

from rag.chunking import chunk_document, whitespace_tokens
from rag.corpus import parse, read_corpus
from tests.conftest import CORPUS
from tests.test_corpus import BOILERPLATE


def test_offsets_reproduce_every_chunk_of_every_article(embedder):
    docs, _ = read_corpus(CORPUS)
    for doc in docs:
        chunks = chunk_document(doc, embedder.count_tokens, max_tokens=160, overlap=1)
        assert chunks, doc.file
        original = (CORPUS / doc.file).read_text(encoding="utf-8")
        for c in chunks:
            assert original[c.start : c.end] == c.text
            assert c.file == doc.file and c.title == doc.title
            assert max(embedder.count_tokens([c.text])) <= 160
            for phrase in BOILERPLATE:
                assert phrase not in c.text
        assert [c.chunk for c in chunks] == list(range(len(chunks)))


def test_chunks_cover_all_kept_text_with_overlap():
    doc = parse("000.txt", (CORPUS / "000_14c9b7630dbfab34.txt").read_bytes())
    chunks = chunk_document(doc, whitespace_tokens, max_tokens=60, overlap=1)
    assert len(chunks) > 3
    covered = set()
    for c in chunks:
        covered.update(range(c.start, c.end))
    for start, end in doc.sections:
        assert all(i in covered for i in range(start, end) if not doc.original[i].isspace())
    # consecutive chunks share a sentence
    assert any(b.start < a.end for a, b in itertools.pairwise(chunks))


def test_a_sentence_longer_than_the_budget_is_cut_at_words():
    text = "Заголовок статьи о длинных предложениях\n\n" + " ".join(["слово"] * 500) + "."
    doc = parse("long.txt", text.encode())
    chunks = chunk_document(doc, whitespace_tokens, max_tokens=50, overlap=1)
    assert all(len(c.text.split()) <= 50 for c in chunks)
    assert all(doc.original[c.start : c.end] == c.text for c in chunks)
