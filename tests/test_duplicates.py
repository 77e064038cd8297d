"""Duplicate stories: exact copies indexed once, near-duplicates grouped, one hit per story."""

from __future__ import annotations

import json

import pytest

from rag.retrieve import Hit
from rag.stories import THRESHOLD, Stories, find, jaccard, shingles, signature
from rag.timefilter import explicit
from tests.archive_files import COPY, EDITED, FIRST, SYNDICATED, story_copies
from tests.conftest import CORPUS, run_cli

SEED = CORPUS / "000_14c9b7630dbfab34.txt"  # the story copied
OTHERS = sorted(p for p in CORPUS.iterdir() if p != SEED)
QUERY = "Швейкин 11 терактов предотвращено"


@pytest.fixture(scope="module")
def documents(tmp_path_factory):
    corpus = tmp_path_factory.mktemp("stories")
    story_copies(corpus, SEED, OTHERS)
    from rag.corpus import read_corpus

    docs, skipped = read_corpus(corpus)
    assert not skipped
    return {d.file: d for d in docs}


def test_copies_are_alike_and_distinct_articles_are_not(documents):
    first = documents[FIRST].text
    for name in (SYNDICATED, EDITED):
        assert 0.8 < jaccard(shingles(first), shingles(documents[name].text)) < 1
        assert signature(first).jaccard(signature(documents[name].text)) >= THRESHOLD
    for path in OTHERS:
        assert jaccard(shingles(first), shingles(documents[path.name].text)) < 0.05


def test_exact_copies_and_near_duplicates_form_one_story(documents):
    stories = find(list(documents.values()))
    # earliest first: by date, the undated edited copy last
    assert stories.groups == [[FIRST, COPY, SYNDICATED, EDITED]]
    assert stories.copies == {COPY: FIRST}  # the same text: indexed once, under FIRST
    assert all(stories.story(p.name) == [p.name] for p in OTHERS)
    # a file that held the passages before keeps them (no re-embedding for a new copy)
    assert find(list(documents.values()), holders={COPY}).copies == {FIRST: COPY}
    again = Stories.from_manifest({"stories": stories.to_dict()})
    assert (again.groups, again.copies) == (stories.groups, stories.copies)


def _hit(rank: int, file: str, chunk: int = 0) -> Hit:
    return Hit(rank, file, "t", chunk, 0, 10, 1.0 / rank, "текст", chunks=(chunk,))


def test_collapse_keeps_one_file_per_story_in_the_place_of_its_best_hit():
    stories = Stories([["a.html", "b.html", "c.txt"]], {"b.html": "a.html"})
    documents = {
        "a.html": {"title": "A", "date": "2015-03-12", "source": "Tengrinews"},
        "b.html": {"title": "B", "date": "2015-03-13", "source": "Kazinform"},
        "c.txt": {"title": "C", "date": None, "source": ""},
        "x.txt": {"title": "X", "date": None, "source": ""},
    }
    hits = [_hit(1, "c.txt"), _hit(2, "x.txt"), _hit(3, "a.html", 2), _hit(4, "a.html", 5)]
    out = stories.collapse(hits, documents, None)
    assert [(h.rank, h.file, h.chunk) for h in out] == [
        (1, "a.html", 2),  # the earliest copy, where the story ranked first
        (2, "x.txt", 0),
        (3, "a.html", 5),
    ]
    assert [d["file"] for d in out[0].duplicates] == ["b.html", "c.txt"]
    assert out[0].duplicates[0] == {
        "file": "b.html",
        "title": "B",
        "date": "2015-03-13",
        "source": "Kazinform",
    }
    assert out[1].duplicates == ()
    # an outlet filter reaches that outlet's copy, even one indexed under another file
    kazinform = explicit(source="kazinform")
    out = stories.collapse([_hit(1, "a.html", 2)], documents, kazinform)
    assert [(h.file, h.title, h.source, h.chunk) for h in out] == [("b.html", "B", "Kazinform", 2)]
    assert [d["file"] for d in out[0].duplicates] == ["a.html", "c.txt"]
    # no story found: nothing changes
    assert Stories().collapse(hits, documents, None) == hits


def test_duplicates_are_indexed_once_and_collapsed_in_search(make_engine):
    engine = make_engine([])
    corpus = engine.settings.corpus_dir
    story_copies(corpus, SEED, OTHERS)
    report = engine.build_index()
    assert report.files_copies == [COPY] and report.stories == 1
    assert COPY not in report.files_embedded
    assert "duplicate stories: 1" in report.summary()

    index = engine.index
    docs = index.manifest["documents"]
    assert docs[COPY]["chunks"] == 0 and docs[FIRST]["chunks"] > 0
    assert (docs[COPY]["source"], docs[COPY]["date"]) == ("Kazinform", "2015-03-13")
    assert not [c for c in index.chunks if c.file == COPY]  # indexed once
    assert [c.text for c in index.chunks if c.file == FIRST]
    assert index.manifest["stories"]["groups"] == [[FIRST, COPY, SYNDICATED, EDITED]]
    texts = index.article_texts()
    assert texts[COPY] == texts[FIRST]  # the copy's text, for the timeline
    story = {FIRST, COPY, SYNDICATED, EDITED}

    # the Python API: one file per story, the earliest, listing the other copies
    hits = engine.search(QUERY, k=8)
    assert {h.file for h in hits} & story == {FIRST}
    top = next(h for h in hits if h.file == FIRST)
    assert [(d["file"], d["source"], d["date"]) for d in top.duplicates] == [
        (COPY, "Kazinform", "2015-03-13"),
        (SYNDICATED, "Zakon.kz", "2015-03-14"),
        (EDITED, "", None),
    ]
    assert {p.name for p in OTHERS} & {h.file for h in hits}  # distinct articles stay

    # the evidence and the citations of an answer: the earliest copy
    result = next(e for e in engine.ask(QUERY, use_llm=False) if e["type"] == "done")["result"]
    passages = [p for p in result["passages"] if p["file"] in story]
    assert passages and {p["file"] for p in passages} == {FIRST}
    assert {d["file"] for d in passages[0]["duplicates"]} == story - {FIRST}
    assert result["citations"] and all(
        c["file"] == FIRST for c in result["citations"] if c["file"] in story
    )

    # the CLI: `duplicates` in the JSON; an outlet filter reaches that outlet's copy
    def search(*args: str) -> list[dict]:
        out = run_cli(engine, "search", QUERY, "--json", "--k", "8", *args)
        return json.loads(out.stdout)["results"]

    results = search()
    assert {r["file"] for r in results} & story == {FIRST}
    first = next(r for r in results if r["file"] == FIRST)
    assert [d["file"] for d in first["duplicates"]] == [COPY, SYNDICATED, EDITED]
    extracted = {
        row["file"]: row["text"]
        for row in map(json.loads, (index.path / "extracted.jsonl").read_text("utf-8").splitlines())
    }
    for outlet, copy in (("Zakon", SYNDICATED), ("kazinform", COPY)):
        results = search("--source", outlet)
        assert results and {r["file"] for r in results} == {copy}, outlet
        assert all(r["source"].lower().startswith(outlet.lower()) for r in results)
        for r in results:  # the passage as it stands in that outlet's file
            assert extracted[copy][r["start"] : r["end"]] == r["text"]
        assert FIRST in {d["file"] for d in results[0]["duplicates"]}
    text = run_cli(engine, "search", QUERY, "--k", "3").stdout
    assert "also: Kazinform (2015-03-13); Zakon.kz (2015-03-14); edited.txt" in text
    indexed = json.loads(run_cli(engine, "index", "--json", "--quiet").stdout)
    assert indexed["unchanged"] and indexed["files_copies"] == [COPY] and indexed["stories"] == 1
    # a date filter: the earliest copy the range admits
    results = search("--since", "2015-03-13")
    assert {r["file"] for r in results} & story == {COPY}

    # the earliest copy deleted: its exact copy takes over the passages, re-embedded
    (corpus / FIRST).unlink()
    report = engine.build_index()
    assert report.files_removed == [FIRST] and report.files_embedded == [COPY]
    assert report.files_copies == [] and report.stories == 1
    index = engine.index
    assert index.manifest["documents"][COPY]["chunks"] > 0
    assert index.manifest["stories"]["groups"] == [[COPY, SYNDICATED, EDITED]]
    hits = engine.search(QUERY, k=8)
    assert {h.file for h in hits} & story == {COPY}

    # the edited copy changed into another article: it leaves the story
    (corpus / EDITED).write_text(
        "Совсем другая новость\n\nВ Алматы открыли приют для бездомных котов. " * 3, "utf-8"
    )
    report = engine.build_index()
    assert report.files_embedded == [EDITED]
    assert engine.index.manifest["stories"]["groups"] == [[COPY, SYNDICATED]]
    assert engine.search("приют для котов", k=1)[0].duplicates == ()

    # an index built before stories were found (or by another threshold) finds them anew
    manifest_path = engine.index.path / "manifest.json"
    manifest = json.loads(manifest_path.read_text("utf-8"))
    del manifest["stories"]
    manifest_path.write_text(json.dumps(manifest, ensure_ascii=False), "utf-8")
    engine.retriever._index = None  # as a new process would load it
    assert not engine.search(QUERY, k=8)[0].duplicates
    report = engine.build_index()
    assert not report.unchanged and report.files_embedded == [] and report.stories == 1
    assert engine.index.manifest["stories"]["groups"] == [[COPY, SYNDICATED]]


def test_the_ui_names_the_other_copies_under_a_hit():
    from rag.ui.labels import labels_for
    from rag.ui.render import render_hits, render_passages

    stories = Stories([["a.html", "b.html", "c.txt"]], {"b.html": "a.html"})
    documents = {
        "a.html": {"title": "A", "date": "2015-03-12", "source": "Tengrinews"},
        "b.html": {"title": "B", "date": "2015-03-13", "source": "Kazinform"},
        "c.txt": {"title": "C", "date": None, "source": ""},
    }
    hit = stories.collapse([_hit(1, "a.html")], documents, None)[0].to_dict()
    page = render_hits([hit], "текст")
    assert "также: Kazinform, 2015-03-13; c.txt</small>" in page
    assert "also: Kazinform, 2015-03-13; c.txt" in render_hits([hit], "текст", labels_for("en"))
    assert "также: Kazinform" in render_passages([hit], "—")
    assert "also: Kazinform" in render_passages([hit], labels_for("en")["none"])
    assert "copies" not in render_passages([_hit(1, "x.txt").to_dict()], "—")
