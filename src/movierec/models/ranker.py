"""A two-stage ranker: candidates from several generators, re-scored by LightGBM LambdaRank.

`fit(train)`:

1. carves a time-respecting window from `train` only: each person's latest `holdout`
   ratings (`leave_last_k_split` of the training data; a seeded random share when the
   data has no timestamps). `check_stage2_window` refuses a window whose ratings the
   generators also train on, or that comes before a person's other ratings (the test
   set is never seen);
2. fits every generator on the rest, takes each one's top `n_candidates` unseen movies
   per person, and describes every candidate by each generator's score, rank and
   distance from its top score, plus the context features of
   `movierec.features.ranker_features` (popularity and its trend, movie age, genre
   match, the person's activity, mean rating and time since their last rating);
3. trains a LambdaRank model on those candidates, labelled by the window's movies;
4. refits every generator and the features on all of `train` for serving.

Scores: a candidate of any generator gets the LambdaRank score; every other movie scores
below every candidate of that person (ordered by the first generator). A new person is
folded in the same way (`fold_in`): each generator folds them in, their context features
come from the movies and ratings they give, and LambdaRank scores the candidates. If `fit` gets a
validation set, it is the stage-2 window and the generators are refitted on train +
validation.

The state keeps each generator's arrays under "g{k}.", the features under "f.", and the
LightGBM model in its own text format as bytes ("lgbm", uint8): no pickle.
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar

import numpy as np
import scipy.sparse as sp

from movierec.data.dataset import Dataset
from movierec.data.split import carve_validation, concat, leave_last_k_split
from movierec.errors import CapabilityError, ConfigError, SplitError
from movierec.features.ranker_features import CONTEXT_FEATURES, RankerFeatures
from movierec.models._memory import parts_text
from movierec.models.base import Capabilities, Recommender, _seen_ratings
from movierec.models.registry import class_from_path, class_path, get_class
from movierec.models.space import Float, Int
from movierec.models._specs import model_specs
from movierec.training.options import RuntimeOptions

#: default generators: fast on two cores and different in kind (recency-aware item-item,
#: item-item, factors, popularity); two-tower is left out as slow on few cores
DEFAULT_GENERATORS: list[list] = [["seq-ease", {}], ["ease", {}], ["als", {}], ["pop", {}]]

#: users scored per batch (each generator scores every movie for a batch)
_BATCH = 256


def check_stage2_window(fit_part: Dataset, window: Dataset) -> None:
    """Refuse a stage-2 window that leaks: a (person, movie) pair the generators train on,
    or (with timestamps) a window rating older than that person's latest training rating.

    Args:
        fit_part: the interactions the generators are fitted on for stage 2.
        window: the interactions that label the stage-2 candidates (same IdMaps).

    Raises:
        SplitError: when the window overlaps the generators' data or runs backwards in time.
    """
    n_items = fit_part.n_items
    fit_keys = fit_part.user_idx.astype(np.int64) * n_items + fit_part.item_idx
    win_keys = window.user_idx.astype(np.int64) * n_items + window.item_idx
    if np.isin(win_keys, fit_keys).any():
        raise SplitError("The ranker's stage-2 window shares ratings with its generators' training data; "
                         "carve the window from the training data's latest ratings only.")
    if fit_part.has_timestamps and window.has_timestamps and window.n_ratings:
        last = np.full(fit_part.n_users, np.iinfo(np.int64).min)
        np.maximum.at(last, fit_part.user_idx, fit_part.timestamp.astype(np.int64))
        if (window.timestamp.astype(np.int64) < last[window.user_idx]).any():
            raise SplitError("The ranker's stage-2 window holds ratings older than the same person's training "
                             "ratings; take each person's latest ratings as the window.")


class Ranker(Recommender):
    """Two-stage ranker: several generators' candidates re-scored by LightGBM LambdaRank.

    Args:
        generators: candidate generators as [registered name, hyperparameters] pairs
            (default: seq-ease, ease, als and pop with their defaults); a generator that takes a
            seed and is not given one gets `seed`.
        n_candidates: movies each generator proposes per person.
        holdout: how many of each person's latest training ratings label stage 2 (data
            without timestamps: a seeded random 10% of the ratings instead).
        n_estimators: boosting rounds of the LambdaRank model.
        learning_rate: its shrinkage.
        num_leaves: leaves per tree.
        min_child_samples: fewest candidates in a leaf.
        graded: label a window movie the person liked (rating at or above
            `liked_threshold()`) 2, any other window movie 1; False: every one 1.
        seed: seeds LightGBM (run deterministically on one thread) and the generators.
    """

    name: ClassVar[str] = "ranker"
    capabilities = Capabilities(fold_in=True, dislikes=True)
    # the second stage's settings only; generators keep the hyperparameters they are given
    search_space = {
        "n_candidates": Int(50, 300, log=True),
        "n_estimators": Int(50, 500, log=True),
        "learning_rate": Float(0.01, 0.2, log=True),
        "num_leaves": Int(7, 63, log=True),
    }

    def __init__(
        self,
        generators: list | None = None,
        n_candidates: int = 200,
        holdout: int = 2,
        n_estimators: int = 300,
        learning_rate: float = 0.03,
        num_leaves: int = 7,
        min_child_samples: int = 100,
        graded: bool = False,
        seed: int = 42,
    ):
        self.generators = generators
        self.n_candidates = n_candidates
        self.holdout = holdout
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.graded = graded
        self.seed = seed

    # -- helpers ----------------------------------------------------------------------
    def _specs(self) -> list[tuple[str, dict]]:
        out = model_specs(DEFAULT_GENERATORS if self.generators is None else self.generators,
                          "A ranker needs at least one candidate generator.")
        if any(name == self.name for name, _ in out):
            raise ConfigError("A ranker cannot use itself as a candidate generator; name other models.")
        return out

    def _new_generators(self) -> list[Recommender]:
        gens = []
        for name, params in self._specs():
            cls = get_class(name)
            if "seed" in cls.default_params() and "seed" not in params:
                params = {**params, "seed": self.seed}
            try:
                gens.append(cls(**params))
            except TypeError as exc:
                raise ConfigError(f"Bad parameters for ranker generator {name!r}: {exc}.") from None
        return gens

    def _generator_runtime(self) -> RuntimeOptions:
        """The generators' runtime options: this fit's (device, threads, progress, the
        distributed run), with the ranker's seed (torch generators)."""
        return (self.runtime_ or RuntimeOptions()).with_seed(int(self.seed))

    def memory_estimate(self, n_users: int, n_items: int, n_ratings: int) -> int | None:
        """Twice the sum of the generators' estimates (the stage-2 fit's generators are
        still held while the served ones refit on every rating; one without an estimate
        counts 0), plus stage 2: per batch of `_BATCH` people two float64 (people x movies)
        arrays per generator and the candidate pool, and the candidate features (float32,
        `n_candidates` per person and generator for every person: an upper bound of the
        rows kept, room for the copy that concatenating them makes)."""
        gens = self._new_generators()
        parts = [gen.memory_estimate(n_users, n_items, n_ratings) for gen in gens]
        n_features = len(self.feature_names())
        batch = min(_BATCH, n_users) * n_items * (16 * len(gens) + 9)
        features = n_users * int(self.n_candidates) * len(gens) * n_features * 4
        return 2 * sum(p or 0 for p in parts) + batch + features

    def _memory_what(self, n_users: int, n_items: int, n_ratings: int) -> str:
        return (f"to fit {n_ratings:,} ratings of {n_users:,} users and {n_items:,} movies with its generators "
                f"({parts_text(self._new_generators(), n_users, n_items, n_ratings)}; each held twice)")

    def _too_big_advice(self) -> str:
        return ('give it generators with smaller state, e.g. generators=[["ease", {"max_items": 10000}], '
                '["als", {}], ["pop", {}]], or use one of them alone')

    def _check_params(self) -> None:
        if isinstance(self.n_candidates, bool) or not isinstance(self.n_candidates, (int, np.integer)) \
                or self.n_candidates < 1:
            raise ConfigError(f"n_candidates must be a positive whole number, got {self.n_candidates!r}.")
        if isinstance(self.holdout, bool) or not isinstance(self.holdout, (int, np.integer)) or self.holdout < 1:
            raise ConfigError(f"holdout must be a positive whole number of ratings per person, got {self.holdout!r}.")
        if isinstance(self.n_estimators, bool) or not isinstance(self.n_estimators, (int, np.integer)) \
                or self.n_estimators < 1:
            raise ConfigError(f"n_estimators must be a positive whole number, got {self.n_estimators!r}.")

    def feature_names(self) -> list[str]:
        """The stage-2 feature columns, in order (per generator: score, rank, gap to its top)."""
        cols = []
        for k, (name, _) in enumerate(self._specs()):
            cols += [f"g{k}_{name}_score", f"g{k}_{name}_rank", f"g{k}_{name}_gap"]
        return cols + list(CONTEXT_FEATURES)

    def _stage2_window(self, train: Dataset) -> tuple[Dataset, Dataset]:
        """(generators' data, labelling window) carved from `train` only."""
        if train.has_timestamps:
            split = leave_last_k_split(train, k=self.holdout, validation_k=0, min_train=2)
            return split.train, split.test
        return carve_validation(train, 0.1, self.seed)

    @staticmethod
    def _candidates(gens: list[Recommender], feats: RankerFeatures, seen: sp.csr_matrix, user_idx: np.ndarray,
                    n_candidates: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Candidates of a batch of users and their features.

        Returns:
            (rows, items, x, first) with rows (positions in `user_idx`) and items (item
            indices) of every candidate, shape (c,), sorted by row; x float32, shape
            (c, p), the stage-2 features; first, shape (n, n_items), the first
            generator's scores with seen movies at -inf (the order of non-candidates).
        """
        n, m = len(user_idx), seen.shape[1]
        seen_rows = seen[user_idx]
        seen_mask = np.zeros((n, m), dtype=bool)
        seen_mask[np.repeat(np.arange(n), np.diff(seen_rows.indptr)), seen_rows.indices] = True
        users = np.asarray(user_idx)
        return Ranker._pool([gen.score_indices(user_idx) for gen in gens], seen_mask,
                            lambda rows, items: feats.pairs(users[rows], items), n_candidates)

    @staticmethod
    def _pool(gen_scores: list[np.ndarray], seen_mask: np.ndarray, context: Callable[[np.ndarray, np.ndarray],
              np.ndarray], n_candidates: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Candidates and their features from each generator's scores (see `_candidates`).

        Args:
            gen_scores: each generator's scores of every movie, shape (n, n_items) each.
            seen_mask: bool, shape (n, n_items): movies the people already have (never candidates).
            context: (rows, items) -> the context features of those candidates, shape (c, 10).
            n_candidates: movies each generator proposes per person.
        """
        n, m = seen_mask.shape
        top = min(n_candidates, m)
        pool = np.zeros((n, m), dtype=bool)
        per_gen = []
        first = None
        for scores in gen_scores:
            s = np.array(scores, dtype=np.float64)  # a copy: a generator may hand out its own array
            s[seen_mask] = -np.inf
            if first is None:
                first = s
            part = np.argpartition(-s, top - 1, axis=1)[:, :top] if top < m else np.tile(np.arange(m), (n, 1))
            part_scores = np.take_along_axis(s, part, axis=1)
            order = np.argsort(-part_scores, axis=1, kind="stable")
            part = np.take_along_axis(part, order, axis=1)
            part_scores = np.take_along_axis(part_scores, order, axis=1)
            rank = np.full((n, m), float(top), dtype=np.float64)
            np.put_along_axis(rank, part, np.broadcast_to(np.arange(top, dtype=np.float64), part.shape), axis=1)
            finite = np.isfinite(part_scores)
            rows_in = np.repeat(np.arange(n), top).reshape(n, top)
            pool[rows_in[finite], part[finite]] = True
            best = np.where(np.isfinite(part_scores[:, 0]), part_scores[:, 0], np.nan)
            per_gen.append((s, rank, best))
        rows, items = np.nonzero(pool)
        cols = []
        for s, rank, best in per_gen:
            score = s[rows, items]
            score = np.where(np.isfinite(score), score, np.nan)
            cols += [score, rank[rows, items], best[rows] - score]
        x = np.concatenate([np.stack(cols, axis=1).astype(np.float32), context(rows, items)], axis=1)
        assert first is not None
        return rows, items, x, first

    # -- fitting ----------------------------------------------------------------------
    def _fit(self, train: Dataset, validation: Dataset | None) -> None:
        try:
            import lightgbm as lgb
        except ImportError:  # pragma: no cover - lightgbm is a declared dependency
            raise ConfigError("The ranker needs LightGBM; install it with `pip install lightgbm`.") from None
        self._check_params()
        gens = self._new_generators()  # bad generator names or parameters fail before any work
        if validation is not None and validation.n_ratings:
            fit_part, window, full = train, validation, concat(train, validation)
        else:
            fit_part, window = self._stage2_window(train)
            full = train
        check_stage2_window(fit_part, window)
        for gen in gens:
            gen.fit(fit_part, runtime=self._generator_runtime())
            # what each generator really learnt from must not hold a window rating either
            if np.asarray(gen.seen_[window.user_idx, window.item_idx]).any():
                raise SplitError(f"The ranker's stage-2 window shares ratings with its generator {gen.name!r}'s "
                                 f"training data; fit the generators on the data before the window only.")
        feats = RankerFeatures.fit(fit_part)
        seen = fit_part.to_csr("ones")
        users = np.unique(window.user_idx[np.diff(seen.indptr)[window.user_idx] > 0]).astype(np.int64)
        # labels: 1 for a window movie, 2 for one the person liked (graded, as NDCG is)
        liked = self.liked_threshold() if self.graded else None
        grade = np.ones(window.n_ratings, dtype=np.float32)
        if liked is not None:
            grade += window.rating >= liked
        held = sp.csr_matrix((grade, (window.user_idx, window.item_idx)), shape=(window.n_users, window.n_items))
        held.sum_duplicates()
        xs, ys, groups, found = [], [], [], 0
        for start in range(0, len(users), _BATCH):
            batch = users[start:start + _BATCH]
            rows, items, x, _ = self._candidates(gens, feats, seen, batch, self.n_candidates)
            y = np.asarray(held[batch[rows], items]).ravel()
            counts = np.bincount(rows, minlength=len(batch))
            positives = np.bincount(rows, weights=y > 0, minlength=len(batch))
            keep_rows = positives > 0  # a group without a relevant movie teaches LambdaRank nothing
            keep = keep_rows[rows]
            xs.append(x[keep])
            ys.append(np.minimum(y[keep], 2.0).astype(np.float32))
            groups.append(counts[keep_rows])
            found += int(keep_rows.sum())
        x_all = np.concatenate(xs) if xs else np.zeros((0, len(self.feature_names())), np.float32)
        y_all = np.concatenate(ys) if ys else np.zeros(0, np.float32)
        if not found:
            raise ConfigError("No generator proposed any movie of the ranker's stage-2 window; "
                              "raise n_candidates or add generators.")
        params = {
            "objective": "lambdarank", "learning_rate": float(self.learning_rate),
            "num_leaves": int(self.num_leaves), "min_data_in_leaf": int(self.min_child_samples),
            "lambdarank_truncation_level": 20, "seed": int(self.seed), "deterministic": True,
            "force_row_wise": True, "num_threads": 1, "verbose": -1,
        }
        data = lgb.Dataset(x_all, label=y_all, group=np.concatenate(groups), feature_name=self.feature_names(),
                           free_raw_data=True)
        booster = lgb.train(params, data, num_boost_round=int(self.n_estimators))
        text = booster.model_to_string()
        # serve the model read back from its text form: a bundle then scores exactly as the fit
        self.booster_ = lgb.Booster(model_str=text)
        self.model_text_ = text
        self.stage2_ = {
            "fit_ratings": int(fit_part.n_ratings), "window_ratings": int(window.n_ratings),
            "window_users": int(len(users)), "groups_with_a_hit": found, "candidates": int(len(y_all)),
            "window_end": int(window.timestamp.max()) if window.n_ratings else None,
        }
        # serve from every training interaction
        self.generators_: list[Recommender] = []
        for gen in self._new_generators():
            gen.fit(full, runtime=self._generator_runtime())
            self.generators_.append(gen)
        self.features_ = RankerFeatures.fit(full)
        if full is not train:  # the given validation ratings are seen too, as the generators see them
            self.seen_ = full.to_csr("ones")
            self.seen_ratings_ = _seen_ratings(full, self.seen_)

    def feature_importance(self) -> dict[str, float]:
        """Total gain of each stage-2 feature (name -> gain), for reports."""
        self._check_fitted()
        gains = self.booster_.feature_importance(importance_type="gain")
        return {name: float(g) for name, g in zip(self.feature_names(), gains)}

    # -- queries ----------------------------------------------------------------------
    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        self._check_fitted()
        user_idx = np.asarray(user_idx, np.int64)
        m = len(self.items_)
        out = np.empty((len(user_idx), m), dtype=np.float32)
        for start in range(0, len(user_idx), _BATCH):
            batch = user_idx[start:start + _BATCH]
            out[start:start + len(batch)] = self._stage2_scores(*self._candidates(
                self.generators_, self.features_, self.seen_, batch, self.n_candidates))
        return out

    def _stage2_scores(self, rows: np.ndarray, items: np.ndarray, x: np.ndarray, first: np.ndarray) -> np.ndarray:
        """Every movie's score for a batch of people, shape (n, n_items), from their
        candidates (`_pool`'s output): LambdaRank's score for a candidate; every other
        movie below every candidate of the person, in the first generator's order."""
        n, m = first.shape
        pred = self.booster_.predict(x, num_threads=1) if len(rows) else np.zeros(0)
        order = np.argsort(np.argsort(-np.nan_to_num(first, nan=-np.inf, posinf=np.inf), axis=1, kind="stable"),
                           axis=1, kind="stable")
        floor = np.zeros(n)
        if len(rows):
            low = np.full(n, np.inf)
            np.minimum.at(low, rows, pred)
            floor = np.where(np.isfinite(low), low, 0.0)
        block = floor[:, None] - 1.0 - order / max(m, 1)
        block[rows, items] = pred
        return block

    def _fold_in(self, item_idx: np.ndarray, ratings: np.ndarray | None,
                 liked: np.ndarray) -> tuple[np.ndarray, None]:
        """A new person's scores: each generator folds them in (a generator without
        `dislikes` sees only the liked movies and proposes nothing without one), the
        stage-2 context comes from the movies and ratings given
        (`RankerFeatures.new_person_pairs`), and LambdaRank scores the candidates.

        Raises:
            CapabilityError: a generator that cannot fold in a new person.
        """
        self._check_fitted()
        m = len(self.items_)
        gen_scores = []
        for (name, _), gen in zip(self._specs(), self.generators_):
            if not gen.capabilities.fold_in:
                raise CapabilityError(f"The ranker's generator {name!r} cannot fold in a new person, so neither can "
                                      "the ranker; train it with generators that can (such as ease, als and pop).")
            if gen.capabilities.dislikes:
                scores, _ = gen._fold_in(item_idx, ratings, liked)
            elif liked.any():
                scores, _ = gen._fold_in(item_idx[liked], None if ratings is None else ratings[liked], liked[liked])
            else:
                scores = np.full(m, -np.inf)
            gen_scores.append(np.asarray(scores, dtype=np.float64).reshape(1, m))
        seen_mask = np.zeros((1, m), dtype=bool)
        seen_mask[0, item_idx] = True
        pool = self._pool(gen_scores, seen_mask,
                          lambda rows, items: self.features_.new_person_pairs(item_idx, ratings, items),
                          self.n_candidates)
        return self._stage2_scores(*pool)[0], None

    # -- persistence ------------------------------------------------------------------
    def _meta(self) -> dict[str, Any]:
        return {
            "generators": [
                {"name": name, "class": class_path(gen), "params": gen.get_params(), "meta": gen._meta()}
                for (name, _), gen in zip(self._specs(), self.generators_)
            ],
            "features": self.feature_names(),
            "stage2": getattr(self, "stage2_", {}),
        }

    def _set_meta(self, meta: dict[str, Any]) -> None:
        # called by `load_state_dict` after the ID maps, seen matrix and scale are set
        self.generators_ = []
        for spec in meta.get("generators", []):
            gen = class_from_path(spec["class"])(**spec["params"])
            for attr in ("users_", "items_", "seen_", "seen_ratings_", "rating_scale_"):
                setattr(gen, attr, getattr(self, attr, None))
            gen._set_meta(spec.get("meta", {}))
            self.generators_.append(gen)
        self.stage2_ = meta.get("stage2", {})

    def _state(self) -> dict[str, np.ndarray]:
        state = {"lgbm": np.frombuffer(self.model_text_.encode("utf-8"), dtype=np.uint8).copy()}
        for key, value in self.features_.state().items():
            state[f"f.{key}"] = value
        for k, gen in enumerate(self.generators_):
            for key, value in gen._state().items():
                state[f"g{k}.{key}"] = value
        return state

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        import lightgbm as lgb

        self.model_text_ = bytes(np.asarray(state["lgbm"], dtype=np.uint8)).decode("utf-8")
        self.booster_ = lgb.Booster(model_str=self.model_text_)
        self.features_ = RankerFeatures.from_state({k[2:]: v for k, v in state.items() if k.startswith("f.")})
        for k, gen in enumerate(self.generators_):
            prefix = f"g{k}."
            gen._set_state({key[len(prefix):]: v for key, v in state.items() if key.startswith(prefix)})


__all__ = ["DEFAULT_GENERATORS", "Ranker", "check_stage2_window"]
