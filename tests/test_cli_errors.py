"""`rag` reports the project's own errors in one line (with -v, the traceback too) and lets
anything else, a bug, surface."""

from __future__ import annotations

import pytest

import rag.cli as cli
from rag.errors import SettingsError


def _raising(exc: Exception):
    def cmd(args):
        raise exc

    return cmd


def test_a_bug_is_not_hidden_as_an_error_line(monkeypatch):
    monkeypatch.setattr(cli, "cmd_settings", _raising(ValueError("a bug")))
    with pytest.raises(ValueError, match="a bug"):
        cli.main(["settings"])


def test_user_error_is_one_line_and_verbose_adds_the_traceback(monkeypatch, capsys):
    monkeypatch.setattr(cli, "cmd_settings", _raising(SettingsError("RAG_TOP_K='x': bad")))
    assert cli.main(["settings"]) == 1
    err = capsys.readouterr().err
    assert err == "error: RAG_TOP_K='x': bad\n"
    assert cli.main(["-v", "settings"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and err.rstrip().endswith("error: RAG_TOP_K='x': bad")


def test_bad_history_file_is_a_clear_error(tmp_path, capsys):
    history = tmp_path / "history.json"
    history.write_text("[[not json", encoding="utf-8")
    assert cli.main(["ask", "вопрос", "--history", str(history), "--no-llm"]) == 2
    err = capsys.readouterr().err
    assert "history.json" in err and "Traceback" not in err
