"""metrics_report.tsv's cost edits: an estimate never downgrades a better figure; Cost is one row."""
from __future__ import annotations

from tibanna.cost import ACTUAL, IMMEDIATE, NA, RETROSPECTIVE
from tibanna.metrics.report_tsv import update_cost_estimate_tsv, update_cost_tsv, with_cost, with_cost_estimate
from tibanna.storage import LocalStore

REPORT = ("Metric\tValue\nMaximum_Memory_Used_Mb\t713.4\nInstance_Type\tt3.small\n"
          "Estimated_Cost\t0.004\nEstimated_Cost_Type\timmediate estimate\n")


def test_estimates_never_downgrade():
    assert with_cost_estimate(REPORT, 0.005, RETROSPECTIVE) is None
    assert with_cost_estimate(REPORT, 0.0, NA) is None
    updated = with_cost_estimate(REPORT, 0.0045, IMMEDIATE)
    assert updated.endswith("Estimated_Cost\t0.0045\nEstimated_Cost_Type\timmediate estimate\n")
    actual = with_cost_estimate(updated, 0.0051, ACTUAL)
    assert actual == ("Metric\tValue\nMaximum_Memory_Used_Mb\t713.4\nInstance_Type\tt3.small\n"
                      "Cost\t0.0051\nEstimated_Cost\t0.0051\nEstimated_Cost_Type\tactual cost\n")
    assert with_cost_estimate(actual, 0.004, IMMEDIATE) is None
    assert with_cost_estimate(actual, 0.0052, ACTUAL).count("Cost\t0.0052\n") == 2


def test_cost_row_is_replaced():
    assert with_cost(REPORT, 0.01).endswith("Estimated_Cost_Type\timmediate estimate\nCost\t0.01\n")
    twice = with_cost(with_cost(REPORT, 0.01), 0.02)
    assert [line for line in twice.splitlines() if line.startswith("Cost\t")] == ["Cost\t0.02"]


def test_tsv_updates_in_a_store(tmp_path):
    store = LocalStore(tmp_path)
    key = "job1.metrics/metrics_report.tsv"
    assert update_cost_tsv(store, "lb", "job1", 0.1) is False
    assert update_cost_estimate_tsv(store, "lb", "job1", 0.1, IMMEDIATE) is False
    store.put_text("lb", key, REPORT)
    assert update_cost_estimate_tsv(store, "lb", "job1", 0.2, RETROSPECTIVE) is False
    assert store.get_text("lb", key) == REPORT
    assert update_cost_estimate_tsv(store, "lb", "job1", 0.3, ACTUAL) is True
    assert update_cost_tsv(store, "lb", "job1", 0.31) is True
    text = store.get_text("lb", key)
    assert "Cost\t0.31\n" in text and "Estimated_Cost_Type\tactual cost\n" in text
