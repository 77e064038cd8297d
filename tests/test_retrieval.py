"""Hybrid retrieval: stemming, fusion, merging, incremental lexical index, rag eval."""

from __future__ import annotations

import io
import json
import os
from contextlib import redirect_stdout

from rag.cli import main as cli_main
from rag.lexical import LexicalIndex, tokenize
from rag.retrieve import Hit, hybrid_scores, merge_neighbours, rrf


def test_russian_stemming_joins_inflected_forms():
    assert len(set(tokenize("теракт терактов теракты терактами"))) == 1
    assert tokenize("террористических актов") == tokenize("террористический акт")
    assert tokenize("Ёлка") == tokenize("елка")
    assert "2014" in tokenize("с 2014 года") and "11" in tokenize("11 терактов")
    assert tokenize("attacks prevented") == tokenize("attack prevent")
    assert tokenize("и в на с") == []  # stop words


def test_bm25_finds_inflected_forms():
    lexical = LexicalIndex.build(
        ["Предотвращены 11 террористических актов.", "Открыт новый мост через Иртыш."]
    )
    scores = lexical.scores("Сколько террористического акта предотвратили?")
    assert scores[0] > 0 and scores[1] == 0
    assert lexical.coverage("How many attacks?") == 0.0


def test_rrf_order_and_weights():
    dense, lexical = [1, 2, 3], [3, 2]
    fused = rrf([(dense, 1.0), (lexical, 1.0)], k=60)
    assert sorted(fused, key=lambda r: -fused[r]) == [3, 2, 1]
    only_dense = rrf([(dense, 1.0), (lexical, 0.0)], k=60)
    assert sorted(only_dense, key=lambda r: -only_dense[r]) == [1, 2, 3]


def test_article_fusion_lets_agreement_on_the_article_count():
    # Rows 0 and 1 are passages of article A, first in one ranking each and sixth in the
    # other; row 2 (article B) is second in both. The real case is dev question fa04.
    article_of = ["A", "A", "B", "C", "C", "C", "C"]
    dense = [0, 2, 3, 4, 5, 1]
    lexical = [1, 2, 6, 5, 4, 0]
    passage_only = hybrid_scores([(dense, 1.0), (lexical, 1.0)], article_of, 60, 0.0)
    assert max(passage_only, key=passage_only.get) == 2
    with_articles = hybrid_scores([(dense, 1.0), (lexical, 1.0)], article_of, 60, 2.0)
    assert max(with_articles, key=with_articles.get) in (0, 1)
    # The article term only adds: passages of one article keep their own order.
    assert (with_articles[0] > with_articles[1]) == (passage_only[0] > passage_only[1])


def test_neighbouring_chunks_merge_into_one_passage():
    original = "Первое предложение. Второе предложение. Третье предложение."
    a = Hit(1, "f.txt", "T", 0, 0, 39, 0.9, original[0:39], chunks=(0,))
    b = Hit(2, "g.txt", "U", 4, 0, 5, 0.8, "Абвгд", chunks=(4,))
    c = Hit(3, "f.txt", "T", 1, 20, 60, 0.7, original[20:60], chunks=(1,))
    merged = merge_neighbours([a, b, c])
    assert [(h.file, h.start, h.end, h.chunks) for h in merged] == [
        ("f.txt", 0, 60, (0, 1)),
        ("g.txt", 0, 5, (4,)),
    ]
    assert merged[0].text == original[0:60] and merged[0].rank == 1 and merged[1].rank == 2


def test_hybrid_search_modes(built_engine):
    q = "Сколько ссылок с террористическим контентом выявлено?"
    for mode in ("dense", "lexical", "hybrid"):
        hits = built_engine.search(q, k=3, mode=mode)
        assert hits[0].file == "001_2058e0d0ac905499.txt", mode
    english = built_engine.search("How many terrorist attacks were prevented since 2014?", k=1)
    assert english[0].file == "000_14c9b7630dbfab34.txt"
    hybrid = built_engine.search(q, k=5)
    assert len({(h.file, h.chunk) for h in hybrid}) == len(hybrid)  # no duplicates


def test_lexical_index_follows_incremental_updates(make_engine):
    engine = make_engine()
    engine.build_index()
    corpus = engine.settings.corpus_dir
    (corpus / "new.txt").write_text(
        "Новость о Зарайбекове\n\nСотрудник Зарайбеков задержал подозреваемых.", "utf-8"
    )
    (corpus / "004_f51bb655b442c524.txt").unlink()
    report = engine.build_index()
    assert report.files_embedded == ["new.txt"]
    index = engine.index
    assert len(index.lexical.tokens) == len(index.chunks) == index.faiss.ntotal
    assert engine.search("Зарайбеков", k=1, mode="lexical")[0].file == "new.txt"
    assert not any(h.file.startswith("004") for h in engine.search("Шрайвер", k=5, mode="lexical"))


def test_rag_eval_on_a_small_file(built_engine, tmp_path, monkeypatch):
    questions = [
        {
            "id": "a",
            "kind": "fact",
            "q": "Сколько терактов предотвращено с 2014 года?",
            "any": ["11"],
            "src": ["000_14c9b7630dbfab34.txt"],
        },
        {
            "id": "b",
            "kind": "crosslingual",
            "q": "Who called Kazakhstan a model for repatriation?",
            "any": ["Шрайвер"],
            "src": ["004_f51bb655b442c524.txt"],
        },
        {
            "id": "c",
            "kind": "fact",
            "q": "Сколько терактов предотвращено с 2014 года?",
            "any": ["11"],
            "src": ["no-such-file.txt"],
        },
        {"id": "d", "kind": "unanswerable", "q": "Кто выиграл чемпионат мира по футболу?"},
    ]
    path = tmp_path / "small.jsonl"
    path.write_text("\n".join(json.dumps(q, ensure_ascii=False) for q in questions), "utf-8")
    monkeypatch.setitem(os.environ, "RAG_CORPUS_DIR", str(built_engine.settings.corpus_dir))
    monkeypatch.setitem(os.environ, "RAG_INDEX_DIR", str(built_engine.settings.index_dir))
    out = io.StringIO()
    with redirect_stdout(out):
        assert cli_main(["eval", str(path), "--json"]) == 0
    summary = json.loads(out.getvalue())["summary"]
    assert summary["overall"]["n"] == 4
    assert summary["fact"] == {
        **summary["fact"],
        "n": 2,
        "recall@1": 0.5,
        "recall@5": 0.5,
        "mrr": 0.5,
    }
    assert summary["crosslingual"]["recall@1"] == 1.0
    assert summary["overall"]["recall@1"] == round(2 / 3, 3)
    assert summary["unanswerable"]["recall@1"] is None
