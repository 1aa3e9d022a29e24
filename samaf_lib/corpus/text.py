"""A seeded word source for the generated corpus: plain sentences from a fixed vocabulary."""

from __future__ import annotations

import numpy as np

_NOUNS = """time person year way day thing man world life hand part child eye woman place work week case point
government company number group problem fact river mountain garden window kitchen table letter city country story
music picture morning evening station market teacher doctor student village forest ocean island bridge road car
train music paper question answer friend family brother sister mother father house school office window door""".split()
_VERBS = """sees finds takes makes gives tells calls brings holds keeps follows builds opens closes reads writes
paints carries watches moves pushes pulls lifts draws cleans fixes visits leaves reaches meets""".split()
_ADJS = """good new first last long great little own other old right big high different small large next early
young important few public bad same able green quiet bright heavy simple warm cold happy careful strange""".split()
_ADVS = """quickly slowly often never always today later again soon early carefully quietly""".split()
_PREPS = """near behind under over beside across through into""".split()


def sentence(rng: np.random.Generator, min_words: int = 8, max_words: int = 16) -> str:
    """One sentence of roughly ``min_words``-``max_words`` words, drawn with ``rng``."""
    parts: list[str] = []
    target = int(rng.integers(min_words, max_words + 1))
    while len(parts) < target:
        clause = [
            "the", str(rng.choice(_ADJS)), str(rng.choice(_NOUNS)), str(rng.choice(_VERBS)), "the",
            str(rng.choice(_NOUNS)), str(rng.choice(_PREPS)), "the", str(rng.choice(_NOUNS)),
        ]
        if rng.random() < 0.5:
            clause.append(str(rng.choice(_ADVS)))
        parts.extend(clause if not parts else ["and", *clause])
    text = " ".join(parts)
    return text[0].upper() + text[1:] + "."
