"""Movie and user features fitted on training data only (genres, year, title text, tags, popularity, history).

* `MovieFeatures`: genre multi-hot, release year, title text (TF-IDF + SVD, or MiniLM),
  tags (ml-latest-small), popularity; encodes the catalog and new movies from metadata.
* `UserFeatures`: demographics (ML-100K/1M) and history statistics (count, mean rating).
* `TfidfSvdText` / `MiniLMText`: the text encoders.

Every encoder saves as numeric arrays plus JSON meta (`state()` / `from_state()`), so a
model keeps them in its own state and a bundle needs nothing else to serve.
"""

from movierec.features.movies import MovieFeatures
from movierec.features.text import TEXT_ENCODERS, MiniLMText, TfidfSvdText
from movierec.features.users import UserFeatures

__all__ = ["MovieFeatures", "UserFeatures", "TfidfSvdText", "MiniLMText", "TEXT_ENCODERS"]
