"""capabilities(): every layer is reported, with a reason when it is not active."""
import os
import sys
import subprocess

import pytest

from sandbox import IsolationError, SandboxPool, capabilities, missing_layers
from sandbox.isolation import LAYERS
from tests.sandbox.support import needs


def test_every_layer_is_reported_with_a_reason_when_inactive():
    report = capabilities()
    assert set(report) == set(LAYERS)
    for name, info in report.items():
        assert set(info) == {"active", "applicable", "what", "detail", "reason"}
        assert info["active"] or info["reason"], name


def test_the_basic_layers_are_always_active():
    report = capabilities()
    for name in ("session", "rlimits", "workdir", "clean_env"):
        assert report[name]["active"], report[name]


def test_exactly_one_of_drop_uid_and_userns_applies():
    report = capabilities()
    assert report["drop_uid"]["applicable"] != report["userns"]["applicable"]
    assert report["drop_uid"]["applicable"] == (os.geteuid() == 0)


def test_capabilities_import_nothing_of_rlvr_or_torch():
    code = "import sys, sandbox; sandbox.capabilities(); print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'rlvr', 'verifiers')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    assert out.stdout.strip() == "[]"


def test_strict_pool_refuses_when_a_layer_is_missing():
    if not missing_layers(capabilities()):
        pytest.skip("every applicable layer is active here; nothing to refuse")
    with pytest.raises(IsolationError):
        SandboxPool(workers=1, strict=True)


def test_runs_report_the_layers_applied(run):
    result = run("print('x')")
    assert set(result.layers) == {n for n, i in capabilities().items() if i["active"]}


@needs("pidns")
def test_program_is_pid_one_of_its_namespace(run):
    assert run("import os; print(os.getpid())").stdout == "1\n"


@needs("drop_uid")
def test_program_runs_as_an_unprivileged_uid(run):
    uid = int(run("import os; print(os.getuid())").stdout)
    assert uid >= 1_000_000


def test_strict_pool_starts_when_every_layer_is_there():
    if missing_layers(capabilities()):
        pytest.skip("some layer is unavailable here")
    with SandboxPool(workers=1, strict=True) as strict:
        assert strict.layers


@pytest.mark.skipif(os.geteuid() != 0, reason="the root-specific refusal")
def test_root_without_a_private_uid_is_refused_before_anything_runs():
    with pytest.raises(IsolationError, match="as root"):
        SandboxPool(workers=1, disable=("drop_uid",))


@pytest.mark.skipif(os.geteuid() == 0, reason="the unprivileged refusal")
def test_unprivileged_without_a_pid_namespace_is_refused():
    with pytest.raises(IsolationError, match="PID namespace"):
        SandboxPool(workers=1, disable=("pidns",))
