"""What kind of answer a question asks for, and whether an answer is of that kind.

Unsure, the small default model answers with a fragment of a passage that fits no
question: "Какой годовой бюджет у КНБ?" → "В 2013 году [1]." Each word of such a
fragment is in the passage, so the support check passes it. Classic question answering
checks the expected answer type instead; only types that Russian and English question
words announce reliably, and whose answers can be recognised without a tagger, are
checked here:

- a bare time ("В 2013 году", "11 декабря") answers only a question about time, and a
  question about time needs a number or a word of time ("давно", "месяц", "вчера");
- a quantity question ("Сколько…", "How many…") needs a number or a number word;
- a "кто / who" question (not "кто такой", which asks for a description) needs a name:
  a word the passages write with a capital letter inside a sentence, or an acronym,
  that the question does not already contain.

Any other question (Что, Какой, Где, Почему …) is not checked.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .chunking import sentence_spans
from .citations import strip_markers
from .lexical import tokenize

_ASKS_TIME = re.compile(
    r"\b(?:когда|как давно|какого числа|с какого (?:года|времени|момента)"
    r"|в как(?:ом|ие|ой) (?:году|годы|годах|месяце|день|дату|время)"
    r"|when|what year|how long ago|since when|what date)\b",
    re.IGNORECASE,
)
_ASKS_QUANTITY = re.compile(
    r"\b(?:сколько|скольк\w+|какое количество|какое число|какова численность"
    r"|how many|how much)\b",
    re.IGNORECASE,
)
_ASKS_PERSON = re.compile(r"\b(?:кто|who|whom|как зовут|как фамилия)\b", re.IGNORECASE)
# "Кто такой Швейкин?", "Who is Shveikin?" ask for a description, not a name
_ASKS_DESCRIPTION = re.compile(r"\bкто так\w+|\bwho (?:is|are|was|were)\b", re.IGNORECASE)

_MONTH = (
    r"январ\w*|феврал\w*|март\w*|апрел\w*|ма[йяе]\w*|июн\w*|июл\w*|август\w*|сентябр\w*"
    r"|октябр\w*|ноябр\w*|декабр\w*|january|february|march|april|may|june|july|august"
    r"|september|october|november|december"
)
# the words a bare time is made of
_TIME_WORD = re.compile(
    rf"(?:\d{{1,4}}|год\w*|гг?|{_MONTH}|в|во|с|со|по|до|к|от|около|примерно|начал\w*"
    r"|конц\w*|середин\w*|in|on|since|by|the|of|year|around|about)",
    re.IGNORECASE,
)
_YEAR_OR_MONTH = re.compile(rf"(?:1[89]\d\d|20\d\d|{_MONTH})", re.IGNORECASE)
# numbers, in figures or in words (approximate ones too: "сотни", "несколько")
_NUMBER_WORD = re.compile(
    r"\b(?:\d+|ноль|нол[яю]|один|одна|одно|одни|одного|одной|одному|одним|одну|оба|обе"
    r"|два|две|двое|двух|двум|двумя|двоих|три|трое|тр[её]х|тр[её]м|тремя|четыр\w+|пят[ьи]\w*"
    r"|шест[ьи]\w*|семь|семи\w*|восем\w+|девят\w+|десят\w+|\w+надцат\w+|двадцат\w+"
    r"|тридцат\w+|сорок\w*|девяност\w+|сто|ста|сотн\w*|двест\w+|трист\w+|четырест\w+"
    r"|(?:двух|тр[её]х|четыр[её]х|пят|шест|сем|восем|девят)\w{0,3}сот\w*|тысяч\w*"
    r"|миллион\w*|млн|миллиард\w*|млрд|десятк\w+|дюжин\w+|несколько|нескольк\w+"
    r"|zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve"
    r"|thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty"
    r"|fifty|sixty|seventy|eighty|ninety|hundreds?|thousands?|millions?|billions?|dozens?"
    r"|several|none)\b",
    re.IGNORECASE,
)
# words that place something in time, besides numbers
_TIME_MENTION = re.compile(
    rf"\b(?:{_MONTH}|год\w*|лет|месяц\w*|недел\w+|дн[яеи]\w*|день|час\w*|минут\w*"
    r"|давно|недавно|назад|вчера|сегодня|завтра|накануне|ранее|позже|тогда|сейчас|весн\w+"
    r"|летом|осен\w+|зим\w+|years?|months?|weeks?|days?|ago|yesterday|today|recently"
    r"|spring|summer|autumn|fall|winter)\b",
    re.IGNORECASE,
)
_WORD = re.compile(r"\w+")


def asks_for(question: str) -> str | None:
    """What the question words ask for: "time", "quantity", "person", or None."""
    if _ASKS_TIME.search(question):
        return "time"
    if _ASKS_QUANTITY.search(question):
        return "quantity"
    if _ASKS_PERSON.search(question) and not _ASKS_DESCRIPTION.search(question):
        return "person"
    return None


def is_bare_time(answer: str) -> bool:
    """Whether the answer says nothing but a time: "В 2013 году", "11 декабря"."""
    words = _WORD.findall(strip_markers(answer))
    return (
        bool(words)
        and any(_YEAR_OR_MONTH.fullmatch(w) for w in words)
        and all(_TIME_WORD.fullmatch(w) for w in words)
    )


def names_in(texts: Iterable[str]) -> set[str]:
    """Stems of the words written with a capital inside a sentence (not first), and of
    acronyms anywhere: the proper names of these texts."""
    names: set[str] = set()
    for text in texts:
        for a, b in sentence_spans(text):
            for i, match in enumerate(_WORD.finditer(text[a:b])):
                word = match.group()
                acronym = len(word) > 1 and word.isupper()
                if acronym or (i > 0 and word[:1].isupper() and not word.isdigit()):
                    names.update(tokenize(word))
    return names


def off_type(answer: str, question: str, passage_texts: list[str]) -> bool:
    """Whether ``answer`` is not the kind of answer ``question`` asks for (see above)."""
    wanted = asks_for(question)
    if wanted != "time" and is_bare_time(answer):
        return True
    plain = strip_markers(answer)
    if wanted == "time":
        return not (_NUMBER_WORD.search(plain) or _TIME_MENTION.search(plain))
    if wanted == "quantity":
        return not _NUMBER_WORD.search(plain)
    if wanted == "person":
        mentioned = set(tokenize(plain)) - set(tokenize(question))
        return not mentioned & (names_in([*passage_texts, plain]))
    return False
