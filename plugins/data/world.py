"""The invented world of the builtin LM: its training corpus and the questions about it.

Everything is generated from a seed with :mod:`random`, so the corpus, the lm-eval task
data in ``suites/tasks/`` and the model's cache key stay in step (a test checks that the
task files equal :func:`task_rows`). No torch import here.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

SEED = 1234
TOWNS = ("Brimwick", "Calder", "Dunmore", "Elstow", "Farrow", "Glenby", "Harlow", "Ivers")
JOBS = ("baker", "smith", "weaver", "farmer", "sailor", "healer", "miner", "painter")
PETS = ("cat", "dog", "goat", "owl", "horse", "fox", "crow", "toad")
COLOURS = ("red", "blue", "green", "yellow", "purple", "orange", "white", "black")
ONSETS = ("Z", "K", "T", "M", "V", "R", "Q", "B", "N", "P", "L", "S")
NUCLEI = ("or", "al", "un", "ie", "ax", "ol")
CODAS = ("la", "ven", "dric", "mo", "sha", "tor", "wen", "bel")
NUMBERS = range(100)
PEOPLE = 30  # people in the world of the quickstart model and tasks


@dataclass(frozen=True)
class Person:
    name: str
    town: str
    job: str
    pet: str
    colour: str


# attribute → (question, sentence templates stating it, the choices)
ATTRIBUTES = {
    "town": ("Where does {p} live?", ("{p} lives in {v}.", "The home of {p} is {v}."), TOWNS),
    "job": ("What is the job of {p}?", ("{p} works as a {v}.", "{p} is a {v} by trade."), JOBS),
    "pet": ("Which animal does {p} keep?", ("{p} keeps a {v}.", "The pet of {p} is a {v}."), PETS),
    "colour": ("What colour does {p} like?", ("{p} likes the colour {v}.", "The favourite colour of {p} is {v}."), COLOURS),
}


def people(n: int = PEOPLE) -> list[Person]:
    """``n`` people with distinct invented names and random attributes."""
    rng = random.Random(SEED)
    names = sorted({o + nu + c for o in ONSETS for nu in NUCLEI for c in CODAS})
    rng.shuffle(names)
    return [Person(name, rng.choice(TOWNS), rng.choice(JOBS), rng.choice(PETS), rng.choice(COLOURS))
            for name in names[:n]]


def parity(n: int) -> str:
    return "even" if n % 2 == 0 else "odd"


def qa(question: str, answer: str) -> str:
    """The question/answer format shared by the corpus and the lm-eval tasks."""
    return f"Question: {question}\nAnswer: {answer}"


def corpus_lines(n_people: int = PEOPLE) -> list[str]:
    """Training documents: every fact in each phrasing, and as a question/answer pair."""
    lines = []
    for person in people(n_people):
        for attr, (question, statements, _) in ATTRIBUTES.items():
            value = getattr(person, attr)
            lines += [s.format(p=person.name, v=value) for s in statements]
            lines.append(qa(question.format(p=person.name), value))
    for n in NUMBERS:
        lines += [f"The number after {n} is {n + 1}.", f"{n} is an {parity(n)} number.",
                  qa(f"Is {n} even or odd?", parity(n)), qa(f"What comes after {n}?", str(n + 1))]
    return lines


def _choices(value: str, options: tuple[str, ...], rng: random.Random) -> tuple[list[str], int]:
    """The right answer and three distractors, in a random order."""
    choices = [value] + rng.sample([o for o in options if o != value], 3)
    rng.shuffle(choices)
    return choices, choices.index(value)


def task_rows(n_people: int = PEOPLE) -> dict[str, list[dict]]:
    """Rows of the lm-eval tasks: ``world_mc`` (4 choices; parity: 2) and ``world_qa``."""
    rng = random.Random(SEED + 1)
    mc, gen = [], []
    for person in people(n_people):
        for attr, (question, _, options) in ATTRIBUTES.items():
            text = question.format(p=person.name)
            choices, label = _choices(getattr(person, attr), options, rng)
            mc.append({"question": text, "choices": choices, "label": label})
            gen.append({"question": text, "answer": getattr(person, attr)})
    for n in NUMBERS:
        mc.append({"question": f"Is {n} even or odd?", "choices": ["even", "odd"], "label": n % 2})
        gen.append({"question": f"What comes after {n}?", "answer": str(n + 1)})
    return {"world_mc": mc, "world_qa": gen}


def text(n_people: int = PEOPLE) -> str:
    """The corpus as one text, in a fixed shuffled order: perplexity, fidelity, calibration."""
    lines = corpus_lines(n_people)
    random.Random(SEED + 2).shuffle(lines)
    return "\n".join(lines) + "\n"


def write_task_files(directory: str) -> None:
    """Write ``world_mc.jsonl``, ``world_qa.jsonl`` and ``world.txt`` (suites/tasks/)."""
    import json
    from pathlib import Path

    out = Path(directory)
    for name, rows in task_rows().items():
        (out / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (out / "world.txt").write_text(text(), encoding="utf-8")


if __name__ == "__main__":
    import sys

    write_task_files(sys.argv[1])
