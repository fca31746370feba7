"""rlvr-verify: formats, order, untouched fields, exit codes, atomic output, summary."""
from __future__ import annotations

import csv
import itertools
import json
from pathlib import Path

import pytest

from verifiers import cli
from verifiers.datafiles import DataFileError, open_rows, write_rows

ROWS = [
    {"id": 0, "completion": "<answer>Paris</answer>", "reference": "paris", "lang": "en"},
    {"id": 1, "completion": "London", "reference": "Paris", "lang": "en"},
    {"id": 2, "completion": "so \\boxed{Köln}", "reference": "köln", "lang": "de"},
    {"id": 3, "completion": "", "reference": "Rome", "lang": "it"},
    {"id": 4, "completion": "<answer> ROME. </answer>", "reference": "Rome", "lang": "it"},
]
EXPECTED = [("correct", 1.0), ("wrong_answer", 0.0), ("correct", 1.0), ("no_answer", 0.0), ("correct", 1.0)]


def write_input(path: Path, rows: list[dict]) -> Path:
    """Write test input without going through the module under test."""
    suffix = path.suffix
    if suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    elif suffix == ".json":
        path.write_text(json.dumps(rows), encoding="utf-8")
    elif suffix == ".csv":
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    elif suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(["--workers", "1", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def check_scored(rows: list[dict], original: list[dict] = ROWS) -> None:
    assert len(rows) == len(original)
    for row, source, (verdict, reward) in zip(rows, original, EXPECTED):
        assert {k: row[k] for k in source} == source  # every input field untouched
        assert (row["verdict"], row["reward"]) == (verdict, reward)
        assert "verdict_details" in row
        assert set(row) == set(source) | {"reward", "verdict", "verdict_details"}


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".parquet"])
def test_each_format_round_trips_in_order(tmp_path, capsys, suffix):
    src = write_input(tmp_path / f"in{suffix}", ROWS)
    out = tmp_path / f"out{suffix}"
    code, stdout, _ = run(capsys, "exact", "--input", src, "--output", out)
    assert code == 0
    scored = list(open_rows(out).rows)
    if suffix == ".parquet":
        assert all(isinstance(json.loads(r["verdict_details"]), dict) for r in scored)
    else:
        assert all(isinstance(r["verdict_details"], dict) for r in scored)
    check_scored(scored)
    assert "mean reward  0.6000" in stdout


def test_csv_round_trip_keeps_strings(tmp_path, capsys):
    src = write_input(tmp_path / "in.csv", ROWS)
    code, _, _ = run(capsys, "exact", "--input", src, "--output", tmp_path / "out.csv")
    assert code == 0
    scored = list(open_rows(tmp_path / "out.csv").rows)
    as_text = [{k: str(v) for k, v in r.items()} for r in ROWS]
    assert [r["id"] for r in scored] == ["0", "1", "2", "3", "4"]
    assert [{k: r[k] for k in as_text[0]} for r in scored] == as_text
    assert [r["verdict"] for r in scored] == [v for v, _ in EXPECTED]


def test_json_lines_in_a_json_file_and_cross_format_output(tmp_path, capsys):
    src = tmp_path / "in.json"
    src.write_text("\n".join(json.dumps(r) for r in ROWS) + "\n", encoding="utf-8")
    code, _, _ = run(capsys, "exact", "--input", src, "--output", tmp_path / "out.jsonl")
    assert code == 0
    check_scored(list(open_rows(tmp_path / "out.jsonl").rows))


def test_dataset_from_local_directory_file_and_save_to_disk(tmp_path, capsys, monkeypatch):
    import datasets

    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    data_dir = tmp_path / "ds"
    data_dir.mkdir()
    write_input(data_dir / "train.jsonl", ROWS)
    saved = tmp_path / "saved"
    datasets.DatasetDict({"test": datasets.Dataset.from_list(ROWS)}).save_to_disk(str(saved))
    for target, split in [(data_dir, "train"), (data_dir / "train.jsonl", "train"), (saved, "test")]:
        out = tmp_path / "out.jsonl"
        code, stdout, err = run(capsys, "exact", "--dataset", target, "--split", split, "--output", out)
        assert code == 0, err
        check_scored(list(open_rows(out).rows))
    code, _, err = run(capsys, "exact", "--dataset", saved, "--split", "train", "--summary-only")
    assert code == 2 and "no split 'train'; splits: test" in err


def test_missing_field_exits_2_listing_fields(tmp_path, capsys):
    src = write_input(tmp_path / "in.jsonl", ROWS)
    code, _, err = run(capsys, "exact", "--input", src, "--output", tmp_path / "o.jsonl", "--prediction-field", "answer")
    assert code == 2
    assert "no field 'answer'; available fields: id, completion, reference, lang" in err
    assert len(err.strip().splitlines()) == 1
    code, _, err = run(capsys, "exact", "--input", src, "--summary-only", "--reference-field", "gold")
    assert code == 2 and "'gold'" in err and "available fields" in err
    code, _, err = run(capsys, "exact", "--input", src, "--summary-only", "--extra-field", "tests")
    assert code == 2 and "no field 'tests'" in err
    assert not (tmp_path / "o.jsonl").exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["nope", "--input", "{src}", "--summary-only"], "unknown verifier 'nope'; known verifiers: "),
        (["exact", "--input", "{src}", "--summary-only", "--opt", "bogus=1"], "valid options: case_sensitive"),
        (["exact", "--input", "{src}", "--summary-only", "--opt", "case_sensitive=maybe"], "cannot read 'maybe' as bool"),
        (["exact", "--input", "{src}", "--summary-only", "--opt", "novalue"], "KEY=VALUE"),
        (["exact", "--input", "{tmp}/missing.jsonl", "--summary-only"], "missing.jsonl: no such file"),
        (["exact", "--input", "{tmp}/data.txt", "--summary-only"], "unsupported file type '.txt'"),
        (["exact", "--input", "{src}"], "give --output FILE, or --summary-only"),
        (["exact", "--input", "{src}", "--output", "{src}/out.jsonl"], "cannot create directory"),
        (["exact", "--input", "{src}", "--output", "{tmp}/out.xlsx"], "unsupported file type '.xlsx'"),
    ],
)
def test_usage_errors_exit_2_with_one_clear_line(tmp_path, capsys, argv, message):
    src = write_input(tmp_path / "in.jsonl", ROWS)
    code, out, err = run(capsys, *[a.format(src=src, tmp=tmp_path) for a in argv])
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert out == ""


def test_output_directory_is_created(tmp_path, capsys):
    src = write_input(tmp_path / "in.jsonl", ROWS)
    code, _, _ = run(capsys, "exact", "--input", src, "--output", tmp_path / "runs" / "new" / "out.jsonl")
    assert code == 0 and (tmp_path / "runs" / "new" / "out.jsonl").exists()


def test_unknown_verifier_lists_builtins(tmp_path, capsys):
    src = write_input(tmp_path / "in.jsonl", ROWS)
    _, _, err = run(capsys, "nope", "--input", src, "--summary-only")
    assert all(name in err for name in ("choice", "exact", "format"))


def test_bad_row_mid_file_leaves_no_output_and_keeps_old_file(tmp_path, capsys):
    src = write_input(tmp_path / "in.jsonl", ROWS)
    with open(src, "a") as handle:
        handle.write("{not json\n")
    out = tmp_path / "out.jsonl"
    out.write_text("previous complete result\n")
    code, _, err = run(capsys, "exact", "--input", src, "--output", out)
    assert code == 2 and "in.jsonl:6: not valid JSON" in err
    assert out.read_text() == "previous complete result\n"
    assert {p.name for p in tmp_path.iterdir()} == {"in.jsonl", "out.jsonl"}  # no .partial left behind


def test_write_rows_is_atomic_when_interrupted(tmp_path):
    out = tmp_path / "out.parquet"

    def rows():
        yield {"a": 1}
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_rows(out, rows())
    assert list(tmp_path.iterdir()) == []


def test_null_and_non_string_predictions_score_zero(tmp_path, capsys):
    rows = [{"completion": None, "reference": "a"}, {"completion": 7, "reference": "7"},
            {"reference": "x"}, {"completion": "a", "reference": "a"}]
    src = write_input(tmp_path / "in.jsonl", rows)
    code, stdout, _ = run(capsys, "exact", "--input", src, "--output", tmp_path / "out.jsonl")
    assert code == 0
    scored = list(open_rows(tmp_path / "out.jsonl").rows)
    assert [r["verdict"] for r in scored] == ["no_prediction", "bad_prediction", "no_prediction", "correct"]
    assert [r["reward"] for r in scored] == [0.0, 0.0, 0.0, 1.0]
    assert "no_prediction 2 (50.0%)" in stdout


def test_summary_limit_no_reference_and_progress(tmp_path, capsys, monkeypatch):
    rows = [{"completion": f"<think>t</think><answer>{i}</answer>" if i % 4 else "bare", "id": i} for i in range(40)]
    src = write_input(tmp_path / "in.jsonl", rows)
    monkeypatch.setattr(cli, "_PROGRESS_EVERY", 0.0)
    code, stdout, err = run(capsys, "format", "--input", src, "--summary-only", "--reference-field", "", "--limit", "20")
    assert code == 0
    for line in ("verifier     format (1 workers)", "rows         20 in", "rows/s", "mean reward  0.7500",
                 "verdicts     correct 15 (75.0%), bad_format 5 (25.0%)", "latency      p50 ", "p99 ",
                 "output       (not written: --summary-only)"):
        assert line in stdout
    assert "rlvr-verify: 20 rows" in err  # progress lines go to stderr
    _, _, quiet_err = run(capsys, "format", "--input", src, "--summary-only", "--reference-field", "", "--quiet")
    assert quiet_err == ""


def test_verifier_options_reach_the_workers(tmp_path, capsys):
    rows = [{"completion": "steps\n#### 72", "reference": "72"}, {"completion": "#### 9", "reference": "72"}]
    src = write_input(tmp_path / "in.jsonl", rows)
    code, stdout, _ = run(capsys, "exact", "--input", src, "--summary-only", "--opt", r"pattern=####\s*(\S+)")
    assert code == 0 and "correct 1 (50.0%), wrong_answer 1 (50.0%)" in stdout


def test_empty_input_is_fine(tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_text("")
    code, stdout, _ = run(capsys, "exact", "--input", src, "--output", tmp_path / "out.jsonl")
    assert code == 0 and "rows         0" in stdout
    assert (tmp_path / "out.jsonl").read_text() == ""


def test_rows_stream_through_in_bounded_chunks():
    """score_rows pulls at most one chunk of input ahead of what it has produced."""
    from verifiers.runtime import VerifierPool

    pulled = itertools.count()

    def endless():
        for i in itertools.count():
            next(pulled)
            yield {"completion": str(i), "reference": "0"}

    job = cli.Job("exact", {}, "completion", "reference", [], cli.Summary())
    with VerifierPool(workers=1, timeout=10, preload=("verifiers.simple",)) as pool:
        first = list(itertools.islice(cli.score_rows(endless(), job, pool), 3))
    assert [r["verdict"] for r in first] == ["correct", "wrong_answer", "wrong_answer"]
    assert next(pulled) <= cli._CHUNK + 1


def test_datafile_errors_are_clear(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    with pytest.raises(DataFileError, match="item 0 of the array is int"):
        open_rows(bad)
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"a": 1}\n[1]\n')
    with pytest.raises(DataFileError, match="rows.jsonl:2: expected a JSON object"):
        list(open_rows(rows).rows)


def test_byte_order_marks_are_ignored(tmp_path):
    (tmp_path / "bom.csv").write_bytes("\ufeffid,completion\n1,x\n".encode("utf-8"))
    (tmp_path / "bom.jsonl").write_bytes('\ufeff{"id": 1}\n'.encode("utf-8"))
    assert open_rows(tmp_path / "bom.csv").fields == ["id", "completion"]
    assert list(open_rows(tmp_path / "bom.jsonl").rows) == [{"id": 1}]
