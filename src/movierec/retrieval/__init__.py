"""Vector indexes over any model that declares embeddings: exact, IVF and HNSW (FAISS).

`VectorIndex` searches item vectors (over-fetch, filter, exact re-score); `ModelIndex`
ties one to a fitted model and answers `recommend` / `recommend_new` / `similar` in raw
IDs; `store_index` / `stored_index` / `index_for_bundle` keep it inside a bundle.
"""

from movierec.retrieval.index import AUTO_EXACT_MAX_ITEMS, KINDS, VectorIndex, single_thread
from movierec.retrieval.model_index import (
    HEADER_FILE,
    INDEX_FILE,
    ModelIndex,
    index_for_bundle,
    store_index,
    stored_index,
)

__all__ = [
    "AUTO_EXACT_MAX_ITEMS",
    "HEADER_FILE",
    "INDEX_FILE",
    "KINDS",
    "ModelIndex",
    "VectorIndex",
    "index_for_bundle",
    "single_thread",
    "store_index",
    "stored_index",
]
