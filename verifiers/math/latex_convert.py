"""LaTeX -> sympy through latex2sympy2_extended, with ANTLR driven as cheaply as it allows.

We never hand-parse LaTeX: every tree comes from latex2sympy2_extended's ANTLR grammar
(its 4.9 runtime is the one hydra-core pins). What this module chooses is *how* that
grammar is run, each choice giving the tree latex2sympy's own ``parse`` would give:

* SLL prediction first, full LL only when SLL reports a syntax error (the standard
  two-stage ANTLR strategy; SLL either yields LL's tree or fails);
* the grammar's ``relation`` rule as the entry point, for the answer or for each item
  of a top-level comma list, when the tokens rule out every other reading (see
  `_relation_only`): the top rule ``math`` otherwise has to look ahead over a whole
  item to choose between a set element, a set relation and a relation, and each new
  token sequence costs it fresh DFA states;
* in such a relation, a letter with a plain subscript (``a_{12}``) or a superscript
  (``x^2``) spelled as the grammar's ``\\variable{...}`` token, which denotes the same
  sympy Symbol (see `_plain_symbols`): the grammar's subscript/superscript decision
  makes SLL fail on every such letter, and the full-LL reparse cost 5-30 ms each;
* equations one side at a time (each side is SLL-friendly; the whole often is not);
* number literals built directly rather than through sympify's string parser.
"""
from __future__ import annotations

import re

import sympy
from antlr4 import CommonTokenStream, InputStream, Token
from antlr4.atn.PredictionMode import PredictionMode
from antlr4.error.ErrorStrategy import BailErrorStrategy
from latex2sympy2_extended import NormalizationConfig, normalize_latex
from latex2sympy2_extended.antlr_parser import PSLexer, PSParser
from latex2sympy2_extended.latex2sympy2 import ConversionConfig, _Latex2Sympy, comma_number_regex
from latex2sympy2_extended.sets import FiniteSet as L2SFiniteSet

from verifiers.latex_text import split_top_level

__all__ = ["convert_latex"]

_NORMALIZATION = NormalizationConfig(
    basic_latex=True, units=True, malformed_operators=True, nits=True, boxed="none", equations=False
)
_CONVERSION = ConversionConfig(interpret_as_mixed_fractions=True, interpret_contains_as_eq=True)
_DIGITS_RE = re.compile(r"^\d+$")
_DECIMAL_RE = re.compile(r"^\d*\.\d+$|^\d+\.$")


class _LLConverter(_Latex2Sympy):
    """latex2sympy, with number literals built directly rather than through sympify's
    string parser (which cost about a millisecond per literal)."""

    def parse_number(self, text):  # noqa: D102 - latex2sympy's hook
        text = text.replace(",", "")
        try:
            if _DIGITS_RE.match(text):
                return sympy.Integer(int(text))
            if _DECIMAL_RE.match(text):
                return sympy.Float(text)
        except ValueError:
            pass
        return super().parse_number(text)


# Tokens through which the top rule ``math`` can read something other than one relation
# (a list, a set operation, ``x = 1, 2``, ``a \pm b``, a literal set), wherever they stand.
_SET_LEVEL = frozenset((
    PSParser.COMMA, PSParser.SEMICOLON, PSParser.PLUS_MINUS, PSParser.NOTIN, PSParser.SUBSET,
    PSParser.SUPSET, PSParser.SET_MINUS, PSParser.UNION, PSParser.INTERSECTION, PSParser.SET_EMPTY,
    PSParser.SET_NATURALS, PSParser.SET_INTEGERS, PSParser.SET_RATIONALS, PSParser.SET_REALS,
    PSParser.SET_COMPLEX, PSParser.SET_PRIMES,
))
# ``x = ...`` / ``x \in ...`` start a set-level reading only outside any brackets
_TOP_LEVEL_ONLY = frozenset((PSParser.ASSIGNMENT, PSParser.IN))
_OPENERS = frozenset((
    PSParser.L_PAREN, PSParser.L_BRACE, PSParser.L_BRACKET, PSParser.L_BRACE_VISUAL,
    PSParser.L_BRACE_CMD, PSParser.L_BRACK, PSParser.L_GROUP, PSParser.L_PAREN_VISUAL,
))
_CLOSERS = frozenset((
    PSParser.R_PAREN, PSParser.R_BRACE, PSParser.R_BRACKET, PSParser.R_BRACE_VISUAL,
    PSParser.R_BRACE_CMD, PSParser.R_BRACK, PSParser.R_GROUP, PSParser.R_PAREN_VISUAL,
))
_SET_ATOM_OPENERS = frozenset((PSParser.L_PAREN, PSParser.L_BRACKET, PSParser.L_BRACE, PSParser.L_BRACE_VISUAL))
# a whole answer in braces is a finite set for ``math``, a plain group for ``relation``
_SET_WRAPPERS = frozenset((PSParser.L_BRACE, PSParser.L_BRACE_VISUAL, PSParser.L_BRACE_CMD, PSParser.BOXED_CMD))


def _relation_only(types: list[int]) -> bool:
    """True when ``math`` can only read these tokens as one relation, so that parsing
    from ``relation`` gives latex2sympy's value. (A whole answer in parentheses or
    square brackets is a one-element tuple for ``math``, which latex2sympy unwraps to
    the same value the group gives.)"""
    if not types or types[0] in _SET_WRAPPERS:
        return False
    depth = 0
    for kind in types:
        if kind in _SET_LEVEL or (depth == 0 and kind in _TOP_LEVEL_ONLY):
            return False
        if kind in _OPENERS:
            depth += 1
        elif kind in _CLOSERS:
            depth -= 1
    return True


_PLAIN_SUBSCRIPT = frozenset((PSParser.LETTER_NO_E, PSParser.NUMBER))
# after these a letter's sub/superscript belongs to a function call (``f_1(x)``,
# ``f^{-1}(x)``), a double script or a transpose/degree mark: such letters stay as written
_KEEP_BEFORE = frozenset((
    PSParser.L_PAREN, PSParser.L_BRACKET, PSParser.L_BRACE, PSParser.UNDERSCORE, PSParser.CARET,
    *range(PSParser.T__0, PSParser.WS),
))
# tokens whose conversion reads the raw text or token positions around letters
_NO_REWRITE = frozenset((
    PSParser.DIFFERENTIAL, PSParser.MATRIX_XRIGHTARROW, PSParser.CMD_MATHIT, PSParser.CMD_OPERATORNAME,
    PSParser.SYMBOL,
))


def _script_end(tokens: list, start: int) -> int:
    """Index just after the script whose ``_``/``^`` is ``tokens[start]``."""
    if start + 1 >= len(tokens) or tokens[start + 1].type != PSParser.L_BRACE:
        return start + 2
    depth, index = 0, start + 1
    for index in range(start + 1, len(tokens)):
        depth += {PSParser.L_BRACE: 1, PSParser.R_BRACE: -1}.get(tokens[index].type, 0)
        if depth == 0:
            break
    return index + 1


def _subscript_name(tokens: list, start: int, end: int) -> str | None:
    """The text latex2sympy names a subscript ``tokens[start:end]`` by (``_1``, ``_{ab}``),
    when it is made of letters and digits only."""
    inner = tokens[start + 1 : end]
    if len(inner) > 1:
        if inner[0].type != PSParser.L_BRACE or inner[-1].type != PSParser.R_BRACE:
            return None
        inner = inner[1:-1]
    if not inner or any(t.type not in _PLAIN_SUBSCRIPT or not t.text.isalnum() for t in inner):
        return None
    text = "".join(t.text for t in inner)
    return f"_{text}" if len(text) == 1 else f"_{{{text}}}"


def _plain_symbols(text: str, tokens: list) -> str | None:
    """``text`` with each letter that carries a plain subscript or a superscript written
    as ``\\variable{name}``; None when nothing changes.

    latex2sympy turns both spellings into ``Symbol(name)`` (lower-cased alike), and
    ``x^2`` into the same ``Pow``; letters inside a subscript are left alone (the
    subscript's text is the symbol's name), as are ``I`` (latex2sympy's imaginary unit)
    and letters followed by a call or another script (`_KEEP_BEFORE`).
    """
    if any(t.type in _NO_REWRITE for t in tokens):
        return None
    pieces, copied, index = [], 0, 0
    while index < len(tokens):
        token = tokens[index]
        if token.type == PSParser.UNDERSCORE:  # a script not on a letter: skip it whole
            index = _script_end(tokens, index)
            continue
        following = tokens[index + 1].type if index + 1 < len(tokens) else None
        if token.type != PSParser.LETTER_NO_E or token.text == "I" or following not in (PSParser.UNDERSCORE, PSParser.CARET):
            index += 1
            continue
        end = _script_end(tokens, index + 1)
        after = tokens[end].type if end < len(tokens) else None
        name = _subscript_name(tokens, index + 1, end) if following == PSParser.UNDERSCORE else ""
        if after in _KEEP_BEFORE or name is None:
            index = end if following == PSParser.UNDERSCORE else index + 1
            continue
        last = tokens[end - 1] if name else token
        pieces.append(f"{text[copied:token.start]}\\variable{{{token.text}{name}}}")
        copied = last.stop + 1
        index = end if name else index + 1
    if not pieces:
        return None
    return "".join(pieces) + text[copied:]


class _SLLConverter(_LLConverter):
    """latex2sympy with ANTLR's SLL prediction: about 5x faster than full LL, and from
    the ``relation`` rule, element by element of a top-level comma list, when
    `_relation_only` allows. Any syntax error here means: parse again with
    `_LLConverter` (SLL either yields LL's tree or fails)."""

    def create_parser(self, latex_str):  # noqa: D102 - latex2sympy's hook
        parser = super().create_parser(latex_str)
        parser._interp.predictionMode = PredictionMode.SLL
        # stop at the first error (we reparse with LL) instead of trying to recover:
        # the default strategy's per-decision sync cost ~15% of a parse
        parser._errHandler = BailErrorStrategy()
        return parser

    def parse(self, latex_str):  # noqa: D102 - latex2sympy's entry point
        parser = self.create_parser(latex_str)
        stream = parser.getTokenStream()
        stream.fill()
        tokens = stream.tokens[:-1]  # without EOF
        items = _top_level_items(tokens)
        readers = [self._reader([token.type for token in item]) for item in items]
        if None in readers:
            return super().parse(latex_str)
        if len(items) == 1:
            return readers[0](latex_str, tokens, parser)
        if comma_number_regex.match(latex_str):  # latex2sympy reads 3,333 as a number
            return super().parse(latex_str)
        # ``a, (b, c)``: what latex2sympy's set_elements makes of these elements
        values = [read(latex_str[item[0].start : item[-1].stop + 1]) for read, item in zip(readers, items)]
        return self.convert_elements_to_set_or_tuple([values])

    def _reader(self, kinds: list[int]):
        """The rule ``math`` would read one element with (`_relation` or `_set_atom`),
        or None when only ``math`` itself can tell."""
        if _relation_only(kinds):
            return self._relation
        return self._set_atom if _bracketed(kinds) else None

    def _tokens(self, text: str) -> list:
        lexer = PSLexer(InputStream(text))
        lexer.removeErrorListeners()  # a lexing error surfaces when the parser re-reads the text
        stream = CommonTokenStream(lexer)
        stream.fill()
        return stream.tokens[:-1]  # without EOF

    def _relation(self, text: str, tokens: list | None = None, parser=None) -> sympy.Basic:
        """``text`` parsed from the grammar's ``relation`` rule, to its end (``tokens``
        and ``parser``, when given, are ``text``'s, already lexed)."""
        plain = _plain_symbols(text, self._tokens(text) if tokens is None else tokens)
        if plain is not None or parser is None:
            parser = self.create_parser(text if plain is None else plain)
        tree = parser.relation()
        if parser.getCurrentToken().type != Token.EOF:
            raise ValueError("input continues after the relation")
        return self.convert_relation(tree)


    def _set_atom(self, text: str, tokens: list | None = None, parser=None) -> sympy.Basic:
        """``text`` parsed from the grammar's ``set_atom`` rule (interval, tuple, set)."""
        parser = parser or self.create_parser(text)
        tree = parser.set_atom()
        if parser.getCurrentToken().type != Token.EOF:
            raise ValueError("input continues after the set")
        return self.convert_set_atom(tree)


def _bracketed(kinds: list[int]) -> bool:
    """One bracketed whole (its first bracket closes at its last token) with no set-level
    token outside it: ``math`` reads it as a ``set_atom`` element, since its other
    readings (a relation, a set relation) come after set_atom in the grammar."""
    if len(kinds) < 2 or kinds[0] not in _SET_ATOM_OPENERS:
        return False
    depth = 0
    for index, kind in enumerate(kinds):
        depth += 1 if kind in _OPENERS else -1 if kind in _CLOSERS else 0
        if depth == 0:
            return index == len(kinds) - 1
    return False


def _top_level_items(tokens: list) -> list[list]:
    """The tokens split at commas outside any brackets (one item when there are none)."""
    items, current, depth = [], [], 0
    for token in tokens:
        if token.type == PSParser.COMMA and depth == 0:
            items.append(current)
            current = []
            continue
        depth += 1 if token.type in _OPENERS else -1 if token.type in _CLOSERS else 0
        current.append(token)
    items.append(current)
    return items


def _convert_expression(normalized: str) -> sympy.Basic:
    # fresh converters: latex2sympy keeps per-instance state (values bound by "x \\approx 2")
    try:
        return _SLLConverter(config=_CONVERSION).parse(normalized)
    except RecursionError:
        raise
    except Exception:
        return _LLConverter(config=_CONVERSION).parse(normalized)


# relations we leave to latex2sympy whole: chains, approximations, membership
# (a ratio ``a:b = 3:4`` splits like any equation: ``:`` is division on both sides)
_OTHER_RELATION_RE = re.compile(r"\\(?:approx|in|neq|leq|geq|le|ge|sim|equiv|cong)(?![a-z])|[<>!]")


def _equation(normalized: str) -> sympy.Basic | None:
    """``lhs = rhs`` parsed side by side (each side is SLL-friendly; the whole often is not)."""
    if _OTHER_RELATION_RE.search(normalized):
        return None
    sides = split_top_level(normalized, "=")
    if len(sides) != 2 or not sides[0].strip() or not sides[1].strip():
        return None
    return sympy.Eq(_convert_expression(sides[0]), _convert_expression(sides[1]), evaluate=False)


def convert_latex(text: str) -> sympy.Basic:
    """latex2sympy on the answer; equations and lists of equations one side at a time.

    latex2sympy builds ``Eq(lhs, rhs)`` and a FiniteSet for comma lists itself; splitting
    first gives the same values while letting ANTLR's fast SLL mode parse each piece
    (for whole equations it mostly fails and falls back to full LL, several times slower).
    """
    normalized = normalize_latex(text, _NORMALIZATION)
    if "=" in normalized:
        items = split_top_level(normalized, ",")
        equations = [_equation(item) for item in items]
        if all(eq is not None for eq in equations):
            return equations[0] if len(equations) == 1 else L2SFiniteSet(*equations)
    return _convert_expression(normalized)
