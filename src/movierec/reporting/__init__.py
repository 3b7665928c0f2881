"""Tables, Markdown reports and PNG plots of datasets, comparisons and fitted models.

`movierec.reporting.report`: comparison tables and the report folder of a `Comparison`;
`movierec.reporting.viz`: dataset plots, learning curves and movie-embedding maps.
`viz` imports matplotlib (import it where a plot is wanted, not at start-up); `report`
imports it only inside its plot functions, so its tables stay light.
"""
