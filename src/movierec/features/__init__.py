"""Movie and user features fitted on training data only (genres, year, title text, tags, popularity, history)."""
