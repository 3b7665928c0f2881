"""Recommender models. Each is registered under a short CLI name here."""

from typing import TYPE_CHECKING, Any

from movierec.models.registry import available, create, get_class, register

if TYPE_CHECKING:  # imported on first use: the base pulls in pandas and scipy, which
    # `movierec models available` (answered from movierec.models.metadata) never needs
    from movierec.models.base import Recommendations, Recommender


def __getattr__(name: str) -> Any:
    if name in ("Recommendations", "Recommender"):
        from movierec.models import base

        return getattr(base, name)
    raise AttributeError(f"module 'movierec.models' has no attribute {name!r}")

# name -> class; imported lazily by the registry
register("global-mean", "movierec.models.bias:GlobalMean")
register("bias", "movierec.models.bias:BiasOnly")
register("mf", "movierec.models.mf:BiasedMF")
register("autorec", "movierec.models.autorec:AutoRec")
register("bpmf", "movierec.models.bayesian_mf:BayesianMF")
register("blend", "movierec.models.blend:Blend")
register("item-knn", "movierec.models.item_knn:ItemKNN")
register("random", "movierec.models.baselines:RandomRecommender")
register("id-order", "movierec.models.baselines:IdOrderRecommender")
register("pop", "movierec.models.baselines:PopularRecommender")
register("pop-recent", "movierec.models.baselines:PopularInWindow")
register("als", "movierec.models.implicit_models:ALS")
register("als-spark", "movierec.models.als_spark:SparkALS")
register("bpr", "movierec.models.implicit_models:BPR")
register("ease", "movierec.models.ease:EASE")
register("seq-ease", "movierec.models.seq_ease:SeqEASE")
register("neumf", "movierec.models.neumf:NeuMF")
register("mf-rank", "movierec.models.mf_rank:MFRank")
register("genre-pop", "movierec.models.genre_pop:GenrePop")
register("two-tower", "movierec.models.two_tower:TwoTower")
register("ranker", "movierec.models.ranker:Ranker")

__all__ = ["Recommendations", "Recommender", "available", "create", "get_class", "register"]
