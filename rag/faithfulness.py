"""Faithfulness: whether an answer asserts only what its passage says, and whether the
evidence holds the question's specific detail at all.

The support check (``rag.citations.support``) counts shared words, so a sentence that
keeps most words of a passage but changes the fact passes it: asked how many Kazakh
citizens fight "in Afghanistan", the model answered "В рядах террористов в Афганистане
продолжают пребывать около 40 боевиков" while the article says "за рубежом"; asked how
many sites were blocked, it wrote "заблокировали", the article "обнаружили". Two signals
catch that kind of error:

- ``unsupported_claims``: the names, places, numbers, dates and actions (verb lemmas) of
  a sentence that its passage does not contain, even when the word comes from the
  question;
- ``missing_details``: the question's specific details (numbers, years, months, names of
  people, places and organisations) that appear in none of the evidence. A question that
  changes one detail of an answerable one (another year, another city) retrieves the
  same passages: this is the typical near miss.

Words are compared by their dictionary form (pymorphy3) and by their Snowball stem, so
inflection does not count as a change ("Афганистане" is supported by "Афганистан").
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from .lexical import STOPWORDS, tokenize

_WORD = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*|\d+(?:[.,]\d+)?", re.UNICODE)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
_MARKER = re.compile(r"\[\d{1,3}(?:\s*[,;]\s*\d{1,3})*\]")  # citation markers
# Short forms a text implies besides its own numbers: the decade "1970-х" is also "70-х";
# the range "1620—21" ends in 1621.
_DECADE = re.compile(r"(?<!\d)(?:1\d|20)(\d0)-(?:х|е|ых|ые|м|ми)\b")
_YEAR_RANGE = re.compile(r"(?<!\d)(\d\d)\d\d\s?[-–—]\s?(\d\d)(?![\d.,]\d)")
_MONTHS = frozenset(
    [
        "январь",
        "февраль",
        "март",
        "апрель",
        "май",
        "июнь",
        "июль",
        "август",
        "сентябрь",
        "октябрь",
        "ноябрь",
        "декабрь",
    ]
)
# Verbs that carry no fact of their own: being, having, saying. An answer may rephrase
# "по данным ведомства" as "ведомство сообщило" without changing what happened.
_LIGHT_VERBS = frozenset(
    [
        "быть",
        "являться",
        "стать",
        "становиться",
        "иметь",
        "мочь",
        "смочь",
        "составлять",
        "составить",
        "находиться",
        "оставаться",
        "остаться",
        "есть",
        "сообщить",
        "сообщать",
        "заявить",
        "заявлять",
        "отметить",
        "отмечать",
        "рассказать",
        "рассказывать",
        "сказать",
        "говорить",
        "подчеркнуть",
        "пояснить",
        "уточнить",
        "назвать",
        "называть",
        "указать",
        "указывать",
        "считать",
        "говориться",
    ]
)
# question words are never in the answer's evidence
_QUESTION_WORDS = frozenset(
    [
        "сколько",
        "скольких",
        "когда",
        "где",
        "куда",
        "откуда",
        "кто",
        "кого",
        "кому",
        "кем",
        "что",
        "чего",
        "чему",
        "чем",
        "какой",
        "какая",
        "какое",
        "какие",
        "каким",
        "какого",
        "какую",
        "каком",
        "каких",
        "какова",
        "каков",
        "каково",
        "каковы",
        "почему",
        "зачем",
        "чей",
        "чья",
        "чьё",
        "чье",
        "чьи",
        "как",
        "много",
        "how",
        "many",
        "much",
        "what",
        "which",
        "who",
        "whom",
        "whose",
        "when",
        "where",
        "why",
    ]
)
_ACTION_POS = frozenset({"VERB", "INFN", "PRTF", "PRTS", "GRND"})
_NAME_TAGS = frozenset({"Name", "Surn", "Patr", "Geox", "Orgn", "Trad"})


@lru_cache(maxsize=1)
def _morph():
    import pymorphy3

    return pymorphy3.MorphAnalyzer()


@dataclass(frozen=True)
class _Word:
    text: str
    lemma: str
    stem: str
    pos: str | None
    is_name_tag: bool


@lru_cache(maxsize=200_000)
def _analyse(word: str) -> _Word:
    low = word.lower().replace("ё", "е")
    stems = tokenize(low) or [low]
    if _NUMBER.fullmatch(word) or not _cyrillic(low):
        return _Word(word, low, stems[0], None, False)
    parse = _morph().parse(low)[0]
    tags = set(parse.tag.grammemes)
    return _Word(
        word, parse.normal_form.replace("ё", "е"), stems[0], parse.tag.POS, bool(tags & _NAME_TAGS)
    )


def _cyrillic(word: str) -> bool:
    return any("\u0400" <= ch <= "\u04ff" for ch in word)


def _script(word: str) -> str | None:
    if _NUMBER.fullmatch(word):
        return None
    return "cyrillic" if _cyrillic(word.lower()) else "latin"


class Vocabulary:
    """The words of some texts, by dictionary form, by stem and as numbers, and the
    script most of them are written in."""

    def __init__(self, texts: Iterable[str]):
        self.lemmas: set[str] = set()
        self.stems: set[str] = set()
        self.numbers: set[str] = set()
        scripts = {"cyrillic": 0, "latin": 0}
        for text in texts:
            for match in _WORD.finditer(text):
                word = match.group()
                if _NUMBER.fullmatch(word):
                    self.numbers.add(word.replace(",", "."))
                    continue
                parsed = _analyse(word)
                self.lemmas.add(parsed.lemma)
                self.stems.add(parsed.stem)
                scripts[_script(word) or "cyrillic"] += 1
            self.numbers.update(m.group(1) for m in _DECADE.finditer(text))
            self.numbers.update(a + b for a, b in _YEAR_RANGE.findall(text))
        self.script = max(scripts, key=lambda s: scripts[s])

    def has(self, word: _Word) -> bool:
        if _NUMBER.fullmatch(word.text):
            return word.text.replace(",", ".") in self.numbers
        if word.lemma in self.lemmas or word.stem in self.stems:
            return True
        # a longer derivation of the same stem ("обнаружить" / "обнаруживать")
        return len(word.stem) >= 5 and any(
            s.startswith(word.stem) or (len(s) >= 5 and word.stem.startswith(s)) for s in self.stems
        )


def _claims(text: str, names_only: bool = False) -> list[_Word]:
    """The words of ``text`` that state a fact: numbers, months, names (a capital inside a
    sentence, an acronym, or a name in the dictionary) and, unless ``names_only``, actions
    (verbs, participles, gerunds other than being, having and saying)."""
    out = []
    text = _MARKER.sub(" ", text)
    for i, match in enumerate(_WORD.finditer(text)):
        word = match.group()
        if word.lower() in STOPWORDS:
            continue
        if _NUMBER.fullmatch(word):
            out.append(_analyse(word))
            continue
        parsed = _analyse(word)
        capital = word[:1].isupper() and (i > 0 or parsed.is_name_tag)
        acronym = len(word) > 1 and word.isupper()
        if (
            capital
            or acronym
            or parsed.lemma in _MONTHS
            or (not names_only and parsed.pos in _ACTION_POS and parsed.lemma not in _LIGHT_VERBS)
        ):
            out.append(parsed)
    return out


def _absent(words: list, vocabulary: Vocabulary) -> list[str]:
    """The texts of ``words`` that ``vocabulary`` lacks, once each, in order; a word in a
    script the vocabulary is not written in cannot be compared by spelling and is skipped."""
    missing = []
    for word in words:
        script = _script(word.text)
        if script is not None and script != vocabulary.script:
            continue
        if not vocabulary.has(word):
            missing.append(word.text)
    return list(dict.fromkeys(missing))


def unsupported_claims(sentence: str, passage: str | Vocabulary) -> list[str]:
    """The names, places, numbers, dates and actions of ``sentence`` that ``passage``
    does not contain. Words in a script the passage is not written in (an English
    answer about a Russian article) cannot be compared by spelling and are skipped."""
    vocabulary = passage if isinstance(passage, Vocabulary) else Vocabulary([passage])
    return _absent(_claims(sentence), vocabulary)


def question_details(question: str) -> list[str]:
    """The specific details a question asks about: its numbers, months and names."""
    return list(dict.fromkeys(w.text for w in _claims(question, names_only=True)))


def missing_details(question: str, evidence: Iterable[str] | Vocabulary) -> list[str]:
    """The question's details (see ``question_details``) that appear in none of the
    evidence texts: asked about 2005 when the passages speak of 2015, the articles do not
    answer the question even though they are about its topic."""
    vocabulary = evidence if isinstance(evidence, Vocabulary) else Vocabulary(evidence)
    return _absent(_claims(question, names_only=True), vocabulary)


def missing_terms_share(question: str, evidence: Vocabulary) -> float:
    """Share of the question's content words (stems) found in none of the evidence; words
    in the other script count as missing only when they are numbers."""
    words = [
        w
        for w in _WORD.findall(question)
        if w.lower() not in STOPWORDS and w.lower() not in _QUESTION_WORDS
    ]
    checked = [_analyse(w) for w in words if _script(w) is None or _script(w) == evidence.script]
    if not checked:
        return 0.0
    return sum(not evidence.has(w) for w in checked) / len(checked)
