"""Ingestion: encodings, boilerplate, titles, skipped files."""

from __future__ import annotations

import logging

import pytest

from rag.corpus import CorpusError, parse, read_corpus
from tests.conftest import CORPUS

BOILERPLATE = [
    "Прямой эфир Новости спорта",
    "Популярное в нашем Telegram-канале",
    "Новости партнеров",
    "[GALLERY_BLOCK_1]",
    "Поделиться:",
    "Добавить комментарий",
    "Сообщить об опечатке",
    "Официальный сайт",
    "Ваш адрес email не будет опубликован",
]

EXPECTED_TITLES = {
    "000_14c9b7630dbfab34.txt": "11 терактов предотвращено казахстанскими спецслужбами с прошлого года",
    "001_2058e0d0ac905499.txt": "40 граждан Казахстана остаются в рядах террористических организаций.",
    "002_d69177beeccd8da5.txt": "Казахстан решительно настроен против терроризма во всех его проявлениях",
    "003_1e54f2a5aa88fe05.txt": "В Астане готовились теракты - Джаксыбеков",
    "004_f51bb655b442c524.txt": "Помощник министра обороны США назвал Казахстан образцом процесса репатриации",
}


def test_titles_and_no_boilerplate_in_sections():
    docs, skipped = read_corpus(CORPUS)
    assert not skipped
    assert {d.file: d.title for d in docs} == EXPECTED_TITLES
    for doc in docs:
        body = doc.text
        for phrase in BOILERPLATE:
            assert phrase not in body, (doc.file, phrase)


def test_repeated_paragraph_kept_once():
    doc = parse("001.txt", (CORPUS / "001_2058e0d0ac905499.txt").read_bytes())
    first = "40 граждан Казахстана остаются в рядах террористических организаций."
    assert doc.text.count(first) == 1
    assert [r[2] for r in doc.removed] == ["repeated paragraph"]


def _same(a, b):
    assert (a.original, a.title, a.sections) == (b.original, b.title, b.sections)


@pytest.mark.parametrize("path", sorted(CORPUS.glob("*.txt")), ids=lambda p: p.name[:3])
@pytest.mark.parametrize("encoding", ["cp1251", "koi8-r", "utf-8-sig", "utf-16"])
def test_legacy_encodings_ingest_identically(path, encoding):
    text = path.read_text(encoding="utf-8")
    # Characters a code page lacks (Kazakh letters in KOI8-R, say) become "?" in both versions.
    text = text.encode(encoding, errors="replace").decode(encoding)
    reference = parse(path.name, text.encode("utf-8"))
    converted = parse(path.name, text.encode(encoding))
    _same(reference, converted)
    assert converted.encoding.replace("_", "-").lower().startswith(encoding.split("-sig")[0][:5])


def test_crlf_offsets_point_into_the_original():
    raw = (CORPUS / "003_1e54f2a5aa88fe05.txt").read_text(encoding="utf-8").replace("\n", "\r\n")
    doc = parse("crlf.txt", raw.encode("utf-8"))
    assert doc.original == raw
    for start, end in doc.sections:
        assert doc.original[start:end].strip() == doc.original[start:end]
    assert "[GALLERY_BLOCK_1]" not in doc.text


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "empty"),
        (b"   \n\n\t  ", "empty"),
        (bytes(range(256)) * 8, "binary"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00\xff" * 300, "binary"),
    ],
)
def test_unusable_files_raise_clear_errors(data, reason):
    with pytest.raises(CorpusError, match=reason):
        parse("bad.txt", data)


def test_read_corpus_skips_bad_files_with_a_warning(tmp_path, caplog):
    (tmp_path / "good.txt").write_text("Заголовок новой статьи про безопасность\n\nТекст.", "utf-8")
    (tmp_path / "empty.md").write_bytes(b"")
    (tmp_path / "image.txt").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "notes.odt").write_bytes(b"PK")  # not an article type: ignored silently
    with caplog.at_level(logging.WARNING):
        docs, skipped = read_corpus(tmp_path)
    assert [d.file for d in docs] == ["good.txt"]
    assert {s.file for s in skipped} == {"empty.md", "image.txt"}
    assert "empty.md" in caplog.text and "image.txt" in caplog.text
