"""Settings: validation names the variable, presets, precedence, `rag settings`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag.errors import SettingsError
from rag.settings import PROJECT_ROOT, Settings, known_presets

BAD = [
    ({"RAG_TOP_K": "abc"}, "RAG_TOP_K='abc'", "valid integer"),
    ({"RAG_LLM_REUSE_PREFIX": "ture"}, "RAG_LLM_REUSE_PREFIX='ture'", "true or false"),
    ({"RAG_SEARCH_MODE": "fuzzy"}, "RAG_SEARCH_MODE='fuzzy'", "'dense', 'lexical' or 'hybrid'"),
    ({"RAG_TOP_K": "0"}, "RAG_TOP_K='0'", "greater than or equal to 1"),
    ({"RAG_LEXICAL_WEIGHT": "-1"}, "RAG_LEXICAL_WEIGHT='-1'", "greater than or equal to 0"),
    ({"RAG_EMBEDDING_DTYPE": "fp16"}, "RAG_EMBEDDING_DTYPE='fp16'", "'auto', 'bf16' or 'fp32'"),
    ({"RAG_PRESET": "nope"}, "RAG_PRESET='nope'", "known: e5-small, extractive, remote-llm"),
    ({"RAG_TOPK": "3"}, "RAG_TOPK is not a setting", "did you mean RAG_TOP_K"),
]


@pytest.mark.parametrize(("env", "names", "allowed"), BAD)
def test_bad_value_is_an_error_naming_the_variable(env, names, allowed):
    with pytest.raises(SettingsError) as info:
        Settings.from_env(env)
    assert names in str(info.value)
    assert allowed in str(info.value)


def test_env_values_are_typed():
    s = Settings.from_env({"RAG_TOP_K": "7", "RAG_LLM_REUSE_PREFIX": "false", "RAG_PORT": "8000"})
    assert (s.top_k, s.llm_reuse_prefix, s.port) == (7, False, 8000)
    assert Settings.from_env({"RAG_QUERY_PROMPT": ""}).query_prompt is None
    assert Settings.from_env(corpus_dir="~/x").corpus_dir == Path("~/x").expanduser()


def test_presets_apply():
    assert known_presets() == ["e5-small", "extractive", "remote-llm"]
    extractive = Settings.from_env({"RAG_PRESET": "extractive"})
    assert (extractive.llm_model, extractive.llm_url) == ("", "")
    e5 = Settings.from_env({"RAG_PRESET": "e5-small"})
    assert (e5.embedding_model, e5.search_mode) == ("multilingual-e5-small", "dense")
    remote = Settings.from_env({"RAG_PRESET": "remote-llm"})
    assert remote.llm_url.startswith("http://") and remote.concurrency == 8
    assert remote.sources["llm_url"] == "preset remote-llm"
    assert remote.sources["top_k"] == "default"


def test_precedence_default_preset_env_flag():
    env = {"RAG_PRESET": "e5-small"}
    assert Settings.from_env(env).search_mode == "dense"
    env["RAG_SEARCH_MODE"] = "lexical"
    s = Settings.from_env(env)
    assert (s.search_mode, s.sources["search_mode"]) == ("lexical", "env RAG_SEARCH_MODE")
    s = Settings.from_env(env, search_mode="hybrid")
    assert (s.search_mode, s.sources["search_mode"]) == ("hybrid", "flag")
    assert s.embedding_model == "multilingual-e5-small"  # the preset's other values stay


def test_replace_validates_and_keeps_sources():
    s = Settings.from_env({"RAG_TOP_K": "7"})
    r = s.replace(chunk_tokens=120)
    assert (r.chunk_tokens, r.top_k, r.sources["top_k"]) == (120, 7, "env RAG_TOP_K")
    with pytest.raises(SettingsError, match="top_k"):
        s.replace(top_k=0)


def test_bad_preset_file_key_is_an_error(tmp_path, monkeypatch):
    import rag.settings as settings_module

    (tmp_path / "broken.toml").write_text("top_kk = 3\n", encoding="utf-8")
    monkeypatch.setattr(settings_module, "PRESETS_DIR", tmp_path)
    with pytest.raises(SettingsError, match=r"unknown setting.*top_kk"):
        Settings.from_env({"RAG_PRESET": "broken"})


def _run(args: list[str], **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    return subprocess.run(
        [sys.executable, *args],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=PROJECT_ROOT,
    )


@pytest.mark.parametrize(("env", "names", "allowed"), BAD)
def test_cli_stops_with_the_message(env, names, allowed):
    out = _run(["-m", "rag.cli", "search", "выборы"], **env)
    assert out.returncode != 0
    assert names in out.stderr and allowed in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize(("env", "names", "allowed"), [BAD[0], BAD[1], BAD[6]])
def test_ui_stops_with_the_message(env, names, allowed):
    out = _run(["ui.py", "--no-preload"], **env)
    assert out.returncode != 0
    assert names in out.stderr and allowed in out.stderr
    assert "Traceback" not in out.stderr


def test_rag_settings_shows_values_and_sources():
    out = _run(
        ["-m", "rag.cli", "settings", "--corpus", "/tmp/elsewhere"],
        RAG_PRESET="extractive",
        RAG_TOP_K="9",
        RAG_PASSWORD="secret",
    )
    assert out.returncode == 0, out.stderr
    text = out.stdout
    for group in ("[corpus/index]", "[retrieval]", "[answers]", "[llm]", "[ui]"):
        assert group in text
    assert "top_k" in text and "9  (env RAG_TOP_K)" in text
    assert '""  (preset extractive)' in text  # llm_model
    assert '"/tmp/elsewhere"  (flag)' in text
    assert "(default)" in text
    assert "secret" not in text

    out = _run(["-m", "rag.cli", "settings", "--json"], RAG_TOP_K="9")
    data = json.loads(out.stdout)
    assert data["retrieval"]["top_k"] == {
        "value": 9,
        "source": "env RAG_TOP_K",
        "description": data["retrieval"]["top_k"]["description"],
    }
    assert data["llm"]["llm_model"]["source"] == "default"


def test_every_setting_is_listed_in_the_settings_guide():
    """docs/settings.md groups every setting; a new one must be added there."""
    from rag.settings import PROJECT_ROOT, Settings

    guide = (PROJECT_ROOT / "docs" / "settings.md").read_text("utf-8")
    missing = [name for name in Settings.model_fields if f"`{name}`" not in guide]
    assert not missing, f"add to docs/settings.md: {missing}"
