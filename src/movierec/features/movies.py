"""Movie features fitted on a training Dataset: genres, release year, title text, tags, popularity.

`MovieFeatures.fit(train)` learns every encoder from the training data only: the genre
vocabulary and year statistics from the catalog, the text encoders from the titles (and
tags) of movies with at least one training interaction, popularity from the training
interactions. Its `matrix` (n_items, n_features) holds the features of every catalog movie
in item index order; `encode(titles, years, genres, tags)` gives the same columns for
movies described by metadata only (popularity 0, as for a movie nobody has rated).

Columns, in order: genre multi-hot | year (scaled, unknown flag, decade one-hot) | title
text (`text_dim`, L2-normalised) | tags (`tag_dim` + a has-tags flag, when the dataset has
tags and `use_tags`) | popularity (log1p(count) / log1p(max count)).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from movierec.data.dataset import Dataset
from movierec.errors import ConfigError
from movierec.features.text import TEXT_ENCODERS, MiniLMText, TfidfSvdText, text_encoder_from_state

#: decade buckets of the year features: [<1930, 1930s, ..., 2010s, >=2020]
DECADE_EDGES = np.arange(1930, 2030, 10)


@dataclass
class MovieFeatures:
    """Fitted movie feature encoders and the feature matrix of the catalog.

    Attributes:
        genre_names: genre vocabulary (multi-hot column order).
        year_mean, year_std: statistics of the known release years of training movies.
        text: the title encoder (None for text_encoder="none").
        tags: the tag encoder (None when unused).
        max_log_count: log1p of the largest training interaction count.
        matrix: float32, shape (n_items, n_features): every catalog movie's features.
    """

    genre_names: list[str]
    year_mean: float
    year_std: float
    text: TfidfSvdText | MiniLMText | None
    tags: TfidfSvdText | None
    max_log_count: float
    matrix: np.ndarray = field(repr=False)

    @property
    def n_features(self) -> int:
        return int(self.matrix.shape[1])

    @property
    def genre_columns(self) -> slice:
        """Where the genre multi-hot sits in `matrix`."""
        return slice(0, len(self.genre_names))

    @classmethod
    def fit(cls, train: Dataset, text_encoder: str = "tfidf", text_dim: int = 32, use_tags: bool = True,
            tag_dim: int = 16, text_model_path: str | None = None, seed: int = 0) -> "MovieFeatures":
        """Fit every encoder on `train` and encode its whole catalog.

        Args:
            train: the training Dataset (its catalog covers every item index).
            text_encoder: "tfidf", "minilm" or "none".
            text_dim: columns of the title text features.
            use_tags: use the catalog's tags when it has them.
            tag_dim: columns of the tag features.
            text_model_path: local sentence-transformers folder for "minilm".
            seed: seed of the SVDs.

        Raises:
            ConfigError: an unknown text encoder, or "minilm" without its packages.
        """
        if text_encoder not in TEXT_ENCODERS:
            raise ConfigError(f"text_encoder must be one of {', '.join(TEXT_ENCODERS)}, got {text_encoder!r}.")
        catalog = train.catalog
        counts = train.item_counts()
        trained = counts > 0  # the movies whose metadata the encoders may learn from
        known = trained & (catalog.years > 0)
        years = catalog.years[known].astype(np.float64)
        year_mean = float(years.mean()) if len(years) else 0.0
        year_std = float(years.std()) if len(years) > 1 and years.std() > 0 else 1.0
        titles = [str(t) for t in catalog.titles]
        text = None
        embedded = None
        if text_encoder == "tfidf":
            text = TfidfSvdText(text_dim, seed=seed).fit([t for t, k in zip(titles, trained) if k])
        elif text_encoder == "minilm":
            text = MiniLMText(text_dim, text_model_path)
            embedded = text.embed(titles)  # the whole catalog once; the PCA sees training movies only
            text.fit_embedded(embedded[trained])
        tags = None
        if use_tags and catalog.tags is not None:
            tag_texts = [t for t, k in zip(catalog.tags, trained) if k and t]
            if tag_texts:
                tags = TfidfSvdText(tag_dim, min_df=2, seed=seed, analyzers=("word",)).fit(tag_texts)
                if tags.out_dim == 0:
                    tags = None
        out = cls(list(catalog.genre_names), year_mean, year_std, text, tags,
                  float(np.log1p(max(int(counts.max()) if len(counts) else 0, 1))), np.zeros((0, 0), np.float32))
        text_cols = text.reduce(embedded) if embedded is not None else None
        out.matrix = out._encode(titles, catalog.years, catalog.genre_matrix.astype(np.float32),
                                 catalog.tags, counts, text_cols)
        return out

    # -- encoding ---------------------------------------------------------------------------
    def _encode(self, titles: Sequence[str], years: np.ndarray, genre_matrix: np.ndarray,
                tags: Sequence[str] | None, counts: np.ndarray, text_cols: np.ndarray | None = None) -> np.ndarray:
        n = len(titles)
        years = np.asarray(years, dtype=np.float64)
        known = years > 0
        scaled = np.where(known, (years - self.year_mean) / self.year_std, 0.0)
        decade = np.zeros((n, len(DECADE_EDGES) + 1), dtype=np.float32)
        decade[np.flatnonzero(known), np.searchsorted(DECADE_EDGES, years[known], side="right")] = 1.0
        blocks = [genre_matrix.astype(np.float32), scaled[:, None].astype(np.float32),
                  (~known).astype(np.float32)[:, None], decade]
        if self.text is not None:
            blocks.append(text_cols if text_cols is not None else self.text.transform(list(titles)))
        if self.tags is not None:
            texts = list(tags) if tags is not None else [""] * n
            blocks.append(self.tags.transform(texts))
            blocks.append(np.array([[1.0 if t else 0.0] for t in texts], dtype=np.float32).reshape(n, 1))
        pop = np.log1p(np.asarray(counts, dtype=np.float64)) / self.max_log_count
        blocks.append(pop.astype(np.float32)[:, None])
        return np.ascontiguousarray(np.hstack(blocks), dtype=np.float32)

    def genre_multi_hot(self, genres: Sequence[Sequence[str]]) -> np.ndarray:
        """Multi-hot rows over `genre_names`, shape (n, n_genres); unknown genres are ignored."""
        col = {g: j for j, g in enumerate(self.genre_names)}
        out = np.zeros((len(genres), len(self.genre_names)), dtype=np.float32)
        for row, gl in enumerate(genres):
            for g in gl or []:
                if g in col:
                    out[row, col[g]] = 1.0
        return out

    def encode(self, titles: Sequence[str], years: Sequence[int] | np.ndarray, genres: Sequence[Sequence[str]],
               tags: Sequence[str] | None = None) -> np.ndarray:
        """Features of movies described by metadata only (popularity 0), shape (n, n_features).

        Args:
            titles: titles without the year suffix, shape (n,).
            years: release years (<= 0 or None: unknown), shape (n,).
            genres: one list of genre names per movie.
            tags: one tag text per movie (tags joined by " ; "), or None.

        Raises:
            ConfigError: for inputs of different lengths.
        """
        titles = ["" if t is None else str(t) for t in titles]
        n = len(titles)
        years_arr = np.array([-1 if y is None else int(y) for y in np.asarray(years, dtype=object).ravel()],
                             dtype=np.int64)
        if len(years_arr) != n or len(genres) != n or (tags is not None and len(tags) != n):
            raise ConfigError(f"Give one title, year, genre list (and tag text) per movie: {n} titles, "
                              f"{len(years_arr)} years, {len(genres)} genre lists.")
        return self._encode(titles, years_arr, self.genre_multi_hot(genres), tags, np.zeros(n))

    # -- state ---------------------------------------------------------------------------
    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """(numeric arrays, JSON meta) that `from_state` restores."""
        arrays: dict[str, np.ndarray] = {"matrix": self.matrix}
        meta: dict[str, Any] = {"genre_names": self.genre_names, "year_mean": self.year_mean,
                                "year_std": self.year_std, "max_log_count": self.max_log_count}
        for key, enc in (("text", self.text), ("tags", self.tags)):
            if enc is not None:
                enc_arrays, meta[key] = enc.state()
                arrays.update({f"{key}.{k}": v for k, v in enc_arrays.items()})
        return arrays, meta

    @classmethod
    def from_state(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> "MovieFeatures":
        def sub(key: str):
            if key not in meta:
                return None
            part = {k[len(key) + 1:]: v for k, v in arrays.items() if k.startswith(key + ".")}
            return text_encoder_from_state(part, meta[key])

        return cls(list(meta["genre_names"]), float(meta["year_mean"]), float(meta["year_std"]), sub("text"),
                   sub("tags"), float(meta["max_log_count"]), np.asarray(arrays["matrix"], dtype=np.float32))


__all__ = ["MovieFeatures", "DECADE_EDGES"]
