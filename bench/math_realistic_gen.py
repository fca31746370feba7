"""Write ``bench/cases/realistic_completions.jsonl``: long completions in the endings real
model families use, both labels, generated from the problems in
``math_realistic_problems.py`` (all text written for this repo, nothing copied).

    python bench/math_realistic_gen.py          # rewrite the case file (deterministic)
    python bench/math_realistic_gen.py --check  # exit 1 if the file is out of date

Each row: ``id``, ``category`` (the ending convention), ``completion``, ``reference``,
``label`` (1 when the completion's final answer is correct, as a grader would judge),
``note``. Conventions (`CONVENTIONS`): MATH/PRM800K ``# Answer`` with the answer on the
next line, Minerva's "Final Answer: The final answer is $X$. I hope it is correct.",
GSM8K ``#### X``, MetaMath's "The answer is: X", boxed endings, R1-style ``<think>`` with
a "**Final Answer**" display box, markdown ``**Answer:**``, an answer on the line after a
heading, several boxes where the text then says which one is meant, "final answer" in
ordinary prose, numbers after the answer, a self-correction, bare answers, boxes cut off
by a truncated completion, and short plain sentences from a small chat model.
"""
from __future__ import annotations

import json
import random
import re
import sys
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
from math_realistic_problems import PROBLEMS, Problem  # noqa: E402

OUT = Path(__file__).resolve().parent / "cases" / "realistic_completions.jsonl"
SEED = 13


# Paragraphs a long chain of thought carries besides the solution: re-reading, checks,
# detours, mentions of "answer" that are not answers; full of numbers that are not it.
ASIDES = (
    "Let me re-read the problem to make sure I have all {a} conditions right.",
    "Before giving the final answer, let me verify each step once more.",
    "Alternatively, we could try small cases: $n = 1$ gives {a}, $n = 2$ gives {b}, and $n = 3$ gives {c}.",
    "A quick estimate says the result should lie between {a} and {c}, which is a useful sanity check.",
    "I want to make sure my answer makes sense in context, so I will check the units as well.",
    "Hmm, wait. Did I use {b} or {c} in the previous line? Looking back, the computation is fine.",
    "The answer should be a whole number here, or at least a simple expression.",
    "Note that a common mistake is to compute ${a} \\times {b} = {ab}$ instead, which is not what is asked.",
    "To get the final answer, I need to combine the partial results carefully.",
    "Let me also double-check the arithmetic: ${a} + {b} = {apb}$ and ${c} - {a} = {cma}$, both as expected.",
    "So far we have used {a} of the {c} given facts; the rest only confirm the result.",
    "Step {a} was the tricky part; the remaining steps are routine algebra.",
    "One could also draw a diagram with {b} points, but it is not necessary.",
    "If the problem had said {c} instead, the method would be the same.",
)


def _aside(rng: random.Random) -> str:
    a, b, c = rng.randint(2, 9), rng.randint(10, 40), rng.randint(41, 99)
    return rng.choice(ASIDES).format(a=a, b=b, c=c, ab=a * b, apb=a + b, cma=c - a)


def _cot(problem: Problem, rng: random.Random) -> str:
    openers = ("Let's solve this step by step.", "We proceed carefully.", "First, let us understand the problem.",
               "I'll work through this.", "")
    paragraphs = list(problem.steps)
    for _ in range(rng.randint(3, 7)):  # asides between (and after) the steps
        paragraphs.insert(rng.randint(1, len(paragraphs)), _aside(rng))
    return "\n\n".join(p for p in (rng.choice(openers), *paragraphs) if p)


def _plain(answer: str) -> str:
    """An answer as plain text (GSM8K writes numbers without LaTeX)."""
    return re.sub(r"\\text\{[^{}]*\}|\\\$", "", answer).strip()


def math_heading(p, a, rng):
    return f"{_cot(p, rng)}\n\n# Answer\n\n{a}"


def minerva(p, a, rng):
    return f"{_cot(p, rng)}\nFinal Answer: The final answer is ${a}$. I hope it is correct."


def gsm8k(p, a, rng):
    return f"{_cot(p, rng)}\n#### {_plain(a)}"


def metamath(p, a, rng):
    return f"{_cot(p, rng)}\nThe answer is: {a}"


def boxed_final(p, a, rng):
    lead = rng.choice(("Therefore, the final answer is", "So the answer is", "Hence we obtain", "Thus"))
    return f"{_cot(p, rng)}\n\n{lead} $\\boxed{{{a}}}$."


def r1_think(p, a, rng):
    doubt = rng.choice(("Wait, let me double-check the arithmetic once more.", "Hmm, is that right? Let me verify with 2 or 3 test values.", ""))
    return (f"<think>\n{_cot(p, rng)}\n{doubt}\n</think>\n\nWorking through the problem as above, we find the result."
            f"\n\n**Final Answer**\n\\[\n\\boxed{{{a}}}\n\\]")


def markdown_answer(p, a, rng):
    steps = "\n".join(f"{i}. {s}" for i, s in enumerate((*p.steps, _aside(rng), _aside(rng)), 1))
    return f"### Solution\n\n{steps}\n\n**Answer:** ${a}$"


def heading_next_line(p, a, rng):
    head = rng.choice(("## Final answer", "**Final answer:**", "### Answer", "**Answer**"))
    wrap = rng.choice(("${}$", "\\({}\\)", "{}", "$$\n{}\n$$"))
    return f"{_cot(p, rng)}\n\n{head}\n\n{wrap.format(a)}"


def several_boxes(p, a, rng, other: str = "1"):
    steps = _cot(p, rng)
    return (f"{steps}\n\nThe computation leaves two candidates, $\\boxed{{{other}}}$ or $\\boxed{{{a}}}$, to test against the"
            f" original conditions.\n\nOnly one of them satisfies every condition, so the answer is ${a}$.")


def prose_final(p, a, rng):
    first, *rest = p.steps
    return (f"Write the final answer in simplest form.\n\n{first}\n\nTo get the final answer, I need to combine the"
            f" values from the previous step.\n\n" + "\n\n".join((*rest, _aside(rng), _aside(rng)))
            + f"\n\nSo the answer is ${a}$.")


def trailing_numbers(p, a, rng):
    check = rng.choice(("As a check, 3 + 4 = 7 and 10 - 2 = 8, consistent with the steps above.",
                        "This took 2 steps; with 5 more examples the pattern holds.",
                        "(Sanity check: 12 / 4 = 3.)"))
    return f"{_cot(p, rng)}\n\nThe answer is ${a}$.\n\n{check}"


def self_correction(p, a, rng, first: str = "0"):
    return (f"{_cot(p, rng)}\n\nSo the answer is ${first}$.\n\nWait, I made an error in the last step. Redoing it"
            f" carefully, the final answer is ${a}$.")


def bare(p, a, rng):
    return rng.choice(("{}", "${}$", "{}.", "$\\boxed{{{}}}$")).format(a)


def truncated_box(p, a, rng):
    return f"{_cot(p, rng)}\n\nPutting everything together, the answer is $\\boxed{{{a}"


Convention = Callable[[Problem, str, random.Random], str]
CONVENTIONS: dict[str, Convention] = {
    f.__name__: f for f in (math_heading, minerva, gsm8k, metamath, boxed_final, r1_think, markdown_answer,
                            heading_next_line, several_boxes, prose_final, trailing_numbers, self_correction,
                            bare, truncated_box)
}


def _chat_sentences(rng: random.Random) -> list[dict]:
    """A small chat model answering "What is a + b?" in one short sentence."""
    rows, shapes = [], ("{a} + {b} equals {c}.", "{a} + {b} is {c}.", "Sum: {c}", "The sum of {a} and {b} is {c}.",
                        "{a} plus {b} = {c}", "Adding {a} and {b} gives {c}.")
    for index in range(48):
        a, b = rng.randint(5, 99), rng.randint(2, 99)
        label = int(index % 3 != 2)
        c = a + b if label else a + b + rng.choice((-10, -1, 1, 2, 10))
        rows.append({"id": f"chat_sentence-{index:02d}", "category": "chat_sentence",
                     "completion": shapes[index % len(shapes)].format(a=a, b=b, c=c), "reference": str(a + b),
                     "label": label, "note": "one-sentence answer of a small chat model"})
    return rows


def generate() -> list[dict]:
    rng = random.Random(SEED)
    rows = []
    for problem in PROBLEMS:
        for index, (name, convention) in enumerate(CONVENTIONS.items()):
            if name == "gsm8k" and not problem.numeric:
                continue
            label = int(rng.random() < 0.6)
            answer = rng.choice(problem.right if label else problem.wrong)
            extra = {}
            if name == "several_boxes":  # the other box: a wrong value, or the right one when the text picks wrong
                extra["other"] = problem.wrong[0] if label else problem.right[0]
            if name == "self_correction":
                extra["first"] = problem.wrong[-1] if label else problem.right[0]
            text = convention(problem, answer, rng, **extra)
            rows.append({"id": f"{name}-{problem.key}-{index}", "category": name, "completion": text,
                         "reference": problem.reference, "label": label,
                         "note": f"{'correct' if label else 'wrong'} answer {answer!r}"})
    return rows + _chat_sentences(rng)


def render(rows: list[dict]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def write_or_check(out: Path, text: str, script: str) -> int:
    """Write the case file, or with --check report (exit 1) whether the committed one is out of date."""
    if "--check" in sys.argv:
        same = out.exists() and out.read_text(encoding="utf-8") == text
        print("up to date" if same else f"{out} is out of date: run python bench/{script}")
        return 0 if same else 1
    out.write_text(text, encoding="utf-8")
    print(f"wrote {text.count(chr(10))} cases to {out}")
    return 0


def main() -> int:
    return write_or_check(OUT, render(generate()), "math_realistic_gen.py")


if __name__ == "__main__":
    sys.exit(main())
