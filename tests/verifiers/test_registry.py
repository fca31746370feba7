from dataclasses import dataclass

import pytest

from verifiers import BaseVerifier, OptionsError, Verdict, available_verifiers, get_verifier, register


def test_builtins_are_registered():
    names = available_verifiers()
    for name in ("math", "exact", "choice", "format"):
        assert name in names


def test_unknown_name_lists_known_ones():
    with pytest.raises(KeyError) as info:
        get_verifier("no_such_verifier")
    message = str(info.value)
    assert "no_such_verifier" in message and "math" in message and "exact" in message


@dataclass(frozen=True)
class _Opts:
    threshold: float = 0.5
    strict: bool = False
    count: int = 1


@register("test_options")
class _WithOptions(BaseVerifier):
    Options = _Opts

    def verify(self, *, completion, reference, **fields):
        return Verdict(1.0, "correct")


def test_options_are_typed_and_coerced_from_strings():
    verifier = get_verifier("test_options", threshold="0.25", strict="yes", count="3")
    assert verifier.options == _Opts(0.25, True, 3)


def test_unknown_option_lists_valid_ones():
    with pytest.raises(OptionsError, match="valid options: count, strict, threshold"):
        get_verifier("test_options", treshold=1)


def test_bad_option_value_is_a_clear_error():
    with pytest.raises(OptionsError, match="count"):
        get_verifier("test_options", count="many")


def test_double_registration_is_refused():
    with pytest.raises(ValueError, match="already registered"):
        register("test_options")(type("Other", (BaseVerifier,), {}))


def test_math_contract():
    verdict = get_verifier("math").verify(completion="so \\boxed{1/2}", reference="0.5")
    assert isinstance(verdict, Verdict) and verdict.reward == 1.0 and verdict.reason == "correct"
    assert get_verifier("math").verify(completion="no idea", reference="2").reason == "no_answer"
