import pytest

from sandbox import Limits


def test_defaults_are_valid_and_cpu_follows_wall():
    limits = Limits(wall_s=3.0)
    assert limits.cpu_seconds == 3.0
    assert Limits(wall_s=3.0, cpu_s=1.0).cpu_seconds == 1.0


@pytest.mark.parametrize("field", ["wall_s", "memory_bytes", "processes", "output_bytes", "disk_bytes"])
def test_non_positive_limits_are_rejected(field):
    with pytest.raises(ValueError, match=field):
        Limits(**{field: 0})


def test_too_few_open_files_is_rejected():
    with pytest.raises(ValueError, match="open_files"):
        Limits(open_files=3)


def test_with_returns_a_validated_copy():
    assert Limits().with_(wall_s=2.0).wall_s == 2.0
    with pytest.raises(ValueError):
        Limits().with_(wall_s=-1)
