"""Tables, Markdown reports and PNG plots of datasets, comparisons and fitted models.

`movierec.reporting.report`: comparison tables and the report folder of a `Comparison`;
`movierec.reporting.viz`: dataset plots, learning curves and movie-embedding maps.
Both import matplotlib, so import them where a plot is wanted, not at start-up.
"""
