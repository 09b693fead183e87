"""Synthetic story archives for ``benchmarks/archive.py``: many valid story files, fast.

Word frequencies follow a Zipf-Mandelbrot law over a vocabulary of pseudo-words (frequent
words short, as in real text; a few carry diacritics), so an archive has words in nearly
every story, words in a few percent, and a long tail of words in well under 1 % of them;
two-letter prefixes of frequent words match most of the archive.

Writing a million stories word by word would take longer than indexing them, so the body
text is drawn from a fixed pool of sentences (themselves Zipf-distributed words) and only
each title is drawn fresh: a story costs some twenty-five list picks and one ``os.write``.
A pool sentence recurs in about ``stories * 25 / POOL_SENTENCES`` stories (about 60 in a
million), as boilerplate recurs in a real newsroom's archive; the share of stories holding
a word is estimated from the pool (:meth:`Corpus.share`), which is how the benchmark picks
its rare and common query words without reading the archive back.

Every file is valid per ``STORY_FORMAT.md``: ``NNNNNNN_<16 hex>.txt``, two timestamp
lines, a title, 2–4 highlights, 3–9 paragraphs, 0–2 opinions and the footer; 1–4 KB each.
Generation is deterministic for a seed, and split into chunks written by a few forked
processes (each chunk seeded on its own, so the result does not depend on how many).
"""

from __future__ import annotations

import bisect
import itertools
import json
import multiprocessing
import os
import random
import shutil
import unicodedata
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

__all__ = ["GENERATOR_VERSION", "Corpus", "QuerySet", "ensure_archive", "remove_archive",
           "story_text"]

GENERATOR_VERSION = 1
VOCABULARY = 100_000
ZIPF_EXPONENT = 1.0
ZIPF_SHIFT = 2.7  # Mandelbrot's shift: the top words a little less dominant
POOL_SENTENCES = 400_000
TITLE_WORDS = (6, 12)
CHUNK = 5_000  # stories per task of a writing process
FIRST_MOMENT = datetime(2016, 1, 4, 6, 0, tzinfo=UTC)
STEP = timedelta(minutes=5)  # a million stories span 9.5 years
MANIFEST = ".archive-manifest.json"  # hidden: not a story (STORY_FORMAT.md)
RARE_SHARE = (0.0002, 0.004)  # a "rare" query word (with every word it prefixes): well
# under the 1 % bound, so estimation error cannot push it over
COMMON_SHARE = 0.2
_ONSETS = ("", "", "b", "br", "c", "ch", "d", "dr", "f", "g", "gr", "h", "j", "k", "l",
           "m", "n", "p", "pl", "r", "s", "sh", "st", "t", "tr", "v", "w", "z")
_VOWELS = ("a", "e", "i", "o", "u", "a", "e", "o", "ai", "ea", "ou", "y")
_CODAS = ("", "", "", "n", "r", "s", "l", "m", "t", "nd", "rk", "st")
_ACCENTED = {"e": "é", "u": "ü", "a": "å", "o": "ö"}
_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC


def _folded(word: str) -> str:
    """What FTS5's ``unicode61 remove_diacritics`` compares: no marks, casefolded."""
    decomposed = unicodedata.normalize("NFD", word)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def _vocabulary(rng: random.Random, size: int) -> list[str]:
    """``size`` distinct pseudo-words, most frequent first; frequent words are short."""
    seen: set[str] = set()
    words: list[tuple[float, str]] = []
    while len(words) < size:
        syllables = rng.choices((1, 2, 3, 4), weights=(3, 5, 4, 2))[0]
        word = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS)
                       for _ in range(syllables))
        if len(word) < 2 or word in seen:
            continue
        if rng.random() < 0.02:  # a few words with diacritics (folded when searched)
            for plain, accented in _ACCENTED.items():
                if plain in word:
                    word = word.replace(plain, accented, 1)
                    break
            if word in seen:
                continue
        seen.add(word)
        words.append((len(word) + rng.gauss(0, 2.5), word))
    words.sort()
    return [word for _, word in words]


@dataclass(frozen=True)
class QuerySet:
    """Search queries by kind: ``rare`` (every word, with all it prefixes, in at most
    0.4 % of the stories by estimate) and ``any`` (common words, common prefixes, mixes,
    a quoted phrase)."""

    rare: tuple[str, ...]
    any: tuple[str, ...]

    def to_json(self) -> dict[str, list[str]]:
        return {"rare": list(self.rare), "any": list(self.any)}


class Corpus:
    """The vocabulary, its Zipf weights and the sentence pool for one seed."""

    def __init__(self, seed: int, *, vocabulary: int = VOCABULARY,
                 pool: int = POOL_SENTENCES) -> None:
        self.seed = seed
        rng = random.Random(seed)
        self.words = _vocabulary(rng, vocabulary)
        weights = [1 / (rank + ZIPF_SHIFT) ** ZIPF_EXPONENT for rank in range(1, vocabulary + 1)]
        self.cum_weights = list(itertools.accumulate(weights))
        total = self.cum_weights[-1]
        self.probability = [w / total for w in weights]
        self.pool = [self._sentence(rng) for _ in range(pool)]
        self._shares: dict[str, float] | None = None

    def draw(self, rng: random.Random, count: int) -> list[str]:
        return rng.choices(self.words, cum_weights=self.cum_weights, k=count)

    def _sentence(self, rng: random.Random) -> str:
        words = self.draw(rng, rng.randint(8, 18))
        if rng.random() < 0.15:
            words.insert(rng.randrange(len(words)), f"{rng.randint(2, 2000)}")
        return " ".join(words).capitalize() + "."

    # -- what share of the stories holds a word ------------------------------------------
    def mean_pool_sentences(self) -> float:
        """Pool sentences in a story on average (see :func:`story_text`)."""
        return 3 + 6 * 3.5 + 1 * 1.5

    def shares(self) -> dict[str, float]:
        """Folded word -> estimated share of stories holding it (from the pool and the
        title draws; independent picks assumed)."""
        if self._shares is None:
            in_sentences: Counter[str] = Counter()
            for sentence in self.pool:
                in_sentences.update({_folded(w.strip(".")) for w in sentence.split()})
            picks = self.mean_pool_sentences()
            title = sum(TITLE_WORDS) / 2
            shares: dict[str, float] = {}
            for word, p in zip(self.words, self.probability, strict=True):
                folded = _folded(word)
                q = in_sentences.get(folded, 0) / len(self.pool)
                absent = (1 - q) ** picks * (1 - p) ** title
                shares[folded] = 1 - (1 - shares.get(folded, 0.0)) * absent
            self._shares = shares
        return self._shares

    def prefix_share(self, prefix: str) -> float:
        """Estimated share of stories holding a word that starts with ``prefix`` (folded;
        a union bound over the words it prefixes, at most 1)."""
        shares = self.shares()
        ordered = self._ordered_folded()
        start = bisect.bisect_left(ordered, prefix)
        end = bisect.bisect_left(ordered, prefix + "\U0010ffff", lo=start)
        return min(1.0, sum(shares[w] for w in ordered[start:end]))

    def _ordered_folded(self) -> list[str]:
        cached: list[str] | None = getattr(self, "_ordered", None)
        if cached is None:
            cached = sorted(self.shares())
            self._ordered = cached
        return cached

    def queries(self, count: int) -> QuerySet:
        """``count`` rare and ``count`` any queries of one to three words."""
        rng = random.Random(self.seed + 1)
        low, high = RARE_SHARE
        rare_words = [w for w in self.words
                      if low <= self.prefix_share(_folded(w)) <= high]
        rare_set = set(rare_words)
        # Rare words that share a pool sentence, so that two- and three-word queries find
        # something too (a query whose words never meet is fast for any engine).
        together = [[w for w in s.strip(".").split() if w in rare_set]
                    for s in rng.sample(self.pool, min(len(self.pool), 50_000))]
        pairs = [ws for ws in together if len(ws) >= 2]
        common = [w for w in self.words[:400] if self.shares()[_folded(w)] >= COMMON_SHARE]
        prefixes = sorted({_folded(w)[:n] for w in common[:40] for n in (2, 3)
                           if len(_folded(w)) > n})
        rare: list[str] = []
        for index in range(count):
            size = index % 3 + 1
            if size > 1 and pairs and rng.random() < 0.5:
                picked = rng.choice(pairs)[:size]
                picked += rng.sample(rare_words, size - len(picked))
            else:
                picked = rng.sample(rare_words, size)
            rare.append(" ".join(picked))
        kinds = ("common", "prefix", "common+rare", "common common", "prefix prefix",
                 "common common common", "phrase", "common prefix rare")
        mixed: list[str] = []
        for index in range(count):
            kind = kinds[index % len(kinds)]
            if kind == "phrase":
                words = rng.choice(self.pool).strip(".").lower().split()
                at = rng.randrange(len(words) - 1)
                mixed.append(f'"{words[at]} {words[at + 1]}"')
                continue
            parts = [rng.choice(common) if part == "common" else
                     rng.choice(prefixes) if part == "prefix" else rng.choice(rare_words)
                     for part in kind.replace("+", " ").split()]
            mixed.append(" ".join(parts))
        return QuerySet(tuple(rare), tuple(mixed))


def story_text(corpus: Corpus, rng: random.Random, number: int) -> tuple[str, str]:
    """(file name, text) of story ``number``: valid per STORY_FORMAT.md, 1–4 KB."""
    updated = FIRST_MOMENT + STEP * number + timedelta(seconds=rng.randrange(0, 240))
    published = updated - timedelta(minutes=rng.randrange(0, 3 * 24 * 60))
    pick = rng.choices
    pool = corpus.pool
    title = " ".join(corpus.draw(rng, rng.randint(*TITLE_WORDS))).capitalize()
    highlights = "\n".join(f"  • {s}" for s in pick(pool, k=rng.randint(2, 4)))
    paragraphs = [" ".join(pick(pool, k=rng.randint(2, 5))) for _ in range(rng.randint(3, 9))]
    opinions = [" ".join(pick(pool, k=rng.randint(1, 2))) for _ in range(rng.randint(0, 2))]
    stamp = "%b %-d, %Y, %-I:%M %p"
    head = f"{updated.strftime(stamp)}\n{published.strftime(stamp)}\n\n{title}\n\nHighlights\n"
    while True:
        body = "\n\n".join(paragraphs)
        text = (f"{head}{highlights}\nStory\n\n{body}\n\nOpinions\n\n"
                f"{chr(10).join(opinions)}\n\nYou've reached the end\n")
        size = len(text.encode())
        if size < 1024:
            paragraphs.append(" ".join(pick(pool, k=3)))
        elif size > 4096 and len(paragraphs) > 1:
            paragraphs.pop()
        else:
            break
    return f"{number:07d}_{rng.getrandbits(64):016x}.txt", text


# ==========================================================================================
# Writing archives
# ==========================================================================================
_WORKER_CORPUS: Corpus | None = None  # shared with forked writers, copy-on-write


def _write_chunk(task: tuple[str, int, int, int]) -> int:
    folder, seed, start, end = task
    corpus = _WORKER_CORPUS
    assert corpus is not None
    rng = random.Random(seed * 1_000_003 + start)
    written = 0
    for number in range(start, end):
        name, text = story_text(corpus, rng, number)
        data = text.encode()
        descriptor = os.open(f"{folder}/{name}", _FLAGS, 0o644)
        try:
            os.write(descriptor, data)
        finally:
            os.close(descriptor)
        written += len(data)
    return written


def _chunks(folder: Path, seed: int, stories: int) -> Iterator[tuple[str, int, int, int]]:
    for start in range(0, stories, CHUNK):
        yield str(folder), seed, start, min(stories, start + CHUNK)


def _manifest(folder: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def ensure_archive(folder: Path, corpus: Corpus, stories: int, *,
                   workers: int = 2) -> dict[str, Any]:
    """An archive of ``stories`` stories in ``folder``: reused when its manifest says it
    was written whole by this generator with this seed, else (re)written. Returns the
    manifest (with ``reused`` and ``write_s``)."""
    import time

    wanted = {"stories": stories, "seed": corpus.seed, "version": GENERATOR_VERSION,
              "vocabulary": len(corpus.words), "pool": len(corpus.pool)}
    found = _manifest(folder)
    if found is not None and all(found.get(k) == v for k, v in wanted.items()):
        return {**found, "reused": True}
    if folder.exists():
        remove_archive(folder)
    folder.mkdir(parents=True)
    began = time.perf_counter()
    global _WORKER_CORPUS
    _WORKER_CORPUS = corpus
    try:
        if workers <= 1:
            written = sum(map(_write_chunk, _chunks(folder, corpus.seed, stories)))
        else:
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                written = sum(pool.imap_unordered(_write_chunk,
                                                  _chunks(folder, corpus.seed, stories)))
    finally:
        _WORKER_CORPUS = None
    manifest = {**wanted, "bytes": written, "write_s": round(time.perf_counter() - began, 1)}
    (folder / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    return {**manifest, "reused": False}


def remove_archive(folder: Path) -> None:
    """Delete a generated archive (its folder and everything in it)."""
    shutil.rmtree(folder, ignore_errors=True)
