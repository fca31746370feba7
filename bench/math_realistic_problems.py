"""Problems behind ``bench/cases/realistic_completions.jsonl`` (written for this repo).

Each problem is a reference answer as a dataset would store it, the forms a model writes
a correct answer in, plausible wrong answers, and chain-of-thought steps full of the
intermediate numbers a real solution carries (distractors for last-number readers).
``math_realistic_gen.py`` wraps them in the endings of the common model families.
``numeric`` problems also get GSM8K-style ``####`` endings (a plain number).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    key: str
    reference: str
    right: tuple[str, ...]  # LaTeX forms of a correct answer
    wrong: tuple[str, ...]  # plausible wrong answers
    steps: tuple[str, ...]  # chain-of-thought paragraphs
    numeric: bool = False  # a plain number: GSM8K endings apply


P = Problem
PROBLEMS: tuple[Problem, ...] = (
    P("apples", "18", ("18",), ("16", "20"), (
        "Maya starts with 24 apples and gives away 9 of them, so she has $24 - 9 = 15$ apples left.",
        "Then her neighbour brings 3 more, which gives $15 + 3 = 18$ apples.",
        "Double-checking: 24 minus 9 is 15, and 15 plus 3 is 18."), True),
    P("wages", "1,260", ("1260", "1,260", "\\$1260"), ("1200", "1320"), (
        "Each week she works 5 shifts of 7 hours, that is $5 \\times 7 = 35$ hours.",
        "At \\$12 per hour she earns $35 \\times 12 = 420$ dollars a week.",
        "Over 3 weeks this is $3 \\times 420 = 1260$ dollars."), True),
    P("train", "75", ("75", "75 \\text{ km/h}"), ("70", "80"), (
        "The train covers 300 km in 4 hours.",
        "Its average speed is distance over time: $\\frac{300}{4} = 75$ km per hour.",
        "For comparison, a car doing 60 km/h would need 5 hours."), True),
    P("percent", "25\\%", ("25\\%", "25"), ("20\\%", "30\\%"), (
        "The price dropped from \\$80 to \\$60, a decrease of $80 - 60 = 20$ dollars.",
        "As a fraction of the original price: $\\frac{20}{80} = \\frac{1}{4}$.",
        "Converting $\\frac14$ to a percentage gives $0.25 \\times 100$."), True),
    P("eggs", "32", ("32",), ("30", "36"), (
        "There are 4 cartons with 12 eggs each, so $4 \\cdot 12 = 48$ eggs.",
        "16 eggs were used for baking: $48 - 16 = 32$.",
        "The remaining eggs will last 8 days at 4 eggs per day."), True),
    P("average", "86", ("86", "86.0"), ("85", "88"), (
        "The scores are 78, 92, 85 and 89; their sum is $78 + 92 + 85 + 89 = 344$.",
        "Dividing by the 4 tests: $344 / 4 = 86$.",
        "So the student needs 90 on the next test to raise the average above 86."), True),
    P("frac_sum", "\\frac{7}{12}", ("\\frac{7}{12}", "\\dfrac{7}{12}", "7/12"), ("\\frac{5}{12}", "\\frac{2}{7}"), (
        "We add $\\frac13$ and $\\frac14$ using the common denominator 12.",
        "$\\frac{1}{3} = \\frac{4}{12}$ and $\\frac{1}{4} = \\frac{3}{12}$.",
        "Adding the numerators, $4 + 3 = 7$, over the denominator 12."), True),
    P("prob_dice", "\\frac{1}{6}", ("\\frac{1}{6}", "\\frac{6}{36}", "1/6"), ("\\frac{5}{36}", "\\frac{1}{12}"), (
        "Two fair dice give $6 \\times 6 = 36$ equally likely outcomes.",
        "A sum of 7 comes from (1,6), (2,5), (3,4), (4,3), (5,2) and (6,1): 6 outcomes.",
        "The probability is the favourable count over 36."), False),
    P("sqrt_simplify", "6\\sqrt{2}", ("6\\sqrt{2}", "6 \\sqrt 2", "\\sqrt{72}"), ("2\\sqrt{6}", "4\\sqrt{2}", "6\\sqrt{3}"), (
        "We factor 72 as $36 \\cdot 2$.",
        "Since $\\sqrt{36} = 6$, we get $\\sqrt{72} = \\sqrt{36}\\sqrt{2}$.",
        "Note that 72 is also $8 \\cdot 9$, which gives the same result."), False),
    P("rationalize", "\\frac{\\sqrt{3}}{3}", ("\\frac{\\sqrt{3}}{3}", "\\frac{1}{\\sqrt{3}}", "\\frac{\\sqrt3}{3}"), ("\\sqrt{3}", "\\frac{\\sqrt{3}}{2}"), (
        "Multiply numerator and denominator of $\\frac{1}{\\sqrt{3}}$ by $\\sqrt{3}$.",
        "The denominator becomes $\\sqrt{3} \\cdot \\sqrt{3} = 3$."), False),
    P("quadratic_roots", "2, 3", ("2, 3", "3, 2", "x = 2, 3", "x=2 \\text{ or } x=3"), ("-2, -3", "2, -3", "6"), (
        "We need two numbers whose product is 6 and whose sum is 5.",
        "These are 2 and 3, so $x^2 - 5x + 6 = (x-2)(x-3)$.",
        "Setting each factor to 0 gives the roots."), False),
    P("linear", "x = -4", ("-4", "x=-4", "x = -4"), ("4", "x=-3"), (
        "Start from $3x + 7 = -5$.",
        "Subtract 7 from both sides: $3x = -12$.",
        "Divide by 3."), False),
    P("base8", "137_8", ("137_8", "137_{8}"), ("173_8", "135_8"), (
        "We convert 95 to base 8 by repeated division.",
        "$95 = 11 \\cdot 8 + 7$, and $11 = 1 \\cdot 8 + 3$, and $1 = 0 \\cdot 8 + 1$.",
        "Reading the remainders from last to first gives the digits 1, 3, 7."), False),
    P("pair", "(2, -1)", ("(2, -1)", "(2,-1)", "(x, y) = (2, -1)"), ("(-1, 2)", "(2, 1)"), (
        "Adding the equations $x + y = 1$ and $x - y = 3$ gives $2x = 4$, so $x = 2$.",
        "Substituting back, $2 + y = 1$ gives $y = -1$.",
        "Check: $2 - (-1) = 3$."), False),
    P("triple", "1, 2, 3", ("(x, y, z) = (1, 2, 3)", "1, 2, 3", "(1,2,3)"), ("(1, 3, 2)", "(2, 1, 3)"), (
        "From the third equation $z = 3$.",
        "Substituting into the second, $y + 3 = 5$, so $y = 2$.",
        "Finally $x + 2 + 3 = 6$ gives $x = 1$."), False),
    P("interval", "(2, \\infty)", ("(2, \\infty)", "(2,\\infty)", "x > 2"), ("[2, \\infty)", "(-\\infty, 2)"), (
        "We solve $3x - 1 > 5$: adding 1 gives $3x > 6$.",
        "Dividing by 3 gives $x > 2$; the endpoint 2 itself is excluded."), False),
    P("setbuilder_ref", "\\{x \\mid x \\geq 3\\}", ("[3, \\infty)", "x \\geq 3", "[3,\\infty)"), ("(3, \\infty)", "(-\\infty, 3]"), (
        "The square root $\\sqrt{x-3}$ is defined when $x - 3 \\ge 0$.",
        "That is, for every x of at least 3; at $x = 3$ the value is 0."), False),
    P("func_ref", "g(x) = 2x + 5", ("2x+5", "g(x) = 2x + 5", "5 + 2x"), ("2x - 5", "x + 5"), (
        "Shifting $f(x) = 2x$ up by 5 units adds 5 to every value.",
        "So the new function is $f(x) + 5$; for example at $x = 1$ it is 7."), False),
    P("approx_ref", "\\frac{\\sqrt{2}}{2} \\approx 0.7071", ("\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}"), ("\\frac{\\sqrt{3}}{2}", "\\sqrt{2}"), (
        "The angle is 45 degrees, so we need $\\cos 45^\\circ$.",
        "In the isosceles right triangle with legs 1 and 1, the hypotenuse is $\\sqrt{2}$.",
        "The cosine is adjacent over hypotenuse, $\\frac{1}{\\sqrt 2}$."), False),
    P("choice_ref", "(C) 24", ("24", "(C)", "\\text{(C)}", "C"), ("(B)", "18", "(D)"), (
        "The number of arrangements of 4 distinct books is $4!$.",
        "$4! = 4 \\cdot 3 \\cdot 2 \\cdot 1$.",
        "The options are (A) 12, (B) 18, (C) 24, (D) 30."), False),
    P("degree_ref", "60^", ("60", "60^\\circ", "60^{\\circ}"), ("30", "120^\\circ"), (
        "The angles of an equilateral triangle are equal and sum to $180^\\circ$.",
        "So each angle is $\\frac{180}{3}$ degrees; the exterior angle is 120."), False),
    P("chain_simplify", "\\frac{3}{4}", ("\\frac{6}{8} = \\frac{3}{4}", "\\frac{3}{4}", "0.75"), ("\\frac{6}{8} = \\frac{2}{3}", "\\frac{4}{3}"), (
        "Out of 8 marbles, 6 are blue.",
        "The fraction of blue marbles is $\\frac{6}{8}$, which reduces by 2."), False),
    P("expand", "x^2 + 6x + 9", ("(x+3)^2 = x^2 + 6x + 9", "x^2+6x+9", "9 + 6x + x^2"), ("x^2 + 9", "x^2+3x+9"), (
        "We expand $(x+3)^2 = (x+3)(x+3)$.",
        "The cross terms give $3x + 3x = 6x$ and the constant is $3 \\cdot 3 = 9$."), False),
    P("forall_func", "f(x) = 3x", ("f(x) = 3x \\text{ for all } x \\in \\mathbb{R}", "3x", "f(x)=3x"), ("f(x) = x + 3", "f(x) = 3"), (
        "Setting $y = 0$ in the equation gives $f(x) = f(x) + f(0)$, so $f(0) = 0$.",
        "Setting $x = 1$ shows $f(y+1) = f(y) + 3$, and continuity gives linearity.",
        "With $f(1) = 3$, the slope is 3."), False),
    P("set_repeat", "\\{1, 2\\}", ("\\{1, 2\\}", "\\{1, 1, 2\\}", "\\{2, 1\\}"), ("\\{1, 3\\}", "\\{2\\}"), (
        "The roots of $(x-1)^2(x-2) = 0$ are 1 (twice) and 2.",
        "As a set, repeated roots are listed once."), False),
    P("trig_deg", "\\frac{1}{2}", ("\\frac{1}{2}", "\\sin 30^\\circ", "\\cos 60^\\circ", "0.5"), ("\\frac{\\sqrt{3}}{2}", "\\sin 60^\\circ"), (
        "In a 30-60-90 triangle with hypotenuse 2, the side opposite 30 degrees is 1.",
        "So the ratio of the short leg to the hypotenuse is $1 : 2$."), False),
    P("tiny", "1.2 \\times 10^{-8}", ("1.2 \\times 10^{-8}", "0.000000012", "1.2e-8"), ("2.4 \\times 10^{-8}", "0.000000024", "1.2 \\times 10^{-9}"), (
        "The rate constant is $6 \\times 10^{-9}$ per second and there are 2 moles.",
        "Multiplying, $2 \\times 6 \\times 10^{-9}$ gives the answer in mol/s."), False),
    P("binomial", "120", ("\\binom{10}{3}", "\\frac{10!}{3!\\,7!}", "120"), ("\\frac{10!}{3!}", "720", "210"), (
        "We choose 3 of the 10 students, and order does not matter.",
        "The count is $\\frac{10 \\cdot 9 \\cdot 8}{3 \\cdot 2 \\cdot 1}$; with order it would be 720."), False),
    P("mod", "2", ("2", "17 \\bmod 5 = 2"), ("17", "3"), (
        "We divide 17 by 5: $17 = 3 \\cdot 5 + 2$.",
        "The quotient is 3 and we want what is left over."), False),
    P("modn", "n", ("n",), ("n \\mod 5", "n \\bmod 3"), (
        "Adding $n$ to itself 5 times and then dividing by 5 leaves $n$ unchanged.",
        "Indeed $\\frac{5n}{5}$ simplifies."), False),
    P("pi_area", "16\\pi", ("16\\pi", "16 \\pi", "\\pi \\cdot 16"), ("8\\pi", "4\\pi", "16"), (
        "The diameter is 8, so the radius is 4.",
        "The area of a circle is $\\pi r^2 = \\pi \\cdot 4^2$."), False),
    P("log", "3", ("3", "\\log_2 8"), ("2", "4"), (
        "We want the power of 2 that gives 8.",
        "$2^1 = 2$, $2^2 = 4$, $2^3 = 8$."), True),
    P("complex", "3 + 4i", ("3+4i", "3 + 4i", "4i + 3"), ("3 - 4i", "4 + 3i"), (
        "Multiply $(2 + i)^2 = 4 + 4i + i^2$.",
        "Since $i^2 = -1$, the real part is $4 - 1$."), False),
    P("matrix", "\\begin{pmatrix} 3 \\\\ 7 \\end{pmatrix}", ("\\begin{pmatrix} 3 \\\\ 7 \\end{pmatrix}", "\\begin{pmatrix}3\\\\7\\end{pmatrix}"),
      ("\\begin{pmatrix} 7 \\\\ 3 \\end{pmatrix}", "\\begin{pmatrix} 3 \\\\ 5 \\end{pmatrix}"), (
        "We compute $\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix} \\begin{pmatrix} 1 \\\\ 1 \\end{pmatrix}$.",
        "The first entry is $1 + 2$ and the second is $3 + 4$."), False),
    P("pm", "1 \\pm \\sqrt{2}", ("1 \\pm \\sqrt{2}", "1 + \\sqrt{2}, 1 - \\sqrt{2}"), ("1 \\pm \\sqrt{3}", "1 + \\sqrt{2}"), (
        "By the quadratic formula for $x^2 - 2x - 1 = 0$: $x = \\frac{2 \\pm \\sqrt{4 + 4}}{2}$.",
        "Since $\\sqrt{8} = 2\\sqrt{2}$, dividing by 2 gives the roots."), False),
    P("word_yes", "\\text{Yes}", ("\\text{Yes}", "Yes", "yes"), ("No", "\\text{No}"), (
        "We check whether 91 can be written as a product of two integers greater than 1.",
        "Indeed $91 = 7 \\cdot 13$, so 91 is composite."), False),
    P("money_dec", "2.50", ("2.50", "2.5", "\\$2.50"), ("7.50", "3.50"), (
        "Three notebooks cost \\$2.50 each, so $3 \\times 2.50 = 7.50$ dollars.",
        "She pays with a \\$10 bill, so her change is $10 - 7.50$ dollars."), True),
    P("minutes", "45", ("45", "45 \\text{ minutes}"), ("40", "90"), (
        "The first pump fills the tank in 90 minutes, so it fills $\\frac{1}{90}$ of it per minute.",
        "The second pump is just as fast, so together they fill $\\frac{2}{90} = \\frac{1}{45}$ of the tank per minute."), True),
    P("garden", "96", ("96", "96 \\text{ m}^2"), ("40", "48"), (
        "The garden is 12 m long and 8 m wide, so its area is $12 \\times 8$ square metres.",
        "Its perimeter, $2(12 + 8) = 40$ m, is not what is asked."), True),
    P("bus", "23", ("23",), ("22", "24"), (
        "There were 35 people on the bus; 17 got off at the first stop, leaving $35 - 17 = 18$.",
        "At the second stop 5 more got on: $18 + 5$."), True),
    P("savings", "8", ("8", "8 \\text{ weeks}"), ("7", "9"), (
        "The bike costs \\$120 and Tom has \\$40, so he still needs $120 - 40 = 80$ dollars.",
        "Saving \\$10 a week, that takes $80 / 10$ weeks."), True),
    P("pages", "150", ("150",), ("120", "180"), (
        "She reads 30 pages a day for 5 days, that is $30 \\cdot 5$ pages.",
        "The book has 200 pages, so 50 remain."), True),
    P("marbles", "14", ("14",), ("12", "16"), (
        "Jack has 3 times as many marbles as Jill, who has 7; so Jack has 21.",
        "After Jack gives away 7, he has $21 - 7$ left."), True),
    P("pizza_cost", "6.25", ("6.25", "\\$6.25"), ("6.20", "25"), (
        "The pizza costs \\$25 and is shared by 4 friends.",
        "Each pays $25 / 4$ dollars."), True),
    P("prose_point", "the point (3, -2)", ("(3, -2)", "(3,-2)", "(x, y) = (3, -2)"), ("(-2, 3)", "(3, 2)"), (
        "The line $y = -2$ meets the line $x = 3$ where both equations hold.",
        "So the intersection has x-coordinate 3 and y-coordinate -2."), False),
    P("prose_area", "18 \\text{ square units}", ("18", "18 \\text{ square units}", "18 \\text{ units}^2"), ("36", "9"), (
        "The triangle has base 6 and height 6.",
        "Its area is $\\frac{1}{2} \\cdot 6 \\cdot 6$; a square with the same side would have area 36."), False),
    P("ratio", "3:5", ("3:5", "\\frac{3}{5}"), ("5:3", "3:8"), (
        "There are 12 boys and 20 girls in the class.",
        "Dividing both by their greatest common divisor 4 gives 3 and 5."), False),
)
