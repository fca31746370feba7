"""Answer extraction on full-length completions in the endings real model families use
(`verifiers.math.markers` and `verifiers.math.extract`), distractors included."""
import pytest

from tests.verifiers.growth import assert_linear
from verifiers import get_verifier
from verifiers.math.extract import extract_candidates
from verifiers.math.markers import has_words, line_answer

STEPS = (
    "We have 4 boxes with 12 pencils each, so $4 \\times 12 = 48$ pencils.\n\n"
    "Then 6 pencils are lost, leaving $48 - 6 = 42$; a second count confirms 42.\n\n"
)

# (completion, the answer extraction should find, its method)
CONVENTIONS = [
    # MATH / PRM800K: a "# Answer" heading, the answer alone on a later line
    (STEPS + "# Answer\n\n\\frac{7}{12}", "\\frac{7}{12}", "heading"),
    (STEPS + "# Answer\n\n25_8", "25_8", "heading"),
    (STEPS + "# Answer\n\n(3, -1)", "(3, -1)", "heading"),
    # Minerva
    (STEPS + "Final Answer: The final answer is $\\frac{3}{4}$. I hope it is correct.", "\\frac{3}{4}", "final_answer"),
    (STEPS + "Final Answer: The final answer is 42. I hope it is correct.", "42", "final_answer"),
    # GSM8K, and a markdown heading that only looks like it
    (STEPS + "#### 42", "42", "hashes"),
    ("#### Step 1: count the pencils\n" + STEPS + "#### 42", "42", "hashes"),
    # MetaMath
    (STEPS + "The answer is: \\frac{1}{6}", "\\frac{1}{6}", "answer_is"),
    (STEPS + "The answer is: 137_8", "137_8", "answer_is"),
    # markdown answers, and answers on the line after a heading
    (STEPS + "**Answer:** $42$", "42", "answer_colon"),
    (STEPS + "**Final answer:**\n\n$x = -4$", "x = -4", "final_answer"),
    (STEPS + "### Answer\n\n\\(2\\sqrt{3}\\)", "2\\sqrt{3}", "heading"),
    (STEPS + "**Final Answer**\n\n$$\n\\frac{\\pi}{4}\n$$", "\\frac{\\pi}{4}", "final_answer"),
    # R1-style: think block, then a display box
    ("<think>\n" + STEPS + "Hmm, maybe 40? No.\n</think>\n\n**Final Answer**\n\\[\n\\boxed{42}\n\\]", "42", "boxed"),
    # several boxes, then the text says which one is meant
    (STEPS + "So $x = \\boxed{3}$ or $x = \\boxed{-2}$. Since $x > 0$, the answer is $3$.", "3", "answer_is"),
    (STEPS + "Candidates: $\\boxed{40}$ and $\\boxed{42}$.\n\nOnly one fits, so the final answer is $42$.", "42", "final_answer"),
    # "final answer" in ordinary prose is not a marker
    ("Write the final answer in simplest form.\n\n" + STEPS + "So the answer is $\\frac{2}{3}$.", "\\frac{2}{3}", "answer_is"),
    ("To get the final answer, I need to increase 40 by 2.\n\n" + STEPS + "Thus we get 42.", "42", "last_number"),
    # numbers after the answer
    (STEPS + "The answer is $42$.\n\nAs a check, 3 + 4 = 7 and 10 - 2 = 8.", "42", "answer_is"),
    # a self-correction: the last stated answer wins
    (STEPS + "So the answer is $40$.\n\nWait, I dropped the lost pencils: the final answer is $42$.", "42", "final_answer"),
    # prose after the marker: the math it states, whole
    (STEPS + "The final answer is \\frac{3}{4} of the pizza.", "\\frac{3}{4}", "final_answer"),
    ("Final Answer: The largest $n$ is 34.", "34", "final_answer"),
    (STEPS + "Therefore, the answer is $3$, since $x > 0$.", "3", "answer_is"),
    (STEPS + "The answer is \\text{Yes}.", "\\text{Yes}", "answer_is"),
    # a box cut off by a truncated completion
    (STEPS + "Putting it together, the answer is $\\boxed{\\frac{7}{12}", "\\frac{7}{12}", "boxed"),
]


@pytest.mark.parametrize("text, answer, method", CONVENTIONS, ids=[f"{c[2]}-{i}" for i, c in enumerate(CONVENTIONS)])
def test_answer_found_where_models_put_it(text, answer, method):
    first = extract_candidates(text)[0]
    assert (first.answer, first.method) == (answer, method)


@pytest.mark.parametrize("completion, reference", [
    ("79 + 78 equals 157.", "157"), ("82 + 3 is 85.", "85"), ("Sum: 85", "85"), ("41 plus 2 = 43", "43"),
    ("The sum of 12 and 30 is 42.", "42"),
])
def test_short_plain_sentences_reach_their_number(completion, reference):
    assert get_verifier("math").verify(completion=completion, reference=reference).reward == 1.0


@pytest.mark.parametrize("completion", [
    STEPS + "# Answer\n\n\\frac{7}{12}", STEPS + "The answer is: 7/12", STEPS + "Final Answer:\n\\frac{7}{12}",
])
def test_latex_after_a_marker_is_not_reduced_to_its_last_number(completion):
    verifier = get_verifier("math")
    assert verifier.verify(completion=completion, reference="\\frac{7}{12}").reward == 1.0
    assert verifier.verify(completion=completion, reference="12").reward == 0.0


def test_words_and_lines():
    assert has_words("79 + 78 equals 157") and has_words("Sum: 85")
    assert not has_words("x = 2 \\text{ or } x = 3") and not has_words("5\\text{ cm}") and not has_words("2xy + AZ2")
    assert line_answer("the number of ways is $12$, by symmetry") == "12"
    assert line_answer("consistent with the data") is None  # prose: not an answer


HOSTILE_MARKERS = {  # n -> a text of about n characters that a backtracking marker scan would take quadratic time on
    "answer_then_spaces": lambda n: "answer" + " " * n,
    "final_answer_then_spaces": lambda n: "final answer" + " " * n + "x",
    "newline_then_spaces": lambda n: "\n" + " " * n + "x",
    "heading_then_spaces": lambda n: "\n###" + " " * n + "x",
    "the_answer_is_repeated": lambda n: "the answer is " * (n // 14),
    "answer_headings_repeated": lambda n: "# Answer\n" * (n // 9),
    "is_the_repeated": lambda n: "The answer is " + " is the " * (n // 8),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_MARKERS))
def test_marker_scans_stay_linear(name):
    assert_linear(extract_candidates, HOSTILE_MARKERS[name], 25_000)


@pytest.mark.parametrize("completion, reference, expected", [
    ("The answer is not 5.", "5", 0),  # a negation states no answer, not even for the fallback
    ("3 + 4 = 7. The answer is not 5.", "7", 1),
    ("$\\boxed{5}$. The answer is not 6.", "5", 1),
    ("At first the answer is not $0$; working it out, it is $7$.", "7", 1),
    ("The answer is 2 more than 3, so 5.", "2", 0),  # a number in an arithmetic phrase is not the answer
    ("The answer is 2 more than 3, so 5.", "5", 1),
    ("$\\boxed{5}$. The answer is correct.", "5", 1),  # prose after a marker: the box stands
    ("x = $\\boxed{3}$ or x = $\\boxed{-2}$. The answer is positive.", "-2", 0),
])
def test_marker_distractors(completion, reference, expected):
    assert get_verifier("math").verify(completion=completion, reference=reference).reward == expected


@pytest.mark.parametrize("text, answer", [
    ("It comes to (2, -1).", "(2, -1)"),  # a short sentence ending in structured math
    ("Answer 10^6", "10^6"),
    (STEPS + "#### No", "No"),  # #### with letters counts on the last line only
    (STEPS + "The answer is: No, which cannot be simplified further.", "No"),  # a comment clause is cut
    (STEPS + "The answer is $x = 2$, so $y = 3$ is not needed.", "x = 2"),
])
def test_sentence_endings(text, answer):
    assert extract_candidates(text)[0].answer == answer
