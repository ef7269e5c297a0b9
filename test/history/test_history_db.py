"""The history database: dedupe on run id + machine id, fleet merges, refusals, transactions."""

import json
import shutil
import sqlite3

import pytest
from history_helpers import write_run

from shadowhound_llm_bench.core.runs.run_regressions import find_regressions
from shadowhound_llm_bench.reports.history_db import SCHEMA_VERSION, HistoryDb, HistoryError
from shadowhound_llm_bench.reports.history_recording import record_finished_run
from shadowhound_llm_bench.reports.render import render_reports
from shadowhound_llm_bench.reports.run_snapshot_reader import RunLoadError, read_run, read_runs

ROBOT_A = {"machine_id": "robot-a", "hostname": "thor-a"}
ROBOT_B = {"machine_id": "robot-b", "hostname": "thor-b"}


def _count(path, table):
    with sqlite3.connect(path) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_a_new_database_is_created_at_the_current_schema(tmp_path):
    with HistoryDb(tmp_path / "deep" / "h.sqlite3") as db:
        assert db.schema_version == SCHEMA_VERSION
        assert db.run_count() == 0


def test_a_run_recorded_twice_is_kept_once(tmp_path):
    run = read_run(write_run(tmp_path, "20261101T100000Z", decode_tps={"phi4:14b": 37.0},
                             machine=ROBOT_A))
    with HistoryDb(tmp_path / "h.sqlite3") as db:
        first = db.record_runs([run])
        again = db.record_runs([run])
        assert (first.added, first.already_present) == (1, 0)
        assert (again.added, again.already_present) == (0, 1)
        assert db.run_count() == 1


def test_the_same_run_id_on_two_robots_is_two_runs(tmp_path):
    a = read_run(write_run(tmp_path / "a", "20261101T100000Z", decode_tps={"m": 37.0},
                           machine=ROBOT_A))
    b = read_run(write_run(tmp_path / "b", "20261101T100000Z", decode_tps={"m": 30.0},
                           machine=ROBOT_B))
    with HistoryDb(tmp_path / "h.sqlite3") as db:
        assert db.record_runs([a, b]).added == 2
        trend = db.trend("m", "decode_tps")
        assert {p.machine_id for p in trend} == {"robot-a", "robot-b"}


def test_merging_databases_adds_only_missing_runs(tmp_path):
    runs_a = [read_run(write_run(tmp_path / "a", f"202611{day:02d}T100000Z",
                                 decode_tps={"m": 37.0}, machine=ROBOT_A, seed=day))
              for day in (1, 2, 3)]
    run_b = read_run(write_run(tmp_path / "b", "20261102T100000Z", decode_tps={"m": 30.0},
                               machine=ROBOT_B))
    with HistoryDb(tmp_path / "robot_a.sqlite3") as db:
        db.record_runs(runs_a)
    with HistoryDb(tmp_path / "laptop.sqlite3") as db:
        db.record_runs([runs_a[0], run_b])
        count = db.import_database(tmp_path / "robot_a.sqlite3")
        assert (count.added, count.already_present) == (2, 1)
        again = db.import_database(tmp_path / "robot_a.sqlite3")
        assert (again.added, again.already_present) == (0, 3)
        assert db.run_count() == 4
        merged = [p for p in db.trend("m", "decode_tps") if p.machine_id == "robot-a"]
        assert [p.run_id for p in merged] == [r.run_id for r in runs_a]
        assert all(p.task_cells and p.model_cell.n == 15 for p in merged)
    assert _count(tmp_path / "laptop.sqlite3", "cells") == 4 * _count(
        tmp_path / "robot_a.sqlite3", "cells") // 3


def test_a_database_of_a_newer_schema_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "future.sqlite3"
    with HistoryDb(path):
        pass
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    before = path.read_bytes()
    with pytest.raises(HistoryError, match="newer than this version") as raised:
        HistoryDb(path)
    assert "\n" not in str(raised.value)
    with HistoryDb(tmp_path / "h.sqlite3") as db, pytest.raises(HistoryError, match="newer"):
        db.import_database(path)
    assert path.read_bytes() == before


def test_files_that_are_not_history_databases_are_refused(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not a database\n" * 100)
    with pytest.raises(HistoryError, match="not a history database"):
        HistoryDb(text)
    other = tmp_path / "other.sqlite3"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE t (x)")
    with pytest.raises(HistoryError, match="not a history database"):
        HistoryDb(other)


def test_a_failed_write_leaves_no_run_behind(tmp_path):
    good = read_run(write_run(tmp_path, "20261101T100000Z", decode_tps={"m": 37.0},
                              machine=ROBOT_A))
    broken = read_run(write_run(tmp_path, "20261102T100000Z", decode_tps={"m": 37.0},
                                machine=ROBOT_A))
    broken.machine_id = ""
    with HistoryDb(tmp_path / "h.sqlite3") as db:
        with pytest.raises(HistoryError, match="no machine id"):
            db.record_runs([good, broken])
        assert db.run_count() == 0
    assert _count(tmp_path / "h.sqlite3", "cells") == 0


def test_bad_folders_are_refused_with_one_line(tmp_path):
    good = write_run(tmp_path, "20261101T100000Z", decode_tps={"m": 37.0}, machine=ROBOT_A)
    (tmp_path / "empty").mkdir()
    torn = write_run(tmp_path, "20261102T100000Z", decode_tps={"m": 37.0}, machine=ROBOT_A)
    text = (torn / "tests.jsonl").read_text()
    (torn / "tests.jsonl").write_text(text[:-40])
    unfinished = write_run(tmp_path, "20261103T100000Z", decode_tps={"m": 37.0},
                           finished=False)
    for folder, message in ((tmp_path / "empty", "is not a run folder"),
                            (tmp_path / "missing", "no such folder"),
                            (torn, "truncated or damaged: 1 unreadable line")):
        with pytest.raises(RunLoadError, match=message) as raised:
            read_runs([good, folder])
        assert "\n" not in str(raised.value)
    with pytest.raises(RunLoadError, match="has not finished"):
        read_run(unfinished, require_finished=True)


def test_a_run_without_a_machine_record_belongs_to_the_machine_named_or_this_one(tmp_path):
    folder = write_run(tmp_path, "20261101T100000Z", decode_tps={"m": 37.0})
    assert read_run(folder, machine_id="robot-c").machine_id == "robot-c"
    local = read_run(folder)
    assert local.machine_id and local.machine_id == read_run(folder).machine_id
    assert read_run(write_run(tmp_path / "x", "20261101T100000Z", decode_tps={"m": 1.0},
                              machine=ROBOT_B)).machine_id == "robot-b"


def test_recording_flags_a_regression_in_the_runs_own_reports(tmp_path):
    db = tmp_path / "h.sqlite3"
    first = write_run(tmp_path, "20261101T100000Z", decode_tps={"m": 37.0}, machine=ROBOT_A)
    other_robot = write_run(tmp_path, "20261101T110000Z", decode_tps={"m": 10.0},
                            machine=ROBOT_B)
    same = write_run(tmp_path, "20261102T100000Z", decode_tps={"m": 37.1}, machine=ROBOT_A,
                     seed=2)
    slow = write_run(tmp_path, "20261103T100000Z", decode_tps={"m": 28.5}, machine=ROBOT_A,
                     seed=3)
    assert "no earlier comparable run" in record_finished_run(first, db_path=db).summary
    assert "no earlier comparable run" in record_finished_run(other_robot, db_path=db).summary
    check = record_finished_run(same, db_path=db)
    assert check.regressions == [] and check.compared_with == {"m": "20261101T100000Z"}
    check = record_finished_run(slow, db_path=db)
    assert len(check.regressions) == 1
    assert "slower than run 20261102T100000Z by 23 %" in check.summary
    data = json.loads((slow / "results.json").read_text())
    assert data["history"]["regressions"][0]["baseline_run_id"] == "20261102T100000Z"
    assert "beyond noise" in (slow / "summary.md").read_text()
    render_reports(slow)  # `report` rebuilds from tests.jsonl: the flag is in the log
    assert "slower than run 20261102T100000Z by 23 %" in (slow / "summary.md").read_text()


def test_a_resumed_run_recorded_again_replaces_its_earlier_record(tmp_path):
    db = tmp_path / "h.sqlite3"
    folder = write_run(tmp_path, "20261101T100000Z", decode_tps={"m": 37.0}, machine=ROBOT_A)
    assert record_finished_run(folder, db_path=db).newly_recorded
    shutil.rmtree(folder)
    write_run(tmp_path, "20261101T100000Z", decode_tps={"m": 37.0, "n": 20.0},
              machine=ROBOT_A)
    assert not record_finished_run(folder, db_path=db).newly_recorded
    with HistoryDb(db) as history:
        assert history.run_count() == 1
        assert [p.run_id for p in history.trend("n", "decode_tps")] == ["20261101T100000Z"]
    assert _count(db, "run_models") == 2


def test_energy_per_token_and_the_machine_record_are_kept_when_a_run_has_them(tmp_path):
    machine = {"machine_id": "thor-7", "hostname": "thor-7", "module": "Jetson AGX Thor",
               "l4t": "38.2", "power_mode": "MAXN"}
    runs = [read_run(write_run(tmp_path, f"202611{day:02d}T100000Z", decode_tps={"m": 37.0},
                               machine=machine, j_per_token={"m": joules}, seed=day))
            for day, joules in ((1, 1.5), (2, 2.0))]
    assert ("status_report", "j_per_token") in runs[0].models["m"].cells
    with HistoryDb(tmp_path / "h.sqlite3") as db:
        db.record_runs(runs)
        points = db.trend("m", "j_per_token")
        assert [round(p.model_cell.mean, 1) for p in points] == [1.5, 2.0]
        assert db.machines() == [("thor-7", "thor-7")]
        found = find_regressions(runs[1], db.previous_comparable(runs[1]))
    assert [r.metric for r in found] == ["j_per_token"]
    assert found[0].change_percent == pytest.approx(33, abs=3)
    assert "energy per token worse than run 20261101T100000Z by 3" in found[0].sentence()
    with sqlite3.connect(tmp_path / "h.sqlite3") as conn:
        record = json.loads(conn.execute("SELECT record_json FROM machines").fetchone()[0])
    assert record["power_mode"] == "MAXN"
