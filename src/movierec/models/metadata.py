"""What each built-in model declares, readable without importing the model classes.

`movierec models available` lists every model's kind, capabilities, parameters and
search space. Reading them from the classes imports every model module, torch (NeuMF)
and scikit-learn (two-tower's features) included: seconds. This module holds the same
facts as plain values (`BUILT_IN`), so the listing imports none of them.

The facts are the classes' own: `class_info(name, cls)` reads them from a class, and a
test (tests/test_progress.py) checks that `BUILT_IN` matches every registered class. When
a model changes, paste the entry that test prints (`entry_source(class_info(...))`).
A model registered at run time (`movierec.models.register`) is read from its class.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from movierec.models.space import Categorical, Distribution, Float, Int

if TYPE_CHECKING:
    from movierec.models.base import Recommender


@dataclass(frozen=True)
class ModelInfo:
    """A registered model's declared facts.

    Attributes:
        name: the registry name, e.g. "mf".
        target: "module:Class" of the model class.
        kind: "rating" (predicts ratings) or "ranking".
        summary: the first paragraph of the class docstring, on one line.
        capabilities: the declared capability names (`Capabilities.names()`).
        params: constructor parameters and their defaults (`default_params()`).
        search_space: the declared tunable parameters (`search_space`).
    """

    name: str
    target: str
    kind: str
    summary: str
    capabilities: tuple[str, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)
    search_space: dict[str, Distribution] = field(default_factory=dict)


def class_info(name: str, cls: type[Recommender]) -> ModelInfo:
    """The facts `cls` (registered as `name`) declares, read from the class itself."""
    doc = (cls.__doc__ or "").strip().split("\n\n")[0]  # the first paragraph
    return ModelInfo(name=name, target=f"{cls.__module__}:{cls.__name__}",
                     kind="rating" if cls.capabilities.predicts_ratings else "ranking",
                     summary=" ".join(doc.split()), capabilities=tuple(cls.capabilities.names()),
                     params=dict(cls.default_params()), search_space=dict(cls.search_space or {}))


def entry_source(info: ModelInfo) -> str:
    """`info` as the Python source of its `BUILT_IN` entry (one parameter a line)."""

    def mapping(values: dict[str, Any]) -> str:
        if not values:
            return "{}"
        return "{\n" + "".join(f"            {k!r}: {v!r},\n" for k, v in values.items()) + "        }"

    return "\n".join([f"    {info.name!r}: ModelInfo(",
                      f"        name={info.name!r},",
                      f"        target={info.target!r},",
                      f"        kind={info.kind!r},",
                      f"        summary={info.summary!r},",
                      f"        capabilities={info.capabilities!r},",
                      f"        params={mapping(info.params)},",
                      f"        search_space={mapping(info.search_space)},",
                      "    ),"])


#: registry name -> declared facts of every built-in model (kept equal to the classes by a test)
BUILT_IN: dict[str, ModelInfo] = {
    'als': ModelInfo(
        name='als',
        target='movierec.models.implicit_models:ALS',
        kind='ranking',
        summary='Implicit-feedback ALS (Hu, Koren & Volinsky 2008) via `implicit.cpu.als`.',
        capabilities=('embeddings', 'similar_items', 'fold_in'),
        params={
            'factors': 64,
            'regularization': 0.05,
            'alpha': 10.0,
            'iterations': 15,
            'values': 'ones',
            'use_cg': True,
            'num_threads': 0,
            'seed': 42,
        },
        search_space={
            'factors': Categorical(choices=[32, 64, 128, 256]),
            'regularization': Float(low=0.001, high=100.0, log=True),
            'alpha': Float(low=0.1, high=100.0, log=True),
            'iterations': Int(low=5, high=30, log=False, step=1),
            'values': Categorical(choices=['ones', 'rating']),
        },
    ),
    'als-spark': ModelInfo(
        name='als-spark',
        target='movierec.models.als_spark:SparkALS',
        kind='ranking',
        summary='ALS fitted by Apache Spark MLlib (`pyspark.ml.recommendation.ALS`), on one machine or a cluster.',
        capabilities=('embeddings', 'similar_items', 'fold_in'),
        params={
            'factors': 64,
            'regularization': 0.05,
            'alpha': 10.0,
            'iterations': 15,
            'values': 'ones',
            'implicit_prefs': True,
            'seed': 42,
            'master': None,
            'driver_memory': '1g',
        },
        search_space={
            'factors': Categorical(choices=[32, 64, 128]),
            'regularization': Float(low=0.001, high=1.0, log=True),
            'alpha': Float(low=0.1, high=100.0, log=True),
            'iterations': Int(low=5, high=30, log=False, step=1),
        },
    ),
    'autorec': ModelInfo(
        name='autorec',
        target='movierec.models.autorec:AutoRec',
        kind='rating',
        summary='Item-based AutoRec rating model.',
        capabilities=('predicts_ratings',),
        params={
            'hidden': 500,
            'weight_decay': 150.0,
            'lr': 0.001,
            'epochs': 300,
            'patience': 10,
            'batch_size': 128,
            'validation_fraction': 0.05,
            'refit': True,
            'n_models': 1,
            'bias_reg': 5.0,
        },
        search_space={
            'hidden': Categorical(choices=[300, 500, 700]),
            'weight_decay': Float(low=30.0, high=600.0, log=True),
            'lr': Float(low=0.0003, high=0.003, log=True),
        },
    ),
    'bias': ModelInfo(
        name='bias',
        target='movierec.models.bias:BiasOnly',
        kind='rating',
        summary='r̂(u, i) = μ + b_u + b_i with ridge-regularised biases, solved by alternating closed-form updates (each step is the exact minimiser for one side given the other).',
        capabilities=('predicts_ratings', 'fold_in', 'dislikes'),
        params={
            'reg_user': 5.0,
            'reg_item': 5.0,
            'n_iter': 15,
        },
        search_space={
            'reg_user': Float(low=0.1, high=50.0, log=True),
            'reg_item': Float(low=0.1, high=50.0, log=True),
        },
    ),
    'blend': ModelInfo(
        name='blend',
        target='movierec.models.blend:Blend',
        kind='rating',
        summary='Validation-fitted linear blend of rating models.',
        capabilities=('predicts_ratings',),
        params={
            'models': None,
            'val_fraction': 0.1,
            'ridge': 1.0,
            'meta_features': False,
            'seed': 42,
        },
        search_space={
            'ridge': Float(low=0.01, high=100.0, log=True),
            'meta_features': Categorical(choices=[True, False]),
        },
    ),
    'bpmf': ModelInfo(
        name='bpmf',
        target='movierec.models.bayesian_mf:BayesianMF',
        kind='rating',
        summary='BPMF with biases, fitted by Gibbs sampling; predictions average the samples.',
        capabilities=('predicts_ratings', 'similar_items', 'fold_in', 'dislikes'),
        params={
            'dim': 10,
            'burn_in': 30,
            'samples': 170,
            'alpha': 2.0,
            'sample_alpha': True,
            'beta0': 2.0,
            'biases': True,
            'init_std': 0.1,
            'seed': 42,
        },
        search_space={
            'dim': Categorical(choices=[8, 10, 16, 24, 32]),
            'alpha': Float(low=1.0, high=3.0, log=False),
            'samples': Categorical(choices=[100, 200, 300]),
        },
    ),
    'bpr': ModelInfo(
        name='bpr',
        target='movierec.models.implicit_models:BPR',
        kind='ranking',
        summary='Bayesian Personalized Ranking (Rendle et al. 2009) via `implicit.cpu.bpr`.',
        capabilities=('embeddings', 'similar_items', 'fold_in'),
        params={
            'factors': 64,
            'learning_rate': 0.05,
            'regularization': 0.01,
            'iterations': 100,
            'values': 'ones',
            'num_threads': 1,
            'seed': 42,
        },
        search_space={
            'factors': Categorical(choices=[32, 64, 128]),
            'learning_rate': Float(low=0.001, high=0.2, log=True),
            'regularization': Float(low=1e-05, high=0.1, log=True),
            'iterations': Int(low=20, high=300, log=True, step=1),
        },
    ),
    'ease': ModelInfo(
        name='ease',
        target='movierec.models.ease:EASE',
        kind='ranking',
        summary='EASE item-item model.',
        capabilities=('similar_items', 'fold_in', 'dislikes'),
        params={
            'regularization': 250.0,
            'values': 'ones',
            'min_item_count': 1,
            'max_items': 20000,
        },
        search_space={
            'regularization': Float(low=1.0, high=5000.0, log=True),
        },
    ),
    'genre-pop': ModelInfo(
        name='genre-pop',
        target='movierec.models.genre_pop:GenrePop',
        kind='ranking',
        summary='Genre preference x movie genres, plus (genre) popularity; ranks movies with no ratings.',
        capabilities=('embeddings', 'fold_in'),
        params={
            'pop_weight': 1.0,
            'smoothing': 5.0,
            'min_rating': None,
        },
        search_space={
            'pop_weight': Float(low=0.001, high=10.0, log=True),
            'smoothing': Float(low=0.1, high=100.0, log=True),
        },
    ),
    'global-mean': ModelInfo(
        name='global-mean',
        target='movierec.models.bias:GlobalMean',
        kind='rating',
        summary='Predicts the mean training rating for every (user, movie) pair.',
        capabilities=('predicts_ratings',),
        params={},
        search_space={},
    ),
    'id-order': ModelInfo(
        name='id-order',
        target='movierec.models.baselines:IdOrderRecommender',
        kind='ranking',
        summary='Ranks movies by raw movie ID, lowest first: the same list for everyone, learned from nothing.',
        capabilities=(),
        params={},
        search_space={},
    ),
    'item-knn': ModelInfo(
        name='item-knn',
        target='movierec.models.item_knn:ItemKNN',
        kind='rating',
        summary='Item kNN with baseline correction, a neighbourhood model for rating blends.',
        capabilities=('predicts_ratings', 'similar_items', 'fold_in', 'dislikes'),
        params={
            'k': 40,
            'shrinkage': 100.0,
            'max_neighbors': 300,
            'reg_user': 15.0,
            'reg_item': 10.0,
        },
        search_space={
            'k': Int(low=10, high=100, log=True, step=1),
            'shrinkage': Float(low=10.0, high=300.0, log=True),
        },
    ),
    'mf': ModelInfo(
        name='mf',
        target='movierec.models.mf:BiasedMF',
        kind='rating',
        summary='Biased matrix factorisation trained with mini-batch Adam (PyTorch).',
        capabilities=('predicts_ratings', 'embeddings', 'similar_items', 'fold_in', 'dislikes'),
        params={
            'dim': 32,
            'reg': 0.12,
            'reg_bias': 0.005,
            'lr': 0.02,
            'epochs': 60,
            'patience': 2,
            'batch_size': 4096,
            'init_std': 0.05,
            'output_range': False,
            'range_margin': 0.5,
            'optimizer': 'adam',
            'adam_eps': 1e-08,
            'validation_fraction': 0.05,
            'refit': True,
            'fold_in_reg': None,
        },
        search_space={
            'dim': Categorical(choices=[16, 32, 64, 128]),
            'reg': Float(low=0.02, high=0.3, log=True),
            'reg_bias': Float(low=0.0001, high=0.1, log=True),
            'lr': Float(low=0.003, high=0.05, log=True),
            'batch_size': Categorical(choices=[2048, 4096, 8192]),
            'init_std': Float(low=0.01, high=0.2, log=True),
            'output_range': Categorical(choices=[False, True]),
        },
    ),
    'mf-rank': ModelInfo(
        name='mf-rank',
        target='movierec.models.mf_rank:MFRank',
        kind='ranking',
        summary='Matrix factorisation for top-k ranking (dot product + item bias), BPR or sampled softmax.',
        capabilities=('embeddings', 'similar_items', 'fold_in'),
        params={
            'dim': 64,
            'loss': 'softmax',
            'epochs': 40,
            'lr': 0.01,
            'reg': 0.05,
            'batch_size': 2048,
            'n_neg': 256,
            'temperature': 1.0,
            'patience': 4,
            'refit': True,
            'min_rating': None,
        },
        search_space={
            'dim': Categorical(choices=[32, 64, 128]),
            'lr': Float(low=0.001, high=0.03, log=True),
            'reg': Float(low=0.0001, high=0.2, log=True),
            'n_neg': Categorical(choices=[128, 256, 512, 1024]),
            'temperature': Float(low=0.2, high=1.5, log=True),
        },
    ),
    'neumf': ModelInfo(
        name='neumf',
        target='movierec.models.neumf:NeuMF',
        kind='ranking',
        summary='Neural matrix factorisation (GMF + MLP) for implicit feedback, trained with BCE.',
        capabilities=(),
        params={
            'dim': 32,
            'mlp_layers': 2,
            'epochs': 30,
            'lr': 0.005,
            'weight_decay': 0.0,
            'reg': 0.0,
            'batch_size': 2048,
            'n_neg': 4,
            'dropout': 0.0,
            'patience': 3,
            'refit': True,
            'min_rating': None,
        },
        search_space={
            'dim': Categorical(choices=[32, 64, 128]),
            'mlp_layers': Int(low=1, high=2, log=False, step=1),
            'lr': Float(low=0.001, high=0.01, log=True),
            'reg': Float(low=1e-05, high=0.01, log=True),
            'n_neg': Int(low=4, high=12, log=False, step=1),
            'dropout': Float(low=0.0, high=0.3, log=False),
            'min_rating': Categorical(choices=[None, 4.0]),
        },
    ),
    'pop': ModelInfo(
        name='pop',
        target='movierec.models.baselines:PopularRecommender',
        kind='ranking',
        summary='Most popular movies first: score = number of training interactions of the movie (with rating >= `min_rating` when given); ties go to the higher mean rating.',
        capabilities=('fold_in',),
        params={
            'min_rating': None,
        },
        search_space={},
    ),
    'pop-recent': ModelInfo(
        name='pop-recent',
        target='movierec.models.baselines:PopularInWindow',
        kind='ranking',
        summary='Most popular within the last `window_days` of the training data (trends, not classics): score = interactions in the window; ties (and movies with none in the window) fall back to all-time popularity. Without timestamps it is plain popularity.',
        capabilities=('fold_in',),
        params={
            'window_days': 30.0,
            'min_rating': None,
        },
        search_space={},
    ),
    'random': ModelInfo(
        name='random',
        target='movierec.models.baselines:RandomRecommender',
        kind='ranking',
        summary='Ranks movies uniformly at random (the floor every model must clear).',
        capabilities=(),
        params={
            'seed': 42,
        },
        search_space={},
    ),
    'ranker': ModelInfo(
        name='ranker',
        target='movierec.models.ranker:Ranker',
        kind='ranking',
        summary="Two-stage ranker: several generators' candidates re-scored by LightGBM LambdaRank.",
        capabilities=('fold_in', 'dislikes'),
        params={
            'generators': None,
            'n_candidates': 200,
            'holdout': 2,
            'n_estimators': 300,
            'learning_rate': 0.03,
            'num_leaves': 7,
            'min_child_samples': 100,
            'graded': False,
            'seed': 42,
        },
        search_space={
            'n_candidates': Int(low=50, high=300, log=True, step=1),
            'n_estimators': Int(low=50, high=500, log=True, step=1),
            'learning_rate': Float(low=0.01, high=0.2, log=True),
            'num_leaves': Int(low=7, high=63, log=True, step=1),
        },
    ),
    'seq-ease': ModelInfo(
        name='seq-ease',
        target='movierec.models.seq_ease:SeqEASE',
        kind='ranking',
        summary='EASE with recency-weighted user histories and item-to-item transitions.',
        capabilities=('similar_items', 'fold_in', 'dislikes'),
        params={
            'regularization': 300.0,
            'tau': 10.0,
            'floor': 0.2,
            'beta': 0.3,
            'window': 3,
            'min_item_count': 1,
            'max_items': 20000,
        },
        search_space={
            'regularization': Categorical(choices=[50.0, 100.0, 200.0, 400.0, 800.0, 1600.0]),
            'tau': Float(low=1.0, high=100.0, log=True),
            'floor': Float(low=0.0, high=0.6, log=False),
            'beta': Float(low=0.0, high=2.0, log=False),
        },
    ),
    'two-tower': ModelInfo(
        name='two-tower',
        target='movierec.models.two_tower:TwoTower',
        kind='ranking',
        summary='Two-tower retrieval (user and movie MLP towers over IDs and features), in-batch softmax.',
        capabilities=('embeddings', 'similar_items', 'fold_in', 'dislikes'),
        params={
            'dim': 64,
            'hidden': 256,
            'epochs': 30,
            'lr': 0.003,
            'weight_decay': 0.0001,
            'batch_size': 512,
            'temperature': 0.1,
            'logq_correction': True,
            'n_uniform_negatives': 128,
            'id_dropout': 0.3,
            'cold_dropout': False,
            'history_len': 30,
            'recency_decay': 0.95,
            'text_encoder': 'tfidf',
            'text_dim': 32,
            'text_model_path': None,
            'use_tags': True,
            'patience': 3,
            'refit': True,
            'min_rating': None,
        },
        search_space={
            'dim': Categorical(choices=[32, 64, 128]),
            'lr': Float(low=0.001, high=0.01, log=True),
            'weight_decay': Float(low=1e-06, high=0.01, log=True),
            'temperature': Float(low=0.03, high=0.3, log=True),
            'n_uniform_negatives': Categorical(choices=[0, 128, 512]),
            'id_dropout': Float(low=0.0, high=0.6, log=False),
            'history_len': Categorical(choices=[10, 30, 100]),
            'recency_decay': Float(low=0.8, high=1.0, log=False),
        },
    ),
}


__all__ = ["BUILT_IN", "ModelInfo", "class_info", "entry_source"]
