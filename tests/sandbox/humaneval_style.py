"""HumanEval-style problems (prompt, canonical body, ``check``) that need no download.

Chosen to import what real solutions import - ``typing``, ``math``, ``collections``,
``itertools``, ``functools``, ``re``, ``hashlib``, ``json``, ``string``, ``numpy``, and
``socket``/``subprocess`` (imported, never used) - so a layer that hides part of the
runtime from the sandbox uid shows up as failures here.
"""
from __future__ import annotations

from sandbox import run_tests

__all__ = ["PROBLEMS", "score"]


def _p(entry: str, prompt: str, body: str, test: str) -> dict[str, str]:
    return {"entry_point": entry, "prompt": prompt, "canonical_solution": body, "test": test}


PROBLEMS = [
    _p("has_close_elements", "from typing import List\n\n\ndef has_close_elements(numbers: List[float], t: float) -> bool:\n",
       "    import itertools\n    return any(abs(a - b) < t for a, b in itertools.combinations(numbers, 2))\n",
       "def check(candidate):\n    assert candidate([1.0, 2.0, 3.9, 4.0], 0.3) is True\n"
       "    assert candidate([1.0, 2.0, 3.0], 0.5) is False\n"),
    _p("most_common", "import collections\n\n\ndef most_common(words: list) -> str:\n",
       "    return collections.Counter(words).most_common(1)[0][0]\n",
       "def check(candidate):\n    assert candidate(['a', 'b', 'a']) == 'a'\n    assert candidate(['z']) == 'z'\n"),
    _p("digits", "import re\n\n\ndef digits(text: str) -> list:\n",
       "    return [int(d) for d in re.findall(r'\\d+', text)]\n",
       "def check(candidate):\n    assert candidate('a1b22c333') == [1, 22, 333]\n    assert candidate('none') == []\n"),
    _p("digest", "import hashlib\n\n\ndef digest(text: str) -> str:\n",
       "    return hashlib.sha256(text.encode()).hexdigest()[:8]\n",
       "def check(candidate):\n    assert candidate('abc') == 'ba7816bf'\n"),
    _p("roundtrip", "import json\n\n\ndef roundtrip(obj: dict) -> dict:\n",
       "    return json.loads(json.dumps(obj, sort_keys=True))\n",
       "def check(candidate):\n    assert candidate({'b': [1, 2], 'a': None}) == {'a': None, 'b': [1, 2]}\n"),
    _p("hypot_sum", "import math\nfrom functools import reduce\n\n\ndef hypot_sum(xs: list) -> float:\n",
       "    return round(reduce(lambda acc, x: acc + math.hypot(*x), xs, 0.0), 6)\n",
       "def check(candidate):\n    assert candidate([(3, 4), (6, 8)]) == 15.0\n"),
    _p("caesar", "import string\n\n\ndef caesar(text: str, k: int) -> str:\n",
       "    low = string.ascii_lowercase\n    return text.translate(str.maketrans(low, low[k:] + low[:k]))\n",
       "def check(candidate):\n    assert candidate('abc', 1) == 'bcd'\n    assert candidate('xyz', 3) == 'abc'\n"),
    _p("dot", "import numpy as np\n\n\ndef dot(a: list, b: list) -> int:\n",
       "    return int(np.dot(np.array(a), np.array(b)))\n",
       "def check(candidate):\n    assert candidate([1, 2, 3], [4, 5, 6]) == 32\n"),
    _p("host_modules", "import socket\nimport subprocess\n\n\ndef host_modules() -> list:\n",
       "    return sorted([socket.__name__, subprocess.__name__])\n",
       "def check(candidate):\n    assert candidate() == ['socket', 'subprocess']\n"),
    _p("fib", "from functools import lru_cache\n\n\ndef fib(n: int) -> int:\n",
       "    @lru_cache(None)\n    def f(k):\n        return k if k < 2 else f(k - 1) + f(k - 2)\n    return f(n)\n",
       "def check(candidate):\n    assert candidate(30) == 832040\n"),
]


def score(pool, problems: list[dict] = PROBLEMS, wrong: bool = False) -> tuple[int, list[str]]:
    """(problems passed, how the others failed) with canonical bodies, or wrong ones."""
    passed, failures = 0, []
    for p in problems:
        body = "    return None\n" if wrong else p["canonical_solution"]
        report = run_tests(pool, p["prompt"] + body, "python", "assert",
                           {"test": p["test"], "entry_point": p["entry_point"]})
        if report.outcome == "passed":
            passed += 1
        else:
            failures.append(f"{p['entry_point']}: {report.outcome} {report.detail[-300:]}")
    return passed, failures
