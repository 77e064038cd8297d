"""A question as asked: cleaned of invisible characters, checked, its language told."""

from __future__ import annotations

import unicodedata

from .errors import RagError


def _visible(ch: str) -> str:
    """Control and line-separator characters become spaces; invisible format characters
    (zero-width, bidi overrides and isolates, soft hyphen, BOM) are dropped."""
    category = unicodedata.category(ch)
    if category in ("Cc", "Zl", "Zp") or ch == "\u200b":
        return " "
    return "" if category == "Cf" else ch


class QuestionError(RagError, ValueError):
    """The question cannot be asked as it is; the message says why. ``code`` and ``params``
    let a UI say the same in its own language (its label table has a text per code)."""

    def __init__(self, message: str, code: str = "", **params: object):
        super().__init__(message)
        self.code = code
        self.params = params


def clean_question(question: str, max_chars: int) -> str:
    text = unicodedata.normalize("NFC", "".join(map(_visible, question or "")))
    text = " ".join(text.split())
    if not text or not any(ch.isalnum() for ch in text):
        raise QuestionError(
            "Пустой вопрос: напишите, что вы хотите узнать из статей.", "empty_question"
        )
    if len(text) > max_chars:
        raise QuestionError(
            f"Вопрос слишком длинный ({len(text)} символов, максимум {max_chars}). "
            "Сократите его до сути.",
            "long_question",
            n=len(text),
            max=max_chars,
        )
    return text


def language(text: str) -> str:
    cyr = sum("а" <= ch.lower() <= "я" or ch.lower() in "ёәғқңөұүһі" for ch in text)
    lat = sum("a" <= ch.lower() <= "z" for ch in text)
    return "en" if lat > cyr else "ru"
