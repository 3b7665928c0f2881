"""Vector indexes over any model that declares embeddings: exact, IVF and HNSW (FAISS)."""
