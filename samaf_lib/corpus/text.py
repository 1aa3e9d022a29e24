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


# ------------------------------------------------------------------------------------------- varied sentences
# The generated corpus (synthvox) speaks these: a vocabulary of about 900 words, proper names and numbers that
# are new in almost every sentence, and a dozen sentence shapes, so that two utterances rarely say the same words
# in the same order (:func:`varied_sentence`). :func:`sentence` above stays as it is for the plain speech of
# tests and examples.
_V_NOUNS = """time person year way day thing man world life hand part child eye woman place work week case point
government company number group problem fact river mountain garden window kitchen table letter city country story
music picture morning evening station market teacher doctor student village forest ocean island bridge road car
train paper question answer friend family brother sister mother father house school office door animal apple
army artist baby bag ball bank bed bell bird blanket boat body bone book bottle box boy bread breakfast brick
bucket building bus butter button cake camera candle captain card carpet castle cat chair cheese chicken church
circle clock cloud coat coffee coin college corner cottage cousin cow cup curtain dance desert dinner dog dream
dress driver drum duck eagle earth egg engine evening farm farmer feather fence field finger fire fish flag flower
foot fork fountain fox frog fruit game gate ghost gift girl glass glove goat gold grass guitar hair hammer harbour
hat heart hill hole horse hospital hotel hour ice idea iron jacket jar jewel journey judge key king kitten knife
ladder lake lamp language lawyer leaf leg lemon library light lion lip list machine magazine map meadow meal meat
medicine memory message metal milk minute mirror model monkey moon motor mouse mouth nail name neck needle nest
newspaper night noise nose note nurse oil onion orange owner packet page painter palace pan parent park party
pencil pepper piano picnic pig pillow pilot pipe planet plant plate pocket poet police pond potato prince
princess prison pupil puzzle queen rabbit radio rain record ribbon rice ring rock roof room root rope rose sail
sailor salt sand scarf science sea season seat seed shadow sheep shelf shell ship shirt shoe shop shoulder singer
skin sky sleeve smile snake snow soap soldier song soup spoon spring square stage star stone storm street sugar
summer sun supper swan sweater tail tea telephone temple tent theatre thread ticket tiger toast tomato tongue
tooth tower town toy tractor tree truck tunnel umbrella uncle valley vegetable violin voice wagon wall watch
water wave weather wheel whistle wind wing winter wire wolf wood wool yard""".split()
_V_VERBS = """sees finds takes makes gives tells calls brings holds keeps follows builds opens closes reads writes
paints carries watches moves pushes pulls lifts draws cleans fixes visits leaves reaches meets answers asks
borrows buys catches changes chooses collects cooks counts covers crosses cuts delivers describes digs drops
enjoys explains feeds fills folds forgets guards hides hears helps imagines invites joins kicks knows lends likes
loses marks measures mends misses names needs notices offers orders packs passes picks plants plays prepares
prints promises protects raises remembers repairs rescues returns sells sends shakes shares shows signs sorts
studies tastes teaches throws touches trades tries turns understands wakes wants warms washes wins
wraps""".split()
_V_PAST = """saw found took made gave told called brought held kept followed built opened closed read wrote painted
carried watched moved pushed pulled lifted drew cleaned fixed visited left reached met answered asked borrowed
bought caught changed chose collected cooked counted covered crossed cut delivered described dug dropped enjoyed
explained fed filled folded forgot guarded hid heard helped imagined invited joined kicked knew lent liked lost
marked measured mended missed named needed noticed offered ordered packed passed picked planted played prepared
printed promised protected raised remembered repaired rescued returned sold sent shook shared showed signed
sorted studied tasted taught threw touched traded tried turned understood woke wanted warmed washed won
wrapped""".split()
_V_INTRANS = """sleeps laughs waits arrives sings dances shouts whispers runs walks swims climbs falls rests smiles
listens travels works hurries stops breathes wanders grows shines trembles""".split()
_V_INTRANS_PAST = """slept laughed waited arrived sang danced shouted whispered ran walked swam climbed fell rested
smiled listened travelled worked hurried stopped breathed wandered grew shone trembled""".split()
_V_ADJS = """good new first last long great little own other old right big high different small large next early
young important few public bad same able green quiet bright heavy simple warm cold happy careful strange ancient
angry anxious awful beautiful bitter black blue brave brief broad broken brown busy calm cheap clean clever close
cloudy comfortable common cool crazy curious damp dark deep delicate dirty dry dull dusty eager easy elegant empty
enormous famous fancy fast fierce flat foolish fresh friendly full funny gentle giant glad golden grand grey
handsome hard healthy helpful hidden hollow honest huge hungry icy jolly kind lazy light lively lonely loud lovely
lucky magic modern narrow nervous noisy odd orange pale perfect plain pleasant polite poor pretty proud purple
rapid rare red rich ripe rough round royal rusty sad salty scary sharp shiny short shy silent silly silver slow
smooth soft sour spare square steep sticky stiff still stormy strong sudden sweet tall tender thick thin tidy tiny
tired tough ugly wet white wide wild wise wooden yellow""".split()
_V_ADVS = """quickly slowly often never always today later again soon early carefully quietly suddenly happily
gently loudly rarely nearly almost already yesterday tomorrow together alone outside inside upstairs abroad
badly bravely calmly clearly easily finally gladly honestly lazily neatly politely proudly sadly safely
seriously simply softly surely warmly wisely""".split()
_V_PREPS = """near behind under over beside across through into above below between along around against
toward beyond inside outside past without within""".split()
_V_DETS = """the a this that every one another some each no our their his her my your""".split()
_V_PRON = """she he it someone nobody everybody""".split()
_V_WH = """why when where how""".split()
_V_CONJ = """because although while after before until since unless whenever""".split()
_ONSETS = "b br c ch d dr f fl g gr h j k kl l m n p pl r s sh st t tr v w z".split()
_VOWELS = "a e i o u ai ea oo ou ie".split()
_CODAS = ["", "", "", "n", "r", "l", "s", "m", "nd", "rt", "th", "ck"]


def pseudo_name(rng: np.random.Generator) -> str:
    """A proper name of 2-3 syllables built from seeded onsets, vowels and codas (``Brailon``, ``Toumesk``)."""
    syllables = int(rng.integers(2, 4))
    name = "".join(str(rng.choice(_ONSETS)) + str(rng.choice(_VOWELS)) + str(rng.choice(_CODAS))
                   for _ in range(syllables))
    return name[0].upper() + name[1:]


def _number(rng: np.random.Generator) -> str:
    """A number as eSpeak reads it: a count, a year or a time."""
    kind = int(rng.integers(3))
    if kind == 0:
        return str(int(rng.integers(2, 100)))
    if kind == 1:
        return str(int(rng.integers(1600, 2030)))
    return f"{int(rng.integers(1, 13))} {int(rng.integers(10, 60))}"


def _np(rng: np.random.Generator, adjective: float = 0.6) -> str:
    """A noun phrase: determiner, optional adjective(s), noun; sometimes a name or a plural count."""
    r = rng.random()
    if r < 0.15:
        return pseudo_name(rng)
    if r < 0.25:
        return f"{_number(rng) if rng.random() < 0.5 else str(rng.integers(2, 20))} {rng.choice(_V_NOUNS)}s"
    words = [str(rng.choice(_V_DETS))]
    while rng.random() < adjective and len(words) < 3:
        words.append(str(rng.choice(_V_ADJS)))
    words.append(str(rng.choice(_V_NOUNS)))
    return " ".join(words)


def _clause(rng: np.random.Generator, past: bool) -> str:
    """A clause: subject, verb (transitive with an object and a place, or intransitive), optional adverb."""
    subject = _np(rng) if rng.random() < 0.7 else str(rng.choice(_V_PRON))
    if rng.random() < 0.25:
        k = int(rng.integers(len(_V_INTRANS)))
        words = [subject, _V_INTRANS_PAST[k] if past else _V_INTRANS[k]]
    else:
        verb = str(rng.choice(_V_PAST if past else _V_VERBS))
        words = [subject, verb, _np(rng)]
    if rng.random() < 0.6:
        words += [str(rng.choice(_V_PREPS)), _np(rng, 0.3)]
    if rng.random() < 0.35:
        words.append(str(rng.choice(_V_ADVS)))
    return " ".join(words)


def varied_sentence(rng: np.random.Generator, min_words: int = 6, max_words: int = 22) -> str:
    """One sentence of about ``min_words``-``max_words`` words in one of several shapes (statements in the present
    or the past, joined or subordinate clauses, questions, quoted speech, lists), drawn with ``rng``."""
    target = int(rng.integers(min_words, max_words + 1))
    past = bool(rng.random() < 0.5)
    shape = int(rng.integers(6))
    end = "."
    if shape == 0:
        text = _clause(rng, past)
    elif shape == 1:
        text = f"{rng.choice(_V_CONJ)} {_clause(rng, past)}, {_clause(rng, past)}"
    elif shape == 2:
        text = f"{rng.choice(_V_WH)} {'did' if past else 'does'} {_np(rng)} {rng.choice(_V_INTRANS)[:-1]}"
        end = "?"
    elif shape == 3:
        text = f"{pseudo_name(rng)} said that {_clause(rng, past)}"
    elif shape == 4:
        items = [str(rng.choice(_V_NOUNS)) for _ in range(int(rng.integers(3, 6)))]
        text = f"{_np(rng)} {'brought' if past else 'brings'} {', '.join(items[:-1])} and {items[-1]}"
    else:
        text = f"in {_number(rng)} {_clause(rng, True)}"
    while len(text.split()) < target:
        text += f" {rng.choice(['and', 'but', 'so', 'then', 'while'])} {_clause(rng, past)}"
    return text[0].upper() + text[1:] + end
