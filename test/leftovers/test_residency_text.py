"""The still-loaded list and the cleanup verdict, as every report renders them."""

from shadowhound_llm_bench.core.decider.residency import (
    cleanup_verdict, followed_lines, left_loaded, left_loaded_lines, left_loaded_text)


def test_the_verdict_needs_an_answer_and_nothing_of_the_run_left():
    assert cleanup_verdict(verified=True, own_left=[], followed=[]) == "verified"
    assert cleanup_verdict(verified=True, own_left=[], followed=["m"]) == "followed"
    assert cleanup_verdict(verified=True, own_left=["m"], followed=[]) == "unverified"
    assert cleanup_verdict(verified=False, own_left=[], followed=[]) == "unverified"


def test_an_unanswered_ps_is_an_unknown_list_not_an_empty_one():
    end = {"verified": False, "still_loaded": [], "reason": "Ollama did not answer"}
    assert left_loaded(end) == [("?", "Ollama did not answer")]
    assert left_loaded({"verified": True, "still_loaded": []}) == []
    assert left_loaded({}) == []


def test_the_console_line_names_each_model_with_its_reason_and_the_verdict():
    end = {"verified": True, "cleanup": "followed", "still_loaded": [
        {"model": "llama3.3:70b", "reason": "loading when the run ended"}]}
    assert left_loaded_text(end) == ("still loaded: llama3.3:70b (loading when the run "
                                     "ended); cleanup followed")
    assert left_loaded_text({"verified": True, "cleanup": "verified", "still_loaded": []}) == \
        "still loaded: none (checked in /api/ps); cleanup verified"


def test_followed_models_say_how_and_when_they_went():
    lines = followed_lines({"models": [{"model": "m", "outcome": "unloaded",
                                        "gone_after_s": 2.5, "reason": "after its load"}]})
    assert lines == ["m: unloaded 2.50 s after the run ended — after its load"]


def test_the_console_lines_list_each_model_then_the_verdict():
    end = {"verified": True, "cleanup": "followed", "still_loaded": [
        {"model": "llama3.3:70b", "reason": "loading when the run ended"}]}
    assert left_loaded_lines(end) == ["still loaded: llama3.3:70b — loading when the run ended",
                                      "cleanup: followed"]
    assert left_loaded_lines({"verified": True, "cleanup": "verified", "still_loaded": []}) == \
        ["cleanup: verified (nothing left loaded, checked in /api/ps)"]
