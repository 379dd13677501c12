"""Postrun JSONs shaped like upstream's cost fixtures, and upstream's five golden values."""
from __future__ import annotations

import datetime as dt

START, END = "20210301-16:58:05-UTC", "20210301-17:03:58-UTC"  # 353 s, as upstream's fixtures
SOON = dt.datetime(2021, 3, 2, tzinfo=dt.timezone.utc)


def postrun(*, instance_type: str = "t3.small", spot: bool = True, start: str = START, end: str = END,
            az: str = "us-east-1b", **config) -> dict:
    """A postrun JSON shaped like upstream's test fixtures (instance type in the config only)."""
    cfg = {"awsf_image": "aveit/tibanna-awsf:1.0.3.dev4", "ebs_size": 20, "ebs_type": "gp3", "ebs_iops": "",
           "root_ebs_size": 8, "spot_instance": spot, "spot_duration": "", "instance_type": instance_type,
           "cpu": "", "mem": 0, "log_bucket": "lb"}
    cfg.update(config)
    return {"Job": {"JOBID": "NgN7IOBXjgRH", "start_time": start, "end_time": end,
                    "instance_availablity_zone": az}, "config": cfg}


# Upstream's five golden values. Upstream priced a gp3 data volume at the root volume's price; here
# both are gp3 at 0.08, so the fixed formula and upstream's agree.
GP3 = {"ebs_storage": {"gp3": 0.08}}
GOLDEN = {
    "medium_nonspot": (postrun(instance_type="t3.medium", spot=False),
                       {"instance_types": {"t3.medium": {"on_demand": 0.0416}}, **GP3}, 0.004384172839506173),
    "small_spot": (postrun(), {"instance_types": {"t3.small": {"spot": 0.0064}}, **GP3}, 0.0009326172839506175),
    "small_spot_gp3_iops": (postrun(ebs_iops=3500),
                            {"instance_types": {"t3.small": {"spot": 0.0064}}, "ebs_iops": {"gp3": [0.005]}, **GP3},
                            0.0012730879629629633),
    "small_spot_gp3_iops_throughput": (
        postrun(ebs_iops=3500, ebs_throughput=200),
        {"instance_types": {"t3.small": {"spot": 0.0064}}, "ebs_iops": {"gp3": [0.005]}, "ebs_throughput": 0.04, **GP3},
        0.001681652777777778),
    "small_spot_io2_iops": (
        postrun(start="20210301-21:56:27-UTC", end="20210301-22:01:49-UTC", az="us-east-1f", ebs_type="io2",
                ebs_iops=3500),
        {"instance_types": {"t3.small": {"spot": 0.0064}}, "ebs_storage": {"gp3": 0.08, "io2": 0.125},
         "ebs_iops": {"io2": [0.065, 0.0455, 0.03185]}},
        0.029224481481481476),
}
