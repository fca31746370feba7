"""Write ``bench/cases/realistic_heldout.jsonl``: a second realistic-completion set, with
problems and ending phrasings the verifier was NOT tuned on (written after the
extraction and normalization rules of issue 13 were in place, and scored first as
they stood), so its figure says how far the rules carry to phrasings not seen.

    python bench/math_realistic_heldout.py          # rewrite the case file
    python bench/math_realistic_heldout.py --check  # exit 1 if it is out of date

Same row format as ``realistic_completions.jsonl``.
"""
from __future__ import annotations

import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from math_realistic_gen import render, write_or_check  # noqa: E402
from math_realistic_problems import Problem as P  # noqa: E402

OUT = Path(__file__).resolve().parent / "cases" / "realistic_heldout.jsonl"
SEED = 1313

PROBLEMS = (
    P("tickets", "54", ("54", "\\$54", "54 \\text{ dollars}"), ("45", "64"), (
        "Adult tickets cost \\$9 and there are 4 adults: $4 \\cdot 9 = 36$.",
        "Child tickets cost \\$6 and there are 3 children: $3 \\cdot 6 = 18$.",
        "Altogether $36 + 18$ dollars."), True),
    P("hours", "3.5", ("3.5", "3\\frac{1}{2}", "\\frac{7}{2}", "3.5 \\text{ hours}"), ("3", "4.5"), (
        "At 60 km/h, 210 km takes $210 / 60$ hours.",
        "That is 3 hours and 30 minutes."), True),
    P("discount", "36", ("36", "36.00", "\\$36"), ("40", "4"), (
        "A 10% discount on \\$40 is \\$4.",
        "The sale price is $40 - 4$ dollars."), True),
    P("cookies", "7", ("7",), ("6", "8", "84"), (
        "84 cookies shared equally among 12 children gives $84 \\div 12$ each.",
        "Check: $12 \\times 7 = 84$."), True),
    P("sqrt12", "2\\sqrt{3}", ("2\\sqrt{3}", "\\sqrt{12}", "2 \\sqrt 3"), ("3\\sqrt{2}", "4\\sqrt{3}"), (
        "Write 12 as $4 \\cdot 3$ and take $\\sqrt{4} = 2$ out of the root."), False),
    P("neg_root", "x = -3", ("-3", "x = -3", "x=-3"), ("3", "x = -2"), (
        "From $2x + 9 = 3$ we get $2x = -6$.",
        "Dividing by 2, with 9 - 3 = 6 as a check."), False),
    P("union", "(-\\infty, 0) \\cup (1, \\infty)", ("(-\\infty, 0) \\cup (1, \\infty)", "(-\\infty,0)\\cup(1,\\infty)"),
      ("(0, 1)", "(-\\infty, 0] \\cup [1, \\infty)"), (
        "The product $x(x - 1)$ is positive when both factors have the same sign.",
        "That happens for x below 0 or above 1; the roots 0 and 1 are excluded."), False),
    P("closed", "[1, 5]", ("[1, 5]", "1 \\le x \\le 5", "x \\in [1, 5]"), ("(1, 5)", "[1, 4]"), (
        "We need $|x - 3| \\le 2$, that is $-2 \\le x - 3 \\le 2$.",
        "Adding 3 throughout gives the bounds 1 and 5."), False),
    P("percent10", "10\\%", ("10\\%", "10", "0.1"), ("1\\%", "20\\%"), (
        "The population grew from 200 to 220, an increase of 20.",
        "As a share of 200 this is $\\frac{20}{200}$."), False),
    P("e_squared", "e^2", ("e^2", "e^{2}"), ("2e", "e^3"), (
        "We have $\\ln y = 2$, so we exponentiate both sides.",
        "Note $e \\approx 2.718$ and $e^2 \\approx 7.389$."), False),
    P("no_solution", "\\text{no solution}", ("\\text{no solution}", "\\text{No solution}", "no solution"),
      ("x = 0", "\\text{infinitely many}"), (
        "Subtracting the equations gives $0 = 5$, which is impossible.",
        "So the system is inconsistent."), False),
    P("three_halves", "\\frac{3}{2}", ("\\frac{3}{2}", "1.5", "3/2", "1\\frac{1}{2}"), ("\\frac{2}{3}", "2.5"), (
        "The slope through $(1, 2)$ and $(3, 5)$ is $\\frac{5 - 2}{3 - 1}$."), False),
    P("vertex", "(2, -1)", ("(2, -1)", "(2,-1)"), ("(-2, -1)", "(2, 1)", "(-1, 2)"), (
        "Completing the square: $x^2 - 4x + 3 = (x - 2)^2 - 1$.",
        "The vertex is where the square vanishes, at x = 2, with value -1."), False),
    P("cube_root", "4", ("4", "\\sqrt[3]{64}"), ("8", "16"), (
        "We need the number whose cube is 64.",
        "$4^3 = 64$ while $8^2 = 64$ is a square, not a cube."), True),
    P("pi_third", "\\frac{\\pi}{3}", ("\\frac{\\pi}{3}", "\\pi/3", "\\frac{1}{3}\\pi"), ("\\frac{\\pi}{6}", "\\frac{2\\pi}{3}"), (
        "We need the angle in $[0, \\pi]$ whose cosine is $\\frac12$.",
        "In degrees this is 60, and 60 degrees is a sixth of 360."), False),
    P("poly", "x^2 - 1", ("x^2 - 1", "x^2-1", "(x-1)(x+1)", "-1 + x^2"), ("x^2 + 1", "x^2 - 2x + 1"), (
        "Multiply $(x - 1)(x + 1)$ term by term.",
        "The middle terms $x$ and $-x$ cancel."), False),
    P("yes_no", "\\text{No}", ("\\text{No}", "No", "no"), ("Yes", "\\text{Yes}"), (
        "The sum of two odd numbers is even, e.g. 3 + 5 = 8.",
        "So it can never equal the odd number 15."), False),
    P("ordered_pairs", "(1, 2), (2, 1)", ("(1, 2), (2, 1)", "(2, 1), (1, 2)"), ("(1, 2)", "(1, 1), (2, 2)"), (
        "From $x + y = 3$ and $xy = 2$, the numbers are roots of $t^2 - 3t + 2 = 0$.",
        "These roots are 1 and 2, in either order."), False),
    P("big_number", "1,000,000", ("1,000,000", "1000000", "10^6", "1 \\times 10^6"), ("100,000", "10^7"), (
        "There are 10 choices for each of the 6 digits.",
        "So $10 \\cdot 10 \\cdot 10 \\cdot 10 \\cdot 10 \\cdot 10$ codes."), True),
    P("decimal_money", "12.75", ("12.75", "\\$12.75"), ("12.57", "13.75"), (
        "Three sandwiches at \\$4.25 each: $3 \\times 4.25$.",
        "4.25 + 4.25 = 8.50, plus 4.25 more."), True),
)


def _cot(p, rng):
    lead = rng.choice(("Let me think about this.", "Here's how to solve it:", "Okay, so", ""))
    return "\n".join(x for x in (lead, *p.steps) if x)


def final_result(p, a, rng):  # no marker word at all
    return f"{_cot(p, rng)}\n\nThe final result is ${a}$."


def required_value(p, a, rng):
    return f"{_cot(p, rng)}\n\nHence, the required value is ${a}$."


def bold_colon_outside(p, a, rng):
    return f"**Solution:**\n{_cot(p, rng)}\n\n**Answer**: {a}"


def upper_answer(p, a, rng):
    return f"{_cot(p, rng)}\nANSWER: {a}"


def answer_would_be(p, a, rng):
    return f"{_cot(p, rng)}\n\nSo, the answer would be ${a}$."


def boxed_then_chat(p, a, rng):
    return f"{_cot(p, rng)}\n\n$$\\boxed{{{a}}}$$\n\nI hope this helps! Let me know if you have 2 more questions."


def display_equation(p, a, rng):
    return f"{_cot(p, rng)}\n\nTherefore,\n\\[\n{a}\n\\]"


def llama_final(p, a, rng):
    return f"## Step 1: Set up\n{p.steps[0]}\n\n## Step 2: Finish\n{' '.join(p.steps[1:]) or 'Simplify.'}\n\nThe final answer is: $\\boxed{{{a}}}$"


def bold_sentence(p, a, rng):
    return f"{_cot(p, rng)}\n\n**Therefore, the answer is ${a}$.**"


def not_but(p, a, rng, other="0"):
    return f"{_cot(p, rng)}\n\nAt first glance the answer is not ${other}$; working it out, it is ${a}$."


def note_after(p, a, rng):
    return f"{_cot(p, rng)}\n\nAnswer: ${a}$\n\n(Note: with 5 more items the total would be 100.)"


# A second batch, added (and scored once, as it stood) after the old code was found to
# pass the batch above almost entirely: the conventions in fresh phrasings.
def heading_no_space(p, a, rng):
    return f"{_cot(p, rng)}\n\n#Answer\n{a}"


def minerva_next_line(p, a, rng):
    return f"{_cot(p, rng)}\n\nFinal Answer:\nThe final answer is ${a}$. I hope it is correct."


def final_display(p, a, rng):
    return f"{_cot(p, rng)}\n\nFinal answer:\n\\[ {a} \\]"


def metamath_trailing(p, a, rng):
    return f"{_cot(p, rng)}\nThe answer is: {a}, which cannot be simplified further."


def bold_heading_caps(p, a, rng):
    return f"{_cot(p, rng)}\n\n**ANSWER**\n{a}"


def boxes_then_pick(p, a, rng, other="0"):
    return (f"{_cot(p, rng)}\n\nTrying both readings gives $\\boxed{{{other}}}$ and then $\\boxed{{{a}}}$; "
            f"only the second fits, so the final answer is ${a}$.")


def prose_then_result(p, a, rng):
    return f"I will now compute the final answer carefully.\n\n{_cot(p, rng)}\n\nThe result: ${a}$"


def small_chat(p, a, rng):
    return rng.choice(("The total is {} in the end.", "Answer {}", "{} is the answer.", "It comes to {}.")).format(a)


def gsm8k_calc(p, a, rng):
    return f"{_cot(p, rng)} <<12*3=36>>\n#### {a}"


def truncated_inner(p, a, rng):
    return f"{_cot(p, rng)}\n\nThus the answer is $\\boxed{{{a}"


CONVENTIONS = {f.__name__: f for f in (final_result, required_value, bold_colon_outside, upper_answer, answer_would_be,
                                       boxed_then_chat, display_equation, llama_final, bold_sentence, not_but, note_after,
                                       heading_no_space, minerva_next_line, final_display, metamath_trailing,
                                       bold_heading_caps, boxes_then_pick, prose_then_result, small_chat, gsm8k_calc,
                                       truncated_inner)}
_TAKES_OTHER = ("not_but", "boxes_then_pick")


def generate() -> list[dict]:
    rng = random.Random(SEED)
    rows = []
    for problem in PROBLEMS:
        for index, (name, convention) in enumerate(CONVENTIONS.items()):
            label = int(rng.random() < 0.6)
            answer = rng.choice(problem.right if label else problem.wrong)
            extra = {"other": problem.wrong[0] if label else problem.right[0]} if name in _TAKES_OTHER else {}
            rows.append({"id": f"heldout-{name}-{problem.key}-{index}", "category": f"heldout_{name}",
                         "completion": convention(problem, answer, rng, **extra), "reference": problem.reference,
                         "label": label, "note": f"{'correct' if label else 'wrong'} answer {answer!r}"})
    return rows


def main() -> int:
    return write_or_check(OUT, render(generate()), "math_realistic_heldout.py")


if __name__ == "__main__":
    sys.exit(main())
