"""Turn saved web pages, PDFs and Word files into plain article text plus metadata.

The extracted text becomes the document's ``original``: chunks and citations point
into it by offsets, and the index keeps a copy, so a cited span reproduces exactly
even though the file on disk is HTML or binary. Extraction is deterministic, so
re-reading the same bytes gives the same text.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass

from .errors import RagError

log = logging.getLogger(__name__)

HTML_SUFFIXES = (".html", ".htm")
CONVERTED_SUFFIXES = (*HTML_SUFFIXES, ".pdf", ".docx")
# fewer words than this left after boilerplate removal: a menu or error page, no article
MIN_HTML_WORDS = 5


class ConversionError(RagError):
    """The file has the right suffix but no article text could be taken from it."""


@dataclass
class Extracted:
    text: str
    format: str  # "html", "pdf" or "docx"
    title: str = ""
    date: str = ""  # ISO date from the file's own metadata, or ""
    author: str = ""
    source: str = ""  # site name or publisher
    language: str = ""


def _clean_lines(text: str) -> str:
    """One paragraph per line, no trailing blanks: the shape the chunker expects."""
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return "\n\n".join(line for line in lines if line)


def _unwrap(text: str) -> str:
    """Join a PDF's visual lines back into paragraphs: a line that does not end a
    sentence continues on the next one."""
    out: list[str] = []
    for line in (" ".join(raw.split()) for raw in text.splitlines()):
        if out and out[-1] and line and not out[-1].endswith(_PARAGRAPH_ENDS):
            out[-1] += " " + line
        else:
            out.append(line)
    return "\n".join(out)


_PARAGRAPH_ENDS = (".", "!", "?", "»", '"', "…", ":")


def from_html(data: bytes) -> Extracted:
    """Main text and metadata via trafilatura (its boilerplate removal, not hand rules)."""
    import trafilatura

    try:
        doc = trafilatura.bare_extraction(
            data,
            include_comments=False,
            include_tables=True,
            favor_precision=True,
            with_metadata=True,
            deduplicate=False,
        )
    except Exception as exc:  # lxml raises many kinds on broken markup
        raise ConversionError(f"malformed HTML ({exc.__class__.__name__})") from exc
    text = _clean_lines(getattr(doc, "text", None) or "") if doc is not None else ""
    if len(text.split()) < MIN_HTML_WORDS:
        raise ConversionError("no article text found in the HTML page")
    return Extracted(
        text=text,
        format="html",
        title=(doc.title or "").strip(),
        date=(doc.date or "").strip(),
        author=(doc.author or "").strip(),
        source=(doc.sitename or "").strip(),
        language=(doc.language or "").strip(),
    )


def from_pdf(data: bytes) -> Extracted:
    """Text layer of every page via pypdf; a scanned or encrypted PDF has none we can use."""
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise ConversionError("encrypted PDF")
        pages = [page.extract_text() or "" for page in reader.pages]
        meta = reader.metadata
    except ConversionError:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, OSError) as exc:
        raise ConversionError(f"unreadable PDF ({exc})") from exc
    text = _clean_lines(_unwrap("\n".join(pages)))
    if not text:
        raise ConversionError("PDF has no text layer (scanned image?)")
    # the creation date is when the PDF was made, not when the story ran: not used
    return Extracted(
        text=text,
        format="pdf",
        title=str((meta.title if meta else "") or "").strip(),
        author=str((meta.author if meta else "") or "").strip(),
    )


def from_docx(data: bytes) -> Extracted:
    """Paragraphs and core properties via python-docx."""
    import zipfile

    import docx
    from docx.opc.exceptions import PackageNotFoundError

    try:
        document = docx.Document(io.BytesIO(data))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise ConversionError(f"corrupt DOCX ({exc.__class__.__name__})") from exc
    text = _clean_lines("\n".join(p.text for p in document.paragraphs))
    if not text:
        raise ConversionError("DOCX has no text")
    props = document.core_properties  # its "created" is the file's, not the story's
    return Extracted(
        text=text,
        format="docx",
        title=(props.title or "").strip(),
        author=(props.author or "").strip(),
        language=(props.language or "").strip(),
    )


def convert(name: str, data: bytes) -> Extracted:
    """Dispatch on the file suffix; raises ConversionError with a reason."""
    suffix = name.lower().rsplit(".", 1)[-1]
    if suffix in ("html", "htm"):
        return from_html(data)
    if suffix == "pdf":
        return from_pdf(data)
    if suffix == "docx":
        return from_docx(data)
    raise ConversionError(f"no converter for .{suffix} files")
