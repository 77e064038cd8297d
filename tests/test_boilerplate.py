"""The "официальный сайт" rule drops masthead lines, not sentences that cite a site."""

from __future__ import annotations

from rag.corpus import parse

ARTICLE = """Официальный сайт республиканского общественного объединения
Дорогу между Астаной и Караганды откроют после ремонта в мае

Как сообщает официальный сайт акимата, ремонт дороги завершат к середине мая.
Рабочие уже уложили новый асфальт на большей части участка.
"""


def test_sentence_citing_an_official_site_is_kept():
    doc = parse("road.txt", ARTICLE.encode("utf-8"))
    assert "Как сообщает официальный сайт акимата" in doc.text
    assert "республиканского общественного объединения" not in doc.text
