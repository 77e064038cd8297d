"""Faithfulness signals on the errors the issue reports, and on true cases that must pass."""

from rag.faithfulness import (
    Vocabulary,
    missing_details,
    missing_terms_share,
    question_details,
    unsupported_claims,
)

FIGHTERS = (
    '"За рубежом в рядах террористических организаций продолжают пребывать около 40 '
    "боевиков из числа граждан Казахстана и порядка 65 их жен и других членов семей."
)
SITES = (
    "Напомним, ранее также сообщалось о том, что спецслужбы Казахстана в 2015 году "
    "обнаружили свыше двух тысяч экстремистских сайтов."
)


def test_a_place_taken_from_the_question_is_unsupported():
    answer = "В рядах террористов в Афганистане продолжают пребывать около 40 боевиков [1]."
    assert unsupported_claims(answer, FIGHTERS) == ["Афганистане"]


def test_a_changed_action_is_unsupported():
    answer = "Спецслужбы Казахстана в 2015 году заблокировали свыше двух тысяч сайтов [1]."
    assert unsupported_claims(answer, SITES) == ["заблокировали"]


def test_a_changed_number_or_year_is_unsupported():
    assert unsupported_claims("Около 45 боевиков остаются за рубежом.", FIGHTERS) == ["45"]
    assert "2016" in unsupported_claims("В 2016 году обнаружили сайты.", SITES)


def test_faithful_rephrasings_pass():
    # inflected names, the same verb in another form, a reporting verb, a near synonym noun
    assert (
        unsupported_claims("За рубежом пребывают около 40 граждан Казахстана [1].", FIGHTERS) == []
    )
    assert (
        unsupported_claims("Спецслужбы обнаружили более двух тысяч сайтов в 2015 году.", SITES)
        == []
    )
    assert (
        unsupported_claims(
            "Ведомство сообщило, что в Казахстане обнаружено свыше двух тысяч сайтов.", SITES
        )
        == []
    )
    assert unsupported_claims("Обнаруживают сайты.", "Спецслужбы обнаружили сайты.") == []


def test_an_english_answer_is_judged_by_its_names_and_numbers():
    assert unsupported_claims("About 40 fighters from Kazakhstan remain abroad.", FIGHTERS) == []
    assert unsupported_claims("About 45 fighters remain abroad.", FIGHTERS) == ["45"]


def test_question_details_are_numbers_months_and_names():
    details = question_details("Сколько сайтов обнаружили спецслужбы Казахстана в 2015 году в мае?")
    assert details == ["Казахстана", "2015", "мае"]
    assert question_details("Кто возглавляет центр?") == []
    # a name at the start of the question is still a name
    assert question_details("Казахстан подписал договор?") == ["Казахстан"]


def test_a_near_miss_detail_is_missing_from_the_evidence():
    evidence = [FIGHTERS, SITES, "Теракты в Актобе"]
    assert missing_details("Сколько сайтов обнаружили спецслужбы в 2005 году?", evidence) == [
        "2005"
    ]
    assert missing_details("Сколько боевиков из Узбекистана остаются за рубежом?", evidence) == [
        "Узбекистана"
    ]
    assert (
        missing_details("Сколько сайтов обнаружили спецслужбы Казахстана в 2015 году?", evidence)
        == []
    )
    assert missing_details("Что случилось в Актобе?", evidence) == []


def test_a_decade_or_a_year_range_is_found_in_its_short_form():
    """The article's "1970-х" holds "70-х", its "1620—21" holds 1621; another decade or a year
    outside the range is still missing."""
    evidence = ["Доктора на сцене играл Тревор Мартин в 1970-х годах.", "Чума 1620—21 годов."]
    assert missing_details("Кто играл Доктора на сцене в 70-х годах?", evidence) == []
    assert missing_details("Кто играл Доктора на сцене в 60-х годах?", evidence) == ["60"]
    assert missing_details("Сколько погибло от чумы с 1620 по 1621 год?", evidence) == []
    assert missing_details("Сколько погибло от чумы в 1622 году?", evidence) == ["1622"]
    assert missing_details("Что было в 2005-2006 годах?", ["В 2005-2006 годах"]) == []


def test_an_english_question_is_checked_by_its_numbers_only():
    evidence = [SITES]
    assert missing_details("How many sites did Kazakhstan find in 2015?", evidence) == []
    assert missing_details("How many sites did Kazakhstan find in 2005?", evidence) == ["2005"]


def test_missing_terms_share():
    vocabulary = Vocabulary([SITES])
    assert missing_terms_share("Сколько сайтов обнаружили спецслужбы?", vocabulary) == 0.0
    assert missing_terms_share("Сколько кораблей построили верфи?", vocabulary) == 1.0
