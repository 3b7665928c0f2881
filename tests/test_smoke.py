from movierec.data.describe import describe


def test_ml100k_published_counts(ml100k):
    stats = describe(ml100k)
    assert (stats["n_ratings"], stats["n_users"], stats["n_items"]) == (100_000, 943, 1682)
