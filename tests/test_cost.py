"""Cost and cost estimate: upstream's golden values, the fixed bugs, the local price table."""
from __future__ import annotations

import datetime as dt
import json
import logging

import pytest
from cost_builders import GOLDEN, SOON, postrun

from tibanna.backends.local.prices import LocalPriceSource
from tibanna.cost import IMMEDIATE, NA, RETROSPECTIVE, cost_estimate_for_description, estimate_job_cost
from tibanna.exceptions import PricingRetrievalException


@pytest.mark.parametrize("name", GOLDEN)
def test_golden_values(name):
    job, table, expected = GOLDEN[name]
    assert estimate_job_cost(job, LocalPriceSource(table), now=SOON) == (expected, IMMEDIATE)


def test_runs_longer_than_a_day_are_not_wrapped():
    job = postrun(instance_type="t3.medium", spot=False, end="20210302-17:58:05-UTC")  # 25 hours
    estimate, _ = estimate_job_cost(job, LocalPriceSource({"instance_types": {"t3.medium": 0.0416}}), now=SOON)
    assert estimate == pytest.approx(0.0416 * 25)  # upstream: 0.0416 * 1


def test_gp3_data_volume_is_priced_as_gp3_not_at_the_root_price():
    job = postrun(instance_type="t3.medium", spot=False, awsf_image="")  # before awsf 1.0: gp2 root
    prices = LocalPriceSource({"instance_types": {"t3.medium": 0.0416}, "ebs_storage": {"gp2": 0.10, "gp3": 0.08}})
    hours = 353 / 3600
    expected = 0.0416 * hours + 0.10 * 8 * hours / 720 + 0.08 * 20 * hours / 720
    upstream = 0.0416 * hours + 0.10 * 8 * hours / 720 + 0.10 * 20 * hours / 720
    estimate, _ = estimate_job_cost(job, prices, now=SOON)
    assert estimate == pytest.approx(expected)
    assert estimate != pytest.approx(upstream)


def test_io2_tiers_above_32000_and_64000_iops():
    job = postrun(ebs_type="io2", ebs_iops=70000, ebs_size=10, root_ebs_size=10)
    prices = LocalPriceSource({"instance_types": {"t3.small": 0.0}, "ebs_iops": {"io2": [0.065, 0.0455, 0.03185]}})
    hours = 353 / 3600
    expected = (0.065 * 32000 + 0.0455 * 32000 + 0.03185 * 6000) * hours / 720
    assert estimate_job_cost(job, prices, now=SOON)[0] == pytest.approx(expected)


def test_estimate_type_turns_retrospective_after_ten_days():
    job, table, _ = GOLDEN["small_spot"]
    end = dt.datetime(2021, 3, 1, 17, 3, 58, tzinfo=dt.timezone.utc)
    assert estimate_job_cost(job, LocalPriceSource(table), now=end + dt.timedelta(days=10))[1] == IMMEDIATE
    assert estimate_job_cost(job, LocalPriceSource(table), now=end + dt.timedelta(days=11))[1] == RETROSPECTIVE


@pytest.mark.parametrize("job", [
    postrun(end=""),                                             # still running
    postrun(spot_duration=60),                                   # retired spot blocks
    postrun(instance_type=""),                                   # neither a type nor cpu and mem
    postrun(instance_type="x9.huge"),                            # not in the table
    postrun(ebs_size="3x"),                                      # not filled in
])
def test_no_estimate_is_zero_na(job):
    table = {"instance_types": {"t3.small": 0.02}}
    assert estimate_job_cost(job, LocalPriceSource(table), now=SOON) == (0.0, NA)


# Local prices -----------------------------------------------------------------------------------
def test_local_estimate_is_price_times_hours():
    prices = LocalPriceSource({"instance_types": {"c5.xlarge": 0.17}})
    assert cost_estimate_for_description({"config": {"instance_type": "c5.xlarge"}}, 3, prices) == (
        pytest.approx(0.17 * 3), IMMEDIATE)
    listed = {"config": {"instance_type": ["c5.xlarge", "m5.xlarge"]}}
    assert cost_estimate_for_description(listed, 2, prices)[0] == pytest.approx(0.34)


def test_local_estimate_by_cpu_and_memory():
    prices = LocalPriceSource({"vcpu_hour": 0.02, "gib_hour": 0.003})
    description = {"args": {}, "config": {"cpu": 4, "mem": 16, "log_bucket": "lb"}}
    assert cost_estimate_for_description(description, 2, prices)[0] == pytest.approx((4 * 0.02 + 16 * 0.003) * 2)
    local_run = postrun(instance_type="", cpu=4, mem=16, spot=False, end="20210301-18:58:05-UTC")
    assert estimate_job_cost(local_run, prices, now=SOON)[0] == pytest.approx((4 * 0.02 + 16 * 0.003) * 2)
    assert cost_estimate_for_description(description, 2, LocalPriceSource({"instance_types": {}, "x": 1})) == (0.0, NA)


def test_before_a_run_volumes_count_too():
    prices = LocalPriceSource({"instance_types": {"t3.small": 0.02}, "ebs_storage": {"gp3": 0.08}})
    description = {"config": {"instance_type": "t3.small", "ebs_size": 50, "root_ebs_size": 10}}
    assert cost_estimate_for_description(description, 720, prices)[0] == pytest.approx(0.02 * 720 + 0.08 * 60)


def test_without_a_table_prices_are_zero_and_it_says_so_once(caplog, tmp_path):
    with caplog.at_level(logging.INFO, logger="tibanna.backends.local.prices"):
        prices = LocalPriceSource.from_home(tmp_path)
        LocalPriceSource.from_home(tmp_path)  # every plot_metrics and cost asks again
    assert prices.is_empty
    said = [r for r in caplog.records if "local costs are 0" in r.getMessage()]
    assert len(said) == 1 and said[0].levelno == logging.INFO and str(tmp_path / "prices.json") in caplog.text
    assert cost_estimate_for_description({"config": {"instance_type": "t3.small"}}, 5, prices) == (0.0, IMMEDIATE)
    assert cost_estimate_for_description({"config": {"cpu": 2, "mem": 4}}, 5, prices) == (0.0, IMMEDIATE)


def test_price_table_from_tibanna_home(tmp_path):
    table = {"instance_types": {"t3.small": {"on_demand": 0.02, "spot": 0.006}}}
    (tmp_path / "prices.json").write_text(json.dumps(table))
    prices = LocalPriceSource.from_home(tmp_path)
    assert (prices.on_demand("t3.small", ""), prices.spot("t3.small", "")) == (0.02, 0.006)
    assert prices.ebs_storage("gp3") == 0.0 and prices.ebs_iops("io2") == (0.0, 0.0, 0.0)
    (tmp_path / "prices.json").write_text("{not json")
    with pytest.raises(PricingRetrievalException, match="prices.json"):
        LocalPriceSource.from_home(tmp_path)
