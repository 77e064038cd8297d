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
