"""Hostile and property-based inputs: ingestion, chunking, questions, answers, uploads.

Every stage must either do its job or refuse with its own documented error
(``CorpusError``, ``QuestionError``, a ❌ upload message), and whatever it keeps must
point into the user's file by exact character offsets.
"""

from __future__ import annotations

import codecs
import gzip
import hashlib
import itertools
import random
import re
import time
import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from rag.answer import QuestionError, answer, clean_question
from rag.chunking import chunk_document, whitespace_tokens
from rag.corpus import CorpusError, Document, load_document, parse
from rag.settings import Settings

# ---------------------------------------------------------------- strategies

BOMS = {
    "utf-8-sig": codecs.BOM_UTF8,
    "utf-16-le": codecs.BOM_UTF16_LE,
    "utf-16-be": codecs.BOM_UTF16_BE,
    "utf-32-le": codecs.BOM_UTF32_LE,
    "utf-32-be": codecs.BOM_UTF32_BE,
}
WORDS = (  # noqa: SIM905 - easier to read as one line of words
    "Казахстан теракт предотвращено спецслужбы КНБ года. 2014 г. т.е. «Кобальт-2024» Ж. Б. "
    "Джаксыбеков! ... ? … Қазақстан әғқңөұүһі terrorism Mr. U.S.A. 11 250 # ## — - «» ( ) ; : "
    "Поделиться: [GALLERY_BLOCK_1] Комментарии http://example.kz/a?b=1 e-mail@x.kz"
).split()
SEPARATORS = ["\n", "\r\n", "\r", "\n\n", "\r\n\r\n", " \n ", "\x0b", "\x0c", "\x1c", "\x85"]
SEPARATORS += ["\u2028", "\u2029"]
ODD = ["\x00", "\ufeff", "\u200b", "\u202e", "\xa0", "\t", "\ufffd", "\x1b[31m", "\ud800", "\udcff"]

line = st.lists(st.sampled_from(WORDS + ODD) | st.text(max_size=8), min_size=1, max_size=25).map(
    " ".join
)
long_line = st.builds(lambda w, n: " ".join([w] * n), st.sampled_from(WORDS), st.integers(40, 400))
spaceless_line = st.integers(161, 5000).map(lambda n: "ж" * n)


@st.composite
def article_text(draw) -> str:
    """Text shaped like an article: lines of words, odd characters and mixed line ends."""
    lines = draw(st.lists(line | long_line | spaceless_line | st.text(), min_size=1, max_size=12))
    seps = draw(st.lists(st.sampled_from(SEPARATORS), min_size=len(lines), max_size=len(lines)))
    return "".join(a + b for a, b in zip(lines, seps, strict=True))


ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32"]
ENCODINGS += ["cp1251", "koi8-r"]


@st.composite
def encoded_text(draw) -> bytes:
    text = draw(article_text() | st.text(max_size=300))
    encoding = draw(st.sampled_from(ENCODINGS))
    # lone surrogates pass through as (invalid) code units in the UTF forms
    data = text.encode(encoding, errors="surrogatepass" if "utf" in encoding else "ignore")
    bom = draw(st.sampled_from([b"", b"", *BOMS.values()]))  # sometimes the wrong one
    return bom + data


any_bytes = st.binary(max_size=2000) | encoded_text()


def check_document(doc: Document, data: bytes) -> None:
    """What a parsed document promises: offsets into the decoded file, nothing invented."""
    original = doc.original
    # "decoded text, exactly as in the file (BOM removed)"
    name = doc.encoding.lower().replace("_", "-")
    raw = data[len(BOMS[name]) :] if name in BOMS and data.startswith(BOMS[name]) else data
    assert original.encode(name.removesuffix("-sig")) == raw
    assert doc.sha256 == hashlib.sha256(data).hexdigest()
    assert doc.sections, "a document always has some article text"
    previous_end = 0
    for start, end in doc.sections:  # ordered, disjoint, non-empty, trimmed spans
        assert 0 <= previous_end <= start < end <= len(original)
        assert original[start:end] == original[start:end].strip()
        previous_end = end
    kept = {i for start, end in doc.sections for i in range(start, end)}
    for start, end, reason in doc.removed:
        assert 0 <= start < end <= len(original) and reason
        assert not kept.intersection(range(start, end)), "a removed line inside a section"
    # The title comes from the text (a long headline is cut and gets an ellipsis).
    assert doc.title and doc.title.removesuffix("…") in original
    assert doc.text  # the display text can be built


# ---------------------------------------------------------------- 1. ingestion


@settings(max_examples=300, deadline=None)
@given(any_bytes)
@example(b"")
@example(codecs.BOM_UTF8)
@example(codecs.BOM_UTF16_LE + b"x")  # odd length after a UTF-16 BOM
@example(codecs.BOM_UTF32_LE + b"\xff\xff\xff\xff")  # not a code point
@example("Заголовок статьи о безопасности страны\n\n".encode() + b"\xed\xa0\x80")  # CESU-8
@example(("Заголовок статьи о безопасности\x00\n" * 50).encode())
@example(("Заголовок статьи о безопасности страны " * 3000).encode())  # one huge line
def test_parse_returns_a_document_or_corpus_error(data):
    try:
        doc = parse("hostile.txt", data)
    except CorpusError as exc:
        assert str(exc)  # the message says why
        return
    check_document(doc, data)


@pytest.mark.parametrize(
    "data",
    [
        "Заголовок статьи о безопасности страны\n\nВ Астане прошли учения.".encode("utf-16"),
        "Заголовок статьи о безопасности страны\r\nВ Астане прошли учения.".encode("utf-32"),
        "Заголовок статьи о безопасности страны\rВ Астане прошли учения.".encode("utf-8-sig"),
        "Заголовок статьи о безопасности страны\u2028В Астане прошли учения.".encode(),
        "Заголовок статьи о безопасности страны\x85В Астане прошли учения.".encode(),
        "Заголовок статьи о безопасности страны\n\nВ Астане прошли учения.".encode("cp1251"),
    ],
    ids=["utf16-bom", "utf32-crlf", "utf8-bom-cr", "u2028", "nel", "cp1251"],
)
def test_every_line_ending_and_bom_gives_the_same_article(data):
    doc = parse("a.txt", data)
    check_document(doc, data)
    assert doc.title == "Заголовок статьи о безопасности страны"
    assert "В Астане прошли учения." in doc.text


@pytest.mark.parametrize(
    "data",
    [
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + random.Random(0).randbytes(4096),
        gzip.compress("Заголовок статьи о безопасности страны\n\nТекст.".encode() * 50),
        b"%PDF-1.7\n" + random.Random(1).randbytes(4096),
        b"PK\x03\x04" + random.Random(2).randbytes(4096),
        random.Random(3).randbytes(1_000_000),
        b"\x00" * 10_000,
    ],
    ids=["png", "gzip", "pdf", "zip", "random-1mb", "nuls"],
)
def test_binary_files_are_refused_quickly(data):
    started = time.perf_counter()
    with pytest.raises(CorpusError):
        parse("binary.txt", data)
    assert time.perf_counter() - started < 10


# ---------------------------------------------------------------- 2. chunking


def words_with_separators(texts):
    """A counter that, like a real tokenizer, charges for punctuation and line breaks."""
    return [len(re.findall(r"\w+|[^\w\s]|\n", t)) for t in texts]


def chars_tokens(texts):
    """A counter under which one long word can be over the budget by itself."""
    return [len(t) // 3 + 1 for t in texts]


text_documents = (article_text() | st.text(max_size=400)).map(
    lambda t: t.encode("utf-8", "replace")
)


@settings(max_examples=200, deadline=None)
@given(
    text_documents,
    st.sampled_from([whitespace_tokens, words_with_separators, chars_tokens]),
    st.integers(1, 60),
    st.integers(0, 3),
)
@example(
    "Казахстан Казахстан Казахстан Казахстан \n\n Казахстан".encode(), chars_tokens, 1, 0
)  # a blank line inside a section once became an empty chunk
@example("Казахстан ? Ж. Казахстан".encode(), chars_tokens, 2, 1)  # once a chunk of overlap only
# the overlap fitted by joined size but not by the sum of sentence sizes: overlap only again
@example(
    ("Ж" * 170 + "\nКазахстан Казахстан Казахстан Казахстан\n000000\n" + "0" * 129).encode(),
    chars_tokens,
    46,
    1,
)
def test_chunks_are_exact_ordered_nonempty_spans(data, count, max_tokens, overlap):
    try:
        doc = parse("doc.txt", data)
    except CorpusError:
        return
    chunks = chunk_document(doc, count, max_tokens=max_tokens, overlap=overlap)
    assert chunks, "a document with article text has at least one chunk"
    original = doc.original
    for n, c in enumerate(chunks):
        assert (c.chunk, c.file, c.title) == (n, doc.file, doc.title)
        assert 0 <= c.start < c.end <= len(original)
        assert original[c.start : c.end] == c.text
        assert c.text.strip() == c.text, "a chunk starts and ends on text"
        assert any(s <= c.start and c.end <= e for s, e in doc.sections), "inside one section"
        # within budget, unless one word alone is longer than the budget
        assert count([c.text])[0] <= max_tokens or len(c.text.split()) == 1
    for a, b in itertools.pairwise(chunks):
        assert a.start < b.start and a.end < b.end, "each chunk moves forward and adds text"
    covered = {i for c in chunks for i in range(c.start, c.end)}
    for s, e in doc.sections:
        assert all(i in covered for i in range(s, e) if not original[i].isspace())


# ---------------------------------------------------------------- 3. questions

# What clean_question promises to remove: C0/C1 controls, zero-width and bidi controls, BOM.
FORBIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\ufeff]")


def assert_clean(text: str, max_chars: int) -> None:
    assert isinstance(text, str) and 0 < len(text) <= max_chars
    assert not FORBIDDEN.search(text)
    assert all(unicodedata.category(ch) != "Cc" for ch in text)
    assert text == text.strip() and "  " not in text
    assert unicodedata.is_normalized("NFC", text)
    assert any(ch.isalnum() for ch in text)


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("\x00Сколько терактов предотвращено?\x00", "Сколько терактов предотвращено?"),
        ("\x1b[31mСколько терактов?\x1b[0m", "[31mСколько терактов? [0m"),
        ("\u202eСколько терактов?\u202c", "Сколько терактов?"),
        ("\ufeff\u200bСколько\u200d терактов?\u200f", "Сколько терактов?"),
        ("Сколько\r\n\t терактов?\x85\u2028", "Сколько терактов?"),
        ("Е\u0308сть ли угроза?", "Ёсть ли угроза?"),  # combining diaeresis: NFC
    ],
)
def test_control_characters_are_removed_from_questions(raw, expected):
    cleaned = clean_question(raw, 2000)
    assert cleaned == expected
    assert_clean(cleaned, 2000)


def test_a_huge_question_is_refused_quickly_with_the_limit_named():
    huge = ("Сколько терактов предотвращено? " * 3125)[:-1] + "!"
    assert len(huge) == 100_000
    started = time.perf_counter()
    with pytest.raises(QuestionError) as info:
        clean_question(huge, 2000)
    assert time.perf_counter() - started < 2
    assert "2000" in str(info.value) and "100000" in str(info.value).replace(" ", "")
    # the limit is on the cleaned text: padding with controls and spaces does not count
    padded = "\x00" * 50_000 + "Сколько терактов?" + " " * 50_000
    assert clean_question(padded, 2000) == "Сколько терактов?"


@pytest.mark.parametrize(
    "raw",
    ["", "   ", "?!...,;:", "🔥🔥🔥", "❓❗️", "\u200b\u200b\ufeff", "\x00\x1b\x7f", "— « » …"],
)
def test_questions_without_letters_or_digits_are_refused(raw):
    with pytest.raises(QuestionError, match="Пустой вопрос"):
        clean_question(raw, 2000)


@pytest.mark.parametrize("char", ["\u2066", "\u2067", "\u2068", "\u2069", "\u061c", "\u2060"])
def test_invisible_format_characters_are_removed_from_questions(char):
    cleaned = clean_question(f"{char}Сколько терактов?{char}", 2000)
    assert unicodedata.category(char) == "Cf"
    assert char not in cleaned


def test_mixed_scripts_are_accepted_unchanged():
    question = "Қазақстанда әғқңөұүһі теракт terrorism 2014 жылы? Сколько?"
    assert clean_question(question, 2000) == question
    assert_clean(clean_question(f"\x00{question}\u202e", 2000), 2000)


@settings(max_examples=500, deadline=None)
@given(
    st.lists(st.characters(codec="utf-8") | st.sampled_from([*ODD, "\u202a", "\x85"])).map("".join)
    | st.text(),
    st.integers(1, 300),
)
def test_clean_question_returns_clean_text_or_question_error(raw, max_chars):
    try:
        cleaned = clean_question(raw, max_chars)
    except QuestionError as exc:
        assert str(exc)
        return
    assert_clean(cleaned, max_chars)
    assert clean_question(cleaned, max_chars) == cleaned  # cleaning is idempotent


# ---------------------------------------------------------------- 4. answers, no LLM

ASKED = "Сколько терактов предотвращено с 2014 года?"
HOSTILE_QUESTIONS = [
    f"\x00\u202e\u200b{ASKED}\ufeff\x00",
    f"\x1b[31m{ASKED}\x1b[0m",
    "Қазақстан әғқңөұүһі: how many теракт prevented since 2014 году?",
    "<script>alert(1)</script> теракт'; DROP TABLE--",
    '" OR 1=1 -- репатриация ${jndi:ldap://x} {{7*7}} %s%n ../../etc/passwd',
    "теракт " * 60,  # long and repetitive
]


def test_hostile_questions_get_valid_citations_without_llm(built_engine):
    corpus = built_engine.settings.corpus_dir
    originals: dict[str, str] = {}
    results = []
    for question in HOSTILE_QUESTIONS:
        result = answer(built_engine, question, use_llm=False)
        results.append(result)
        assert {"answer", "refused", "citations"} <= result.keys()
        assert isinstance(result["answer"], str) and result["answer"]
        assert isinstance(result["refused"], bool)
        assert not FORBIDDEN.search(result["question"])
        if result["refused"]:
            assert result["citations"] == []
        for span in result["citations"] + result["passages"]:
            if span["file"] not in originals:
                originals[span["file"]] = load_document(corpus, span["file"]).original
            text = originals[span["file"]]
            assert 0 <= span["start"] <= span["end"] <= len(text), span
            assert text[span["start"] : span["end"]] == span["text"], span
    # Invisible characters around a real question change nothing.
    clean = answer(built_engine, ASKED, use_llm=False)
    assert not clean["refused"] and clean["citations"]
    assert results[0]["answer"] == clean["answer"]
    assert results[0]["citations"] == clean["citations"]
    assert any(c["file"] == "000_14c9b7630dbfab34.txt" for c in clean["citations"])


# ---------------------------------------------------------------- 5. uploads

ARTICLE = "Заголовок новой статьи о безопасности\n\nВ Таразе прошли учения.".encode()


def _tree(root: Path) -> set[Path]:
    return set(root.rglob("*"))


@pytest.fixture
def upload(tmp_path):
    """add_articles into tmp_path/box/corpus, checking nothing escapes or is left behind."""
    from rag.ui.store import add_articles

    corpus = tmp_path / "box" / "corpus"
    corpus.mkdir(parents=True)
    settings = Settings.from_env(corpus_dir=corpus, max_upload_bytes=100_000)
    watched = [tmp_path.parent, tmp_path, corpus.parent]

    def run(name: str, data: bytes, overwrite: bool = False) -> tuple[str, list[Path]]:
        before_tree = _tree(tmp_path)
        before_near = {d: set(d.iterdir()) for d in watched}
        [message] = add_articles(settings, [(name, data)], overwrite)
        new = sorted(_tree(tmp_path) - before_tree)
        assert all(corpus in p.parents for p in new), new  # nothing outside the corpus
        for d in watched:
            assert set(d.iterdir()) == before_near[d], d
        assert not list(corpus.glob(".*")), "a temporary file was left behind"
        assert not (Path.cwd() / "evil.txt").exists()
        assert message.startswith(("✅", "❌")), message
        if message.startswith("❌"):
            assert new == []
        else:
            assert [p.parent for p in new] == [corpus] * len(new)
        return message, new

    run.corpus = corpus
    return run


@pytest.mark.parametrize(
    "name",
    [
        "..\\..\\evil.txt",
        "..%2fevil.txt",
        "evil.txt\x00.exe",
        "evil.txt\x00",
        "C:\\evil.txt",
        "~/evil.txt",
        "file:evil.txt",
        "/..",
        "\u202etxt.exe",  # shown as "exe.txt", really ends in .exe
        "evil.txt.exe",
        " .txt",
        "\ud800.txt",  # not encodable as a file name
        "evil\u202egpj.txt",  # displayed as "eviltxt.jpg": invisible controls are refused
        "line\nbreak.txt",
    ],
)
def test_hostile_upload_names_are_refused(upload, name):
    message, new = upload(name, ARTICLE)
    assert message.startswith("❌") and new == []


@pytest.mark.parametrize(
    "name",
    ["%2e%2e%2fevil.txt", "CON.txt", "Статья.txt", " Статья с пробелами.md "],
)
def test_odd_but_harmless_upload_names_stay_literal_inside_the_corpus(upload, name):
    message, new = upload(name, ARTICLE)
    if message.startswith("✅"):  # accepted: stored under exactly that (trimmed) name
        assert [p.name for p in new] == [name.strip()]
        assert new[0].read_bytes() == ARTICLE
    assert not (upload.corpus.parent / "evil.txt").exists()


def test_unicode_name_is_accepted(upload):
    message, new = upload("Статья_о_безопасности.txt", ARTICLE)
    assert message.startswith("✅") and [p.name for p in new] == ["Статья_о_безопасности.txt"]


@pytest.mark.parametrize("name", ["а" * 296 + ".txt", "a" * 248 + ".txt"], ids=["300", "252"])
def test_too_long_upload_name_is_refused_with_a_message(upload, name):
    message, new = upload(name, ARTICLE)
    assert message.startswith("❌") and new == []


@pytest.mark.parametrize(
    "data, accepted",
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + random.Random(7).randbytes(3000), False),
        (gzip.compress(ARTICLE * 20), False),
        (b"", False),
        (b" \r\n\t\n", False),
        (codecs.BOM_UTF8, False),
        (random.Random(8).randbytes(100_001), False),  # over the size limit
        (
            "Заголовок новой статьи о безопасности\r\n\r\nВ Таразе прошли учения.".encode("utf-16"),
            True,
        ),
        ("Заголовок новой статьи о безопасности\n\nВ Таразе прошли учения.".encode("cp1251"), True),
    ],
    ids=["png", "gzip", "empty", "blank", "bom-only", "too-big", "utf16", "cp1251"],
)
def test_upload_contents_are_checked(upload, data, accepted):
    message, new = upload("article.txt", data)
    assert message.startswith("✅" if accepted else "❌"), message
    if accepted:
        assert new[0].read_bytes() == data  # stored byte for byte: offsets stay valid
        doc = load_document(upload.corpus, "article.txt")
        assert doc.title == "Заголовок новой статьи о безопасности"


def test_a_symlink_in_the_corpus_is_replaced_not_written_through(upload, tmp_path):
    outside = tmp_path / "box" / "outside.txt"
    outside.write_bytes(b"do not touch")
    (upload.corpus / "link.txt").symlink_to(outside)
    message, _ = upload("link.txt", ARTICLE, overwrite=True)
    assert message.startswith("✅")
    assert outside.read_bytes() == b"do not touch"
    assert not (upload.corpus / "link.txt").is_symlink()


name_part = st.text(max_size=12) | st.sampled_from(
    ["..", "/", "\\", "%2e", "%2f", "\x00", ":", "~", "\u202e", "CON", " ", ".", "\udcff"]
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(name_part, min_size=1, max_size=4).map("".join),
    st.sampled_from([".txt", ".md", ".TXT", "", ".exe", ".txt.upload"]),
)
def test_any_upload_name_is_stored_inside_the_corpus_or_refused(upload, stem, suffix):
    from rag.ui.store import safe_upload_name

    name = stem + suffix
    message, new = upload(name, ARTICLE, overwrite=True)
    if message.startswith("✅"):
        base = safe_upload_name(name)
        assert (upload.corpus / base).read_bytes() == ARTICLE
        assert not base.startswith(".") and "/" not in base and ".." not in base
        for p in new:
            p.unlink()
