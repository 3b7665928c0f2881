"""movierec: build, evaluate and serve movie recommenders on MovieLens."""

__version__ = "0.1.0"
