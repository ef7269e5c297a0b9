"""Run folders never leave the results root; the log survives a torn last line."""

import datetime as dt
import json

import pytest

from shadowhound_llm_bench.reports.jsonl_log import JsonlLog, read_records
from shadowhound_llm_bench.reports.run_dir import (
    RunDirError, create_run_dir, make_run_id, run_dir_for,
)


def test_run_id_is_utc_stamp_plus_name():
    now = dt.datetime(2026, 11, 29, 10, 15, 30, tzinfo=dt.timezone.utc)
    assert make_run_id(None, now=now) == "20261129T101530Z"
    assert make_run_id("thor_night-1", now=now) == "20261129T101530Z_thor_night-1"


@pytest.mark.parametrize("name", ["../x", "a/b", "..", " x", "a b", "x" * 65, "/etc",
                                  "名前"])
def test_names_that_could_escape_are_rejected(name):
    with pytest.raises(RunDirError):
        make_run_id(name)


@pytest.mark.parametrize("run_id", ["../20261129T101530Z", "20261129T101530Z/../../x", "x", ""])
def test_run_ids_that_could_escape_are_rejected(tmp_path, run_id):
    with pytest.raises(RunDirError):
        run_dir_for(tmp_path, run_id)


def test_same_second_runs_get_distinct_folders(tmp_path):
    a = create_run_dir(tmp_path, "20261129T101530Z_x")
    b = create_run_dir(tmp_path, "20261129T101530Z_x")
    assert a.name == "20261129T101530Z_x" and b.name == "20261129T101530Z-2_x"
    assert a.parent == b.parent == tmp_path.resolve()


def test_log_appends_and_reader_skips_a_torn_last_line(tmp_path):
    path = tmp_path / "tests.jsonl"
    with JsonlLog(path=path) as log:
        log.append({"type": "a", "n": 1})
    with open(path, "a") as f:
        f.write('{"type": "b", "n"')  # a kill in the middle of a write
    records, bad = read_records(path)
    assert [r["n"] for r in records] == [1] and bad == 1
    with JsonlLog(path=path) as log:  # reopening starts a fresh line
        log.append({"type": "c", "n": 3})
    records, bad = read_records(path)
    assert [r["n"] for r in records] == [1, 3] and bad == 1


def test_log_makes_nan_json_safe(tmp_path):
    with JsonlLog(path=tmp_path / "t.jsonl") as log:
        log.append({"type": "x", "v": float("nan")})  # made JSON-safe, not rejected
    line = (tmp_path / "t.jsonl").read_text().strip()
    assert json.loads(line)["v"] is None
