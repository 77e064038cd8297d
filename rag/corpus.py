"""Read articles from a folder, decode them, and mark what is site boilerplate.

Nothing here rewrites the text: a document keeps its decoded original and a list
of *sections*, the spans of it that hold article text. Every later stage points
into ``original`` by character offsets, so a citation can always be shown in the
file the user has.
"""

from __future__ import annotations

import codecs
import hashlib
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from charset_normalizer import from_bytes

from .convert import CONVERTED_SUFFIXES, ConversionError, convert
from .dates import find_date
from .errors import RagError

log = logging.getLogger(__name__)

TEXT_SUFFIXES = (".txt", ".md")
ARTICLE_SUFFIXES = (*TEXT_SUFFIXES, *CONVERTED_SUFFIXES)

# Lines that are site chrome, matched against the whole stripped line (case-insensitive).
BOILERPLATE_LINES = [
    r"прямой эфир(\s+новости спорта)?",
    r"новости спорта",
    r"популярное в нашем telegram[- ]канале",
    r"новости партн[её]ров",
    r"\[[A-Z]+(_[A-Z]+)*_\d+\]",  # [GALLERY_BLOCK_1], [VIDEO_BLOCK_2] …
    r"поделиться:?",
    r"добавить комментарий",
    r"ваш адрес email не будет опубликован.*",
    r"обязательные поля помечены.*",
    r"сообщить об опечатке",
    r"текст, который будет отправлен нашим редакторам:?",
    r"если вы нашли ошибку, пожалуйста, выделите фрагмент текста и нажмите ctrl\s*\+\s*enter\.?",
    r"(читайте|подписывайтесь на) (также|нас).*",
    r"комментарии|комментарий|имя|e-?mail|сайт|отправить",
    r"\d{1,4}",  # lone numbers: phone shortcuts, counters, page numbers
    r"[\W_]+",  # only punctuation
    # a masthead naming the site: short and not a sentence ("как сообщает официальный сайт
    # акимата, …" is kept)
    # (words are split by required spaces: "(?:\S+\s*){1,10}" backtracks exponentially on a
    # long line without spaces)
    r"(?=\S+(?:\s+\S+){0,9}\s*$)(?!.*[.!?…:;,]\W*$).*\b(официальный сайт|ресми сайты)\b.*",
]
_BOILERPLATE = re.compile("|".join(f"(?:{p})" for p in BOILERPLATE_LINES), re.IGNORECASE)

# Before the headline, lines shorter than this are the site's menu or masthead.
TITLE_MIN_WORDS = 4
TITLE_MAX_CHARS = 160


class CorpusError(RagError):
    """A file could not be used as an article; the message says why."""


@dataclass
class Document:
    file: str  # path relative to the corpus folder, with forward slashes
    original: str  # decoded text, exactly as in the file (BOM removed)
    encoding: str
    sha256: str  # of the file's bytes
    title: str
    sections: list[tuple[int, int]]  # spans of ``original`` holding article text
    removed: list[tuple[int, int, str]] = field(default_factory=list)  # span, reason
    format: str = "text"  # "text", or the format ``original`` was extracted from
    date: str = ""  # publication date: "YYYY-MM-DD", "--MM-DD" (year unknown) or ""
    source: str = ""  # outlet / site name, "" when unknown
    author: str = ""
    language: str = ""  # "ru", "kk", "en" or ""

    @property
    def text(self) -> str:
        """The cleaned article: kept sections joined by blank lines (for display only)."""
        return "\n\n".join(self.original[s:e] for s, e in self.sections)


@dataclass
class Skipped:
    file: str
    reason: str


def decode(data: bytes) -> tuple[str, str]:
    """Bytes to text, detecting BOMs, UTF-8, and legacy Cyrillic code pages."""
    for bom, name in (
        (codecs.BOM_UTF32_LE, "utf-32-le"),
        (codecs.BOM_UTF32_BE, "utf-32-be"),
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
    ):
        if data.startswith(bom):
            try:
                return data[len(bom) :].decode(name.replace("-sig", "")), name
            except UnicodeDecodeError as exc:
                raise CorpusError(
                    f"starts with a {name} byte-order mark but is not {name}"
                ) from exc
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    if b"\x00" in data and not _looks_like_utf16(data):
        raise CorpusError("binary file (contains NUL bytes)")
    best = from_bytes(data).best()
    if best is None:
        raise CorpusError("binary file, or text in an unknown encoding")
    return str(best), best.encoding


def _looks_like_utf16(data: bytes) -> bool:
    even_nuls = data[0::2].count(0)
    odd_nuls = data[1::2].count(0)
    half = max(1, len(data) // 2)
    return max(even_nuls, odd_nuls) > 0.3 * half and min(even_nuls, odd_nuls) < 0.05 * half


def _is_text(text: str) -> bool:
    if not text.strip():
        return False
    bad = sum(1 for ch in text if (ord(ch) < 32 and ch not in "\t\n\r\f\v") or ch == "\ufffd")
    return bad <= max(2, len(text) // 100)


def _norm(line: str) -> str:
    return " ".join(line.split()).lower()


def _lines(text: str) -> Iterator[tuple[int, int]]:
    """Spans of each line's content, stripped of surrounding white space."""
    pos = 0
    for raw in text.splitlines(keepends=True):
        body = raw.rstrip("\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
        stripped = body.strip()
        if stripped:
            start = pos + (len(body) - len(body.lstrip()))
            yield start, start + len(stripped)
        pos += len(raw)


def _title_from(line: str) -> str:
    line = line.strip().lstrip("#").strip()
    if len(line) <= TITLE_MAX_CHARS:
        return line
    from razdel import sentenize

    first = next(iter(sentenize(line))).text
    return (
        first if len(first) <= TITLE_MAX_CHARS else line[:TITLE_MAX_CHARS].rsplit(" ", 1)[0] + "…"
    )


def language_of(text: str) -> str:
    """A coarse guess from the alphabet: Kazakh letters, Cyrillic, or Latin."""
    sample = text[:4000].lower()
    letters = [ch for ch in sample if ch.isalpha()]
    if not letters:
        return ""
    if sum(ch in "әғқңөұүһі" for ch in letters) > len(letters) / 200:
        return "kk"
    cyrillic = sum("а" <= ch <= "я" or ch == "ё" for ch in letters)
    return "ru" if cyrillic > len(letters) / 2 else "en"


def _parse_converted(file: str, data: bytes) -> Document:
    """HTML, PDF or DOCX: the extracted text is the document, one paragraph per line."""
    try:
        got = convert(file, data)
    except ConversionError as exc:
        raise CorpusError(str(exc)) from exc
    text = got.text
    first = text.split("\n", 1)[0]
    return Document(
        file=file,
        original=text,
        encoding=got.format,
        sha256=hashlib.sha256(data).hexdigest(),
        title=_title_from(got.title or first),
        sections=[(0, len(text))],
        format=got.format,
        date=got.date,
        source=got.source,
        author=got.author,
        language=got.language[:2].lower() or language_of(text),
    )


def parse(file: str, data: bytes) -> Document:
    """Decode one article and find its title, body sections and boilerplate."""
    if not data.strip():
        raise CorpusError("empty file")
    if file.lower().endswith(CONVERTED_SUFFIXES):
        doc = _parse_converted(file, data)
        doc.date = doc.date or find_date(doc.original)
        return doc
    original, encoding = decode(data)
    if not _is_text(original):
        raise CorpusError("no readable text (binary or empty after decoding)")

    sections: list[tuple[int, int]] = []
    removed: list[tuple[int, int, str]] = []
    seen: set[str] = set()
    title = ""
    split = True  # a removed line ends the current section
    for start, end in _lines(original):
        line = original[start:end]
        key = _norm(line)
        reason = ""
        if _BOILERPLATE.fullmatch(key):
            reason = "boilerplate"
        elif key in seen:
            reason = "repeated paragraph"
        elif not title and len(key.split()) < TITLE_MIN_WORDS:
            reason = "menu"
        if reason:
            removed.append((start, end, reason))
            split = True
            continue
        seen.add(key)
        title = title or _title_from(line)
        if split:
            sections.append((start, end))
            split = False
        else:
            sections[-1] = (sections[-1][0], end)
    if not sections:
        raise CorpusError("nothing left after removing boilerplate")
    body = "\n".join(original[s:e] for s, e in sections)
    return Document(
        file=file,
        original=original,
        encoding=encoding,
        sha256=hashlib.sha256(data).hexdigest(),
        title=title,
        sections=sections,
        removed=removed,
        date=find_date(body),
        language=language_of(body),
    )


def list_files(corpus_dir: Path) -> list[Path]:
    """Article files under ``corpus_dir`` (recursively), sorted, hidden files skipped."""
    if not corpus_dir.is_dir():
        raise CorpusError(f"corpus folder {corpus_dir} does not exist")
    return sorted(
        p
        for p in corpus_dir.rglob("*")
        if p.is_file()
        and p.suffix.lower() in ARTICLE_SUFFIXES
        and not any(part.startswith(".") for part in p.relative_to(corpus_dir).parts)
    )


def relative_name(corpus_dir: Path, path: Path) -> str:
    return path.relative_to(corpus_dir).as_posix()


def load_document(corpus_dir: Path, name: str) -> Document:
    """Load one article by its corpus-relative name; refuses paths outside the corpus."""
    root = corpus_dir.resolve()
    path = (root / name).resolve()
    if root not in path.parents:
        raise CorpusError(f"{name!r} is outside the corpus folder")
    if not path.is_file():
        raise CorpusError(f"{name} is no longer in the corpus (deleted or renamed)")
    return parse(name, path.read_bytes())


def read_corpus(corpus_dir: Path) -> tuple[list[Document], list[Skipped]]:
    """Every readable article in the folder; the rest are reported, never fatal."""
    docs: list[Document] = []
    skipped: list[Skipped] = []
    for path in list_files(corpus_dir):
        name = relative_name(corpus_dir, path)
        try:
            docs.append(parse(name, path.read_bytes()))
        except (CorpusError, OSError) as exc:
            log.warning("skipping %s: %s", name, exc)
            skipped.append(Skipped(name, str(exc)))
    return docs, skipped
