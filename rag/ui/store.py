"""Changes to the corpus folder made from the UI; nothing ever leaves that folder."""

from __future__ import annotations

import os
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from ..corpus import ARTICLE_SUFFIXES, CorpusError, list_files, parse, relative_name
from ..hashing import sha256_of
from ..settings import Settings
from .labels import RU


def safe_upload_name(name: str, labels: dict = RU) -> str:
    """A plain file name for the corpus, or a ValueError that says why not."""
    base = name.strip()
    if not base or "/" in base or "\\" in base or base.startswith("."):
        raise ValueError(labels["up_path"].format(name=name))
    invisible = any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp") for ch in base)
    if invisible or any(ch in base for ch in '<>:"|?*') or ".." in base:
        raise ValueError(labels["up_chars"].format(name=repr(name)))
    if len(base.encode("utf-8", "surrogatepass")) > 200:
        raise ValueError(labels["up_long"].format(name=base[:40]))
    if Path(base).suffix.lower() not in ARTICLE_SUFFIXES:
        raise ValueError(labels["up_suffix"].format(name=base))
    return base


def add_articles(
    settings: Settings, uploads: list[tuple[str, bytes]], overwrite: bool, labels: dict = RU
) -> list[str]:
    """Validate and store uploaded articles; one message per file, accepted or refused."""
    messages = []
    for name, data in uploads:
        shown = os.path.basename(name)
        try:
            base = safe_upload_name(name, labels)
            if len(data) > settings.max_upload_bytes:
                kb = settings.max_upload_bytes // 1000
                raise ValueError(labels["up_big"].format(name=base, kb=kb))
            target = settings.corpus_dir / base
            if target.exists() and not overwrite:
                raise ValueError(labels["up_exists"].format(name=base))
            parse(base, data)  # refuses binary, empty, undecodable
            tmp = target.with_name(f".{base}.upload")
            tmp.write_bytes(data)
            os.replace(tmp, target)
            messages.append(labels["up_added"].format(name=base))
        except CorpusError as exc:
            messages.append(labels["up_unreadable"].format(name=shown, exc=exc))
        except ValueError as exc:
            messages.append(f"❌ {exc}")
        except OSError as exc:  # the folder is read-only, the disk is full, ...
            detail = exc.strerror or type(exc).__name__  # no server paths in the page
            messages.append(labels["up_oserror"].format(name=shown, exc=detail))
    return messages


def corpus_file(settings: Settings, name: str, labels: dict = RU) -> Path:
    """The article file ``name`` (corpus-relative, as the table lists it), or a ValueError:
    no absolute paths, no ``..``, no hidden files, nothing outside the corpus folder."""
    root = settings.corpus_dir.resolve()
    parts = Path(name or "").parts
    refused = (
        not parts
        or Path(name).is_absolute()
        or "\\" in name
        or any(part in ("..", ".") or part.startswith(".") for part in parts)
        or Path(name).suffix.lower() not in ARTICLE_SUFFIXES
    )
    path = (root / name).resolve() if not refused else root
    if refused or root not in path.parents or not path.is_file():
        raise ValueError(labels["not_in_corpus"].format(name=name))
    return path


def delete_article(settings: Settings, name: str, labels: dict = RU) -> str:
    """Remove the file from the corpus folder; its passages leave the index at the next
    build. The message says what happened and what to do next."""
    try:
        corpus_file(settings, name, labels).unlink()
    except ValueError as exc:
        return f"❌ {exc}"
    except OSError as exc:
        return labels["up_oserror"].format(name=name, exc=exc.strerror or type(exc).__name__)
    return labels["deleted"].format(file=name)


def replace_article(
    settings: Settings, name: str, upload_name: str, data: bytes, labels: dict = RU
) -> str:
    """Overwrite the article ``name`` with an uploaded new version of the same format,
    checked like any upload; the old file stays as it was when the new one is refused."""
    try:
        target = corpus_file(settings, name, labels)
        suffix = target.suffix.lower()
        if Path(upload_name).suffix.lower() != suffix:
            raise ValueError(labels["replace_suffix"].format(name=upload_name, suffix=suffix))
        if len(data) > settings.max_upload_bytes:
            kb = settings.max_upload_bytes // 1000
            raise ValueError(labels["up_big"].format(name=upload_name, kb=kb))
        parse(target.name, data)
        tmp = target.with_name(f".{target.name}.upload")
        tmp.write_bytes(data)
        os.replace(tmp, target)
    except CorpusError as exc:
        return labels["up_unreadable"].format(name=os.path.basename(upload_name), exc=exc)
    except ValueError as exc:
        return f"❌ {exc}"
    except OSError as exc:
        return labels["up_oserror"].format(name=name, exc=exc.strerror or type(exc).__name__)
    return labels["replaced"].format(file=name)


@dataclass
class ArticleRow:
    """One article of the corpus folder (or of the index only, once deleted)."""

    file: str
    title: str
    date: str
    source: str
    status: str  # "indexed", "changed", "new", "skipped", "removed"
    reason: str = ""  # why a file is skipped
    chunks: int = 0

    def matches(self, text: str) -> bool:
        """Whether ``text`` is part of its title, file name, date or source."""
        needle = text.strip().casefold()
        fields = (self.title, self.file, self.date, self.source)
        return not needle or any(needle in value.casefold() for value in fields)


def article_rows(settings: Settings, manifest: dict | None) -> list[ArticleRow]:
    """Every article with its status against the index ``manifest`` (None: no index).

    Indexed files show the title, date and source the build stored; files the index has
    not seen yet are read now (a file that cannot be read shows why it will be skipped).
    """
    indexed = (manifest or {}).get("documents", {})
    skipped = (manifest or {}).get("skipped", {})
    rows = []
    on_disk = {relative_name(settings.corpus_dir, p): p for p in list_files(settings.corpus_dir)}
    for name, path in on_disk.items():
        doc = indexed.get(name)
        if doc is not None and sha256_of(path) == doc["sha256"]:
            rows.append(_row(name, doc, "indexed"))
            continue
        status = "changed" if doc is not None else "new"
        try:
            fresh = parse(name, path.read_bytes())
        except (CorpusError, OSError) as exc:
            reason = skipped.get(name) or str(exc)
            rows.append(ArticleRow(name, doc["title"] if doc else "", "", "", "skipped", reason))
            continue
        rows.append(ArticleRow(name, fresh.title, fresh.date, fresh.source, status))
    for name, doc in indexed.items():
        if name not in on_disk:
            rows.append(_row(name, doc, "removed"))
    return sorted(rows, key=lambda r: r.file)


def _row(name: str, doc: dict, status: str) -> ArticleRow:
    return ArticleRow(
        name,
        doc["title"],
        doc.get("date") or "",
        doc.get("source") or "",
        status,
        chunks=doc.get("chunks", 0),
    )
