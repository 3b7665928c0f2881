"""Find movies by title: the search behind `movierec movies search` and the service's `/movies?q=`.

Titles are compared in a normalised form that forgives what people get wrong when
they type a title from memory:

* case and accents ("amelie" finds "Amélie"; Unicode NFKD, combining marks dropped);
* punctuation ("se7en", "wallace gromit" find "Seven (Se7en)", "Wallace & Gromit");
* a moved or missing leading article: MovieLens writes "Matrix, The"; "the matrix",
  "matrix" and "matrix, the" all find it (English, French, Spanish, Italian, German,
  Portuguese articles);
* a year given in the query ("toy story 1995") matches the movie's release year.

Matches rank in tiers: the whole title (exact), the start of the title (prefix), every
query word starting a word of the title (words), then close spellings (fuzzy, difflib).
Within a tier, movies with more ratings come first when their counts are given, then
shorter titles.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass

import numpy as np

from movierec.data.dataset import Catalog
from movierec.errors import ConfigError

#: leading articles that MovieLens moves to the end of a title ("Matrix, The")
ARTICLES = ("the", "a", "an", "la", "le", "les", "l'", "il", "el", "los", "las", "der", "die", "das",
            "o", "os", "as", "lo", "gli", "i", "un", "une", "una", "det", "den")
_MOVED_ARTICLE = re.compile(r",\s*(" + "|".join(re.escape(a) for a in ARTICLES) + r")\s*$", re.IGNORECASE)
_YEAR = re.compile(r"^(18|19|20)\d\d$")
_NON_WORD = re.compile(r"[^\w]+")

#: match tiers, best first
TIERS = ("exact", "prefix", "words", "fuzzy")
#: smallest difflib similarity that counts as a fuzzy match
FUZZY_CUTOFF = 0.72


def _fold(text: str) -> str:
    """Lower case, accents removed (NFKD without combining marks), & spelled "and"."""
    text = unicodedata.normalize("NFKD", str(text))
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return text.casefold().replace("&", " and ")


def _words(text: str) -> list[str]:
    """Folded words without punctuation and without a leading article."""
    words = [w for w in _NON_WORD.sub(" ", text.replace("'", "' ")).split() if w]
    words = [w.rstrip("'") or w for w in words]
    if len(words) > 1 and (words[0] in ARTICLES or words[0] + "'" in ARTICLES):
        words = words[1:]
    return words


def title_key(title: str) -> list[str]:
    """The words a title is matched on: "Matrix, The" and "The Matrix" -> ["matrix"].

    An alternative title in parentheses ("Seven (Se7en)", "City of Lost Children, The
    (Cité des enfants perdus, La)") is matched separately: see `title_variants`.
    """
    text = _fold(title).strip()
    text = _MOVED_ARTICLE.sub("", text)
    return _words(text)


def title_variants(title: str) -> list[list[str]]:
    """The word lists a title is matched on: the main title, then each parenthesised
    alternative ("Seven (Se7en)" -> [["seven"], ["se7en"]])."""
    title = str(title or "")
    alternatives = re.findall(r"\(([^()]*)\)", title)
    main = re.sub(r"\s*\([^()]*\)", "", title).strip()
    alternatives = [re.sub(r"^\s*a\.?k\.?a\.?\s+", "", a, flags=re.IGNORECASE) for a in alternatives]
    variants = [title_key(main)] + [title_key(a) for a in alternatives if a.strip()]
    return [v for v in variants if v] or [[]]


@dataclass(frozen=True)
class TitleMatch:
    """One search hit.

    Attributes:
        index: the movie's item index (row of the catalog and of the item IdMap).
        label: "Title (year)" for display.
        tier: "exact", "prefix", "words" or "fuzzy".
        score: similarity in [0, 1] within the tier (1 for exact matches).
    """

    index: int
    label: str
    tier: str
    score: float


class TitleIndex:
    """A catalog's titles prepared once for many searches (as a service would keep it).

    Args:
        catalog: titles and years, row i = item index i.
        counts: optional number of ratings per item index, shape (n_items,): within a
            tier, more-rated movies rank first.
    """

    def __init__(self, catalog: Catalog, counts: np.ndarray | None = None):
        self.catalog = catalog
        n = len(catalog.titles)
        if counts is not None and len(counts) != n:
            raise ConfigError(f"counts has {len(counts)} entries for a catalog of {n} movies.")
        self.counts = np.zeros(n, dtype=np.int64) if counts is None else np.asarray(counts, dtype=np.int64)
        self.variants = [title_variants(t) for t in catalog.titles]
        self.joined = [[" ".join(v) for v in vs] for vs in self.variants]
        self.years = [str(int(y)) if int(y) > 0 else "" for y in catalog.years]
        if not any(any(j) for j in self.joined):
            raise ConfigError("These movies have no titles to search; give a movies file with titles.")

    def search(self, query: str, k: int = 10) -> list[TitleMatch]:
        """The best `k` matches for `query`, best first (see the module doc for the order).

        Raises:
            ConfigError: for an empty query or k < 1.
        """
        if isinstance(k, bool) or int(k) < 1:
            raise ConfigError(f"k must be a whole number >= 1, got {k!r}.")
        words = _words(_MOVED_ARTICLE.sub("", _fold(query).strip()))
        year = ""
        if len(words) > 1 and _YEAR.match(words[-1]):
            words, year = words[:-1], words[-1]
        if not words:
            raise ConfigError("Give some words of a title to search for.")
        q = " ".join(words)
        hits: dict[int, tuple[int, float]] = {}  # index -> (tier, score)
        for i, (variants, joined) in enumerate(zip(self.variants, self.joined)):
            if year and self.years[i] != year:
                continue
            best: tuple[int, float] | None = None
            for vw, vj in zip(variants, joined):
                if not vj:
                    continue
                if vj == q:
                    found = (0, 1.0)
                elif vj.startswith(q + " ") or (vj.startswith(q) and len(words[-1]) >= 3):
                    found = (1, len(q) / len(vj))
                elif all(any(w.startswith(x) for w in vw) for x in words):
                    exact = sum(x in vw for x in words)
                    found = (2, (exact + len(words)) / (2 * len(vw) + len(words)))
                else:
                    continue
                if best is None or (found[0], -found[1]) < (best[0], -best[1]):
                    best = found
            if best is not None:
                hits[i] = best
        if len(hits) < k:
            hits.update(self._fuzzy(q, len(words), year, exclude=set(hits)))
        order = sorted(hits, key=lambda i: (hits[i][0], -round(hits[i][1], 2) if hits[i][0] == 3 else 0,
                                            -self.counts[i], -hits[i][1], len(self.joined[i][0]), i))
        return [TitleMatch(int(i), self.catalog.label(i), TIERS[hits[i][0]], float(hits[i][1]))
                for i in order[: int(k)]]

    def _fuzzy(self, q: str, n_words: int, year: str, exclude: set[int]) -> dict[int, tuple[int, float]]:
        """Close spellings: difflib similarity of the query to the whole title or to any
        run of as many title words as the query has (so a misspelt part of a long title
        still counts)."""
        matcher = difflib.SequenceMatcher(autojunk=False)
        matcher.set_seq2(q)
        found: dict[int, tuple[int, float]] = {}
        for i, (variants, joined) in enumerate(zip(self.variants, self.joined)):
            if i in exclude or (year and self.years[i] != year):
                continue
            best = 0.0
            for vw, vj in zip(variants, joined):
                candidates = {vj} | {" ".join(vw[s:s + n_words]) for s in range(max(len(vw) - n_words + 1, 0))}
                for text in candidates:
                    matcher.set_seq1(text)
                    if matcher.real_quick_ratio() < FUZZY_CUTOFF or matcher.quick_ratio() < FUZZY_CUTOFF:
                        continue
                    ratio = matcher.ratio()
                    if text != vj:  # a part of the title: a little below the whole title
                        ratio *= 0.97
                    best = max(best, ratio)
            if best >= FUZZY_CUTOFF:
                found[i] = (3, best)
        return found


def search_titles(catalog: Catalog, query: str, k: int = 10, counts: np.ndarray | None = None) -> list[TitleMatch]:
    """The best `k` movies of `catalog` whose title matches `query` (see `TitleIndex`).

    Args:
        catalog: titles and years, row i = item index i.
        query: words of a title, in any case, with or without accents or a leading article.
        k: how many matches at most.
        counts: optional ratings per item index, shape (n_items,); more-rated first within a tier.
    """
    return TitleIndex(catalog, counts).search(query, k)


__all__ = ["TitleIndex", "TitleMatch", "search_titles", "title_key", "title_variants", "TIERS"]
