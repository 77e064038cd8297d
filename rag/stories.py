"""Duplicate stories: exact copies and near-duplicates of one article, found at build time
and collapsed in search results.

An *exact copy* has the same text as another file once decoded or extracted (another
name, another encoding, the same text in another page): its text is identical character
for character, so it is indexed once, under one *holder* file, and a passage found there
can be shown and cited in any copy at the same offsets. A *near-duplicate* (the same wire
story under another headline, with a few words changed or a sentence dropped) keeps its
own passages, since its text differs. Near-duplicates are found with MinHash over word
shingles of the cleaned text and an LSH index (``datasketch``); the threshold was
measured with ``bench/duplicates.py`` (``docs/archives.md``).

A *story* is all files linked by either relation. Search shows one file per story: the
earliest copy (by date, then path), or the earliest one a filter admits (``--source X``
reaches X's copy), with the others listed as ``duplicates``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .corpus import Document
    from .retrieve import Hit
    from .timefilter import Filters

SHINGLE_WORDS = 3  # word 3-grams: a changed word breaks three shingles
NUM_PERM = 128  # MinHash permutations: Jaccard estimated within about ±0.09 (2 sigma)
# Estimated Jaccard at or above which two articles are one story. Syndicated and lightly
# edited copies of the corpus score 0.68-0.97, distinct articles at most 0.08
# (bench/duplicates.py, docs/archives.md).
THRESHOLD = 0.5
MIN_WORDS = 20  # shorter texts (a headline, a caption) are never grouped by similarity
SEED = 1

# stored with the stories: a build by another method finds them again
METHOD = {
    "threshold": THRESHOLD,
    "shingle_words": SHINGLE_WORDS,
    "num_perm": NUM_PERM,
    "seed": SEED,
}

_WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    """Lower-cased words, ё as е: spelling variants of one wire story compare equal."""
    return _WORD.findall(text.lower().replace("ё", "е"))


def shingles(text: str) -> set[str]:
    """The runs of ``SHINGLE_WORDS`` consecutive words of ``text``."""
    w = words(text)
    if len(w) < SHINGLE_WORDS:
        return {" ".join(w)} if w else set()
    return {" ".join(w[i : i + SHINGLE_WORDS]) for i in range(len(w) - SHINGLE_WORDS + 1)}


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def signature(text: str):
    """A MinHash of the text's shingles (``datasketch.MinHash``)."""
    from datasketch import MinHash

    minhash = MinHash(num_perm=NUM_PERM, seed=SEED)
    minhash.update_batch([s.encode() for s in shingles(text)])
    return minhash


def text_key(doc: Document) -> str:
    """Equal for exact copies: the decoded or extracted text, whatever the bytes were."""
    return hashlib.sha256(doc.original.encode("utf-8")).hexdigest()


def date_order(date: str | None, file: str) -> tuple:
    """Earliest first: full dates, then dates without a year, then undated; ties by path."""
    date = date or ""
    rank = 0 if date[:4].isdigit() else 1 if date.startswith("--") else 2
    return (rank, date, file)


@dataclass
class Stories:
    """Which files are copies of which, as stored in the build's manifest (``stories``)."""

    # each story of two or more files, earliest copy first
    groups: list[list[str]] = field(default_factory=list)
    # exact copy -> the file whose passages it shares (the holder has none of its own here)
    copies: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._story = {file: group for group in self.groups for file in group}
        self._sharing: dict[str, list[str]] = {}
        for copy, holder in self.copies.items():
            self._sharing.setdefault(holder, [holder]).append(copy)

    def to_dict(self) -> dict:
        return METHOD | {"groups": self.groups, "copies": self.copies}

    @classmethod
    def from_manifest(cls, manifest: Mapping) -> Stories:
        stored = manifest.get("stories") or {}
        return cls([list(g) for g in stored.get("groups", [])], dict(stored.get("copies", {})))

    def story(self, file: str) -> list[str]:
        """Every file of ``file``'s story, earliest first (just ``file`` when it has none)."""
        return self._story.get(file, [file])

    def holder(self, file: str) -> str:
        """The file whose passages ``file`` is shown with (itself unless an exact copy)."""
        return self.copies.get(file, file)

    def sharing(self, holder: str) -> list[str]:
        """The files shown with ``holder``'s passages: it and its exact copies."""
        return self._sharing.get(holder, [holder])

    def admitted(
        self, holder: str, documents: Mapping[str, dict], filters: Filters | None
    ) -> list[str]:
        """The files sharing ``holder``'s passages that ``filters`` let through."""
        files = self.sharing(holder)
        if not filters:
            return files
        metas = ((f, documents.get(f, {})) for f in files)
        return [f for f, meta in metas if filters.allows(meta.get("date"), meta.get("source", ""))]

    def collapse(
        self, hits: Sequence[Hit], documents: Mapping[str, dict], filters: Filters | None
    ) -> list[Hit]:
        """One file per story: the earliest copy the filters admit among those found.

        That file's passages stand in for the story; the first takes the place of the
        story's best-ranked passage, in whichever copy it was found. Other copies'
        passages are dropped (they repeat it). Each passage lists the other copies as
        ``duplicates``; ranks are renumbered from 1.
        """
        if not self.groups:
            return list(hits)
        shown: dict[str, str] = {}  # story (its earliest file) -> the file shown
        for hit in hits:
            story = self._story.get(hit.file)
            if story is None:
                continue
            for file in self.admitted(hit.file, documents, filters) or self.sharing(hit.file):
                best = shown.get(story[0])
                if best is None or story.index(file) < story.index(best):
                    shown[story[0]] = file
        first: dict[str, Hit] = {}  # story -> the shown file's best passage
        placed: set[str] = set()
        for hit in hits:
            story = self._story.get(hit.file)
            if story is not None and hit.file == self.holder(shown[story[0]]):
                first.setdefault(story[0], hit)
        out: list[Hit] = []
        for hit in hits:
            story = self._story.get(hit.file)
            if story is None:
                out.append(hit)
                continue
            key, file = story[0], shown[story[0]]
            if key not in placed:  # where the story first ranks: the shown file's best
                placed.add(key)
                out.append(self._as(first[key], file, documents))
            elif hit.file == self.holder(file) and hit is not first[key]:
                out.append(self._as(hit, file, documents))
        for rank, hit in enumerate(out, 1):
            hit.rank = rank
        return out

    def _as(self, hit: Hit, file: str, documents: Mapping[str, dict]) -> Hit:
        """``hit`` shown in ``file`` (the same passage: an exact copy has the same text)."""
        meta = documents.get(file, {})
        return replace(
            hit,
            file=file,
            title=meta.get("title", hit.title) if file != hit.file else hit.title,
            date=meta.get("date"),
            source=meta.get("source", ""),
            duplicates=tuple(duplicate_entry(f, documents) for f in self.story(file) if f != file),
        )


def stories_current(stored: Mapping | None) -> bool:
    """Whether stories stored with a build were found by this method."""
    return stored is not None and all(stored.get(k) == v for k, v in METHOD.items())


def with_copies(texts: dict[str, str], manifest: Mapping) -> dict[str, str]:
    """Article texts with each exact copy's added: its holder's, character for character."""
    copies = (manifest.get("stories") or {}).get("copies", {})
    return texts | {c: texts[h] for c, h in copies.items() if h in texts and c not in texts}


def duplicate_entry(file: str, documents: Mapping[str, dict]) -> dict:
    meta = documents.get(file, {})
    return {
        "file": file,
        "title": meta.get("title", ""),
        "date": meta.get("date"),
        "source": meta.get("source", ""),
    }


def find(docs: Sequence[Document], holders: Collection[str] = ()) -> Stories:
    """Exact copies and near-duplicates among ``docs``.

    ``holders`` are the files that held passages in the previous build: an exact copy set
    keeps such a file as its holder, so a new copy does not re-embed the story.
    """
    by_text: dict[str, list[Document]] = {}
    for doc in docs:
        by_text.setdefault(text_key(doc), []).append(doc)
    copies: dict[str, str] = {}
    holder_docs: list[Document] = []
    for same in by_text.values():
        same.sort(key=lambda d: date_order(d.date, d.file))
        kept = [d for d in same if d.file in holders]
        holder = (kept or same)[0]
        holder_docs.append(holder)
        copies.update({d.file: holder.file for d in same if d is not holder})

    parent = {doc.file: doc.file for doc in docs}

    def root(file: str) -> str:
        while parent[file] != file:
            parent[file] = parent[parent[file]]
            file = parent[file]
        return file

    for copy, holder in copies.items():
        parent[root(copy)] = root(holder)
    for a, b in similar_pairs(holder_docs):
        parent[root(a)] = root(b)

    members: dict[str, list[Document]] = {}
    for doc in docs:
        members.setdefault(root(doc.file), []).append(doc)
    groups = [
        [d.file for d in sorted(group, key=lambda d: date_order(d.date, d.file))]
        for group in members.values()
        if len(group) > 1
    ]
    groups.sort()
    return Stories(groups, dict(sorted(copies.items())))


def similar_pairs(docs: Iterable[Document]) -> list[tuple[str, str]]:
    """Pairs of files whose cleaned texts' estimated Jaccard is at least ``THRESHOLD``:
    LSH proposes candidates, their MinHashes confirm them."""
    from datasketch import MinHashLSH

    lsh = MinHashLSH(threshold=THRESHOLD, num_perm=NUM_PERM)
    signatures = {}
    pairs = []
    for doc in docs:
        text = doc.text
        if len(words(text)) < MIN_WORDS:
            continue
        minhash = signature(text)
        for other in lsh.query(minhash):
            if minhash.jaccard(signatures[other]) >= THRESHOLD:
                pairs.append((other, doc.file))
        lsh.insert(doc.file, minhash)
        signatures[doc.file] = minhash
    return pairs
