"""Changes to the corpus folder made from the UI; nothing ever leaves that folder."""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path

from ..corpus import ARTICLE_SUFFIXES, CorpusError, parse
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
            messages.append(labels["up_oserror"].format(name=shown, exc=exc))
    return messages
