"""Realistic archive files built from a seed article: a news-site page, a PDF, a DOCX."""

from __future__ import annotations

import html
import io
from pathlib import Path

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")

# site chrome that must not reach the index
MENU = ["Главная", "Политика", "Экономика", "Общество", "Спорт", "Контакты"]
SHARE = "Поделиться в Telegram · ВКонтакте · WhatsApp"
RELATED = ["Курс доллара вырос на бирже", "Погода на выходные: снег и гололёд"]
COMMENT = "Оставьте комментарий. Ваш адрес email не будет опубликован."
BOILERPLATE = [*MENU, SHARE, *RELATED, COMMENT]


def news_page(
    title: str, paragraphs: list[str], published: str, site: str, author: str = "Айгуль Серикова"
) -> bytes:
    """A news-site article page: menu, share buttons, related links, comment form."""
    e = html.escape
    body = "\n".join(f"<p>{e(p)}</p>" for p in paragraphs)
    menu = "".join(f'<li><a href="/{i}">{e(m)}</a></li>' for i, m in enumerate(MENU))
    related = "".join(f'<li><a href="/r{i}">{e(r)}</a></li>' for i, r in enumerate(RELATED))
    return f"""<!DOCTYPE html>
<html lang="ru"><head><meta charset="utf-8">
<title>{e(title)} | {e(site)}</title>
<meta property="og:title" content="{e(title)}">
<meta property="og:site_name" content="{e(site)}">
<meta property="article:published_time" content="{published}">
<meta name="author" content="{e(author)}">
</head><body>
<header><nav><ul class="menu">{menu}</ul></nav></header>
<main><article>
<h1>{e(title)}</h1>
<div class="byline">{e(author)}</div>
{body}
<div class="share"><a href="#">{e(SHARE)}</a></div>
</article>
<aside class="related"><h3>Читайте также</h3><ul>{related}</ul></aside>
<section id="comments"><form action="/comment"><p>{e(COMMENT)}</p>
<textarea name="c"></textarea><button>Отправить</button></form></section>
</main>
<footer>© {e(site)}, все права защищены</footer>
</body></html>""".encode()


def pdf_file(title: str, paragraphs: list[str]) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.add_font("DejaVu", fname=str(FONT))
    pdf.set_font("DejaVu", size=11)
    pdf.set_title(title)
    for text in [title, *paragraphs]:
        pdf.multi_cell(0, 6, text)
        pdf.ln(3)
    return bytes(pdf.output())


def docx_file(title: str, paragraphs: list[str]) -> bytes:
    import docx

    document = docx.Document()
    document.core_properties.title = title
    document.add_heading(title, level=1)
    for text in paragraphs:
        document.add_paragraph(text)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def seed(path: Path) -> tuple[str, list[str]]:
    """Title and body paragraphs of a corpus article, its chrome dropped."""
    from rag.corpus import parse

    doc = parse(path.name, path.read_bytes())
    paragraphs = [line for s, e in doc.sections for line in doc.original[s:e].splitlines()]
    paragraphs = [p.strip() for p in paragraphs if p.strip()]
    return paragraphs[0], paragraphs[1:]


# One story as an archive holds it: as first published, an exact copy (the same text under
# another outlet and day), the wire story re-published under another headline with a few
# words changed, and a copy edited by hand (words changed, a sentence dropped) saved as text.
FIRST = "news/shveikin.html"
COPY = "news/shveikin_kazinform.html"
SYNDICATED = "zakon/antiterror.html"
EDITED = "edited.txt"


def edited(paragraphs: list[str]) -> list[str]:
    """A few words changed and the second sentence of the second paragraph dropped."""
    out = [p.replace("сообщил", "рассказал").replace("сегодня", "в четверг") for p in paragraphs]
    first, _, rest = out[1].partition(". ")
    out[1] = first + ". " + rest.partition(". ")[2]
    return out


def story_copies(corpus: Path, story: Path, others: list[Path]) -> None:
    """The four copies of the ``story`` article (above) and the ``others`` as they are."""
    import shutil

    title, paragraphs = seed(story)
    (corpus / "news").mkdir(parents=True, exist_ok=True)
    (corpus / "zakon").mkdir(exist_ok=True)
    (corpus / FIRST).write_bytes(
        news_page(title, paragraphs, "2015-03-12T10:00:00+06:00", "Tengrinews")
    )
    (corpus / COPY).write_bytes(
        news_page(title, paragraphs, "2015-03-13T09:00:00+06:00", "Kazinform", "Иван Петров")
    )
    wire = [p.replace("Об этом сегодня", "Об этом в среду") for p in paragraphs]
    assert wire != paragraphs
    (corpus / SYNDICATED).write_bytes(
        news_page(
            "КНБ: в Казахстане за год сорвали 11 терактов",
            wire,
            "2015-03-14T12:00:00+06:00",
            "Zakon.kz",
        )
    )
    (corpus / EDITED).write_text("\n\n".join([title, *edited(paragraphs)]), encoding="utf-8")
    for path in others:
        shutil.copy(path, corpus / path.name)
