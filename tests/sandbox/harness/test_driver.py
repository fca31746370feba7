"""to_plain: what the assert harness hands to test code instead of the candidate's value."""
import pytest

from sandbox.harness.driver import Opaque, to_plain


def test_builtin_values_are_copied_exactly():
    value = (1, 2.5, "s", b"b", None, True, [1, {"k": {3}}], frozenset({4}))
    assert to_plain(value) == value and type(to_plain(value)) is tuple


def test_foreign_objects_become_opaque_and_refuse_comparison():
    class Anything:
        def __eq__(self, other):
            return True

    plain = to_plain([Anything()])
    assert type(plain[0]) is Opaque
    with pytest.raises(TypeError):
        plain[0] == 1  # noqa: B015
    with pytest.raises(TypeError):
        bool(plain[0])


def test_builtin_subclasses_are_not_builtin():
    class Liar(str):
        def __eq__(self, other):
            return True

    assert type(to_plain(Liar("x"))) is Opaque
