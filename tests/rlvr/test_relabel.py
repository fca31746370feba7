"""Relabellers (rlvr.eval.relabel) on a user's own prompts: a rule, an LLM judge through the judge reward source
(a stdlib server on loopback), a reviewed file and a verifier; what each leaves out, and the one-line errors."""
from __future__ import annotations

import json

import pytest

from rlvr.config import ConfigError
from rlvr.eval.badcases import BadCaseLog
from rlvr.eval.badcases_review import main
from rlvr.eval.relabel import RELABELLERS, dense_ranks, make_ranker
from tests.rlvr.test_judge import serve  # noqa: F401  (the fixture: stdlib servers on loopback)

TEXTS = ["Sure.", "Here is a long and careful answer.", "Medium answer."]


def _run(tmp_path, texts=TEXTS, verifier="none", reference=None):
    """A run directory whose bad cases are one prompt of the user's own, with these answers."""
    run = tmp_path / "myrun"
    BadCaseLog(run).write([{"step": 2, "uid": "q-1", "messages": [{"role": "user", "content": "Explain tides."}],
                            "reference": reference, "verifier": verifier, "completion": t, "kinds": ["failed"]}
                           for t in texts])
    return run


def _rows(run):
    return [json.loads(x) for x in (run / "badcases_preferences.jsonl").read_text().splitlines()]


def test_the_four_kinds_are_registered_and_ranks_are_dense():
    assert {"rule", "verifier", "judge", "file"} <= set(RELABELLERS)
    assert dense_ranks([0.5, 1.0, 0.5, 0.0]) == [1.0, 0.0, 1.0, 2.0]
    with pytest.raises(ConfigError, match="unknown relabeller 'oracle'.*file.*judge.*rule.*verifier"):
        make_ranker("oracle", None, {})


def test_a_rule_ranks_a_users_answers(tmp_path, capsys):
    run = _run(tmp_path)
    main([str(run), "--relabel-rule", "length_budget", "--opt", "max_chars=10", "--opt", "falloff_chars=20"])
    (row,) = _rows(run)
    # 5 characters: within budget (1.0); 14: 4 over (0.8); 34: past the fall-off (0.0)
    assert [(a["text"], a["rank"]) for a in row["answers"]] == [(TEXTS[0], 0), (TEXTS[1], 2), (TEXTS[2], 1)]
    assert row["messages"][0]["content"] == "Explain tides." and row["origin"] == "badcases:myrun"


def test_an_unknown_rule_or_option_is_one_line_before_anything_is_read(tmp_path, capsys):
    run = _run(tmp_path)
    for argv, message in ((["--relabel-rule", "no_such_rule"], "unknown rule 'no_such_rule'"),
                          (["--relabel-rule", "length_budget", "--opt", "colour=1"], "has no option(s) colour")):
        with pytest.raises(SystemExit) as exc:
            main([str(run), *argv])
        assert exc.value.code == 2 and message in capsys.readouterr().err
    assert not (run / "badcases_preferences.jsonl").exists()


def test_a_judge_ranks_through_the_judge_source_and_leaves_its_failures_out(serve, tmp_path, capsys):  # noqa: F811
    def respond(n, path, request):
        text = request["messages"][-1]["content"]
        if TEXTS[1] in text:
            return 200, json.dumps({"choices": [{"message": {"content": "No idea."}}]}).encode()  # parse_error
        score = 9 if TEXTS[2] in text else 2
        return 200, json.dumps({"choices": [{"message": {"content": f"SCORES: helpful={score}"}}]}).encode()

    server = serve(respond)
    run = _run(tmp_path)
    main([str(run), "--relabel-judge", "--opt", f"base_url={server.url}", "--opt", "model=judge",
          "--opt", "items=[helpful]", "--opt", "cache=false"])
    (row,) = _rows(run)
    # the unparseable verdict is left out (never ranked last); the other two ranked by the judge's score
    assert [(a["text"], a["rank"]) for a in row["answers"]] == [(TEXTS[0], 1), (TEXTS[2], 0)]
    assert "answers_left_out_by_the_relabeller 1" in capsys.readouterr().out
    assert len(server.calls) == 3


def test_a_judge_without_an_endpoint_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main([str(_run(tmp_path)), "--relabel-judge", "--opt", "model=judge"])
    assert exc.value.code == 2 and "options.base_url" in capsys.readouterr().err


def test_the_file_and_verifier_kinds_from_make_ranker(tmp_path):
    groups = [{"id": "q-1", "messages": [{"role": "user", "content": "2+2?"}], "verifier": "exact", "reference": "4",
               "answers": [{"text": "5", "label": "bad"}, {"text": "4", "label": "good"}, {"text": "3", "label": ""}]}]
    assert make_ranker("file", None, {})(groups) == [[1.0, 0.0, None]]
    assert make_ranker("verifier", "verifier", {})(groups) == [[1.0, 0.0, 1.0]]  # each row's own verifier: exact
    assert make_ranker("rule", "regex", {"pattern": "^[34]$"})(groups) == [[1.0, 0.0, 0.0]]
