"""Recommender models. Each is registered under a short CLI name here."""

from movierec.models.base import Recommendations, Recommender
from movierec.models.registry import available, create, get_class, register

# name -> class; imported lazily by the registry
