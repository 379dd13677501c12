"""Admin verbs on AWS (deploy, users, cleanup), IAM scoping, the builds and the launch details."""
from __future__ import annotations

import base64
import datetime as dt
import importlib.metadata
import io
import json
import platform
import subprocess
import sys
import zipfile

import boto3
import pytest

from tibanna import jobspec
from tibanna.backends.aws import build, launch, names
from tibanna.backends.aws.catalogue import Catalogue
from tibanna.exceptions import EC2LaunchException, UserInputError

GIB = 1024 ** 3


def _policy_documents(iam, usergroup: str) -> dict[str, dict]:
    found = {}
    for page in iam.get_paginator("list_policies").paginate(Scope="Local"):
        for policy in page["Policies"]:
            if policy["PolicyName"].startswith(f"tibanna_{usergroup}_"):
                version = iam.get_policy_version(PolicyArn=policy["Arn"], VersionId=policy["DefaultVersionId"])
                document = version["PolicyVersion"]["Document"]
                found[policy["PolicyName"]] = json.loads(document) if isinstance(document, str) else document
    return found


def _s3_resources(documents: dict[str, dict]) -> set[str]:
    resources = set()
    for document in documents.values():
        for statement in document["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if any(a.startswith("s3:") or a == "*" for a in actions):
                listed = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
                resources.update(listed)
    return resources


def test_policies_grant_only_the_named_buckets(deployed):
    documents = _policy_documents(boto3.client("iam"), deployed["usergroup"])
    assert set(documents) == {f"tibanna_{deployed['usergroup']}_{kind}" for kind in names.POLICIES}
    assert _s3_resources(documents) == {f"arn:aws:s3:::{b}{suffix}" for b in ("log-bucket", "out-bucket", "in-bucket")
                                        for suffix in ("", "/*")}


def test_roles_profile_group_and_state_machine(deployed):
    iam, group = boto3.client("iam"), deployed["usergroup"]
    for kind, policies in names.ROLE_POLICIES.items():
        attached = iam.list_attached_role_policies(RoleName=f"tibanna_{group}_{kind}")["AttachedPolicies"]
        assert {p["PolicyName"] for p in attached} == {f"tibanna_{group}_{p}" for p in policies}
    profile = iam.get_instance_profile(InstanceProfileName=f"tibanna_{group}_for_ec2")["InstanceProfile"]
    assert [r["RoleName"] for r in profile["Roles"]] == [f"tibanna_{group}_for_ec2"]
    sfn = boto3.client("stepfunctions")
    machine = sfn.describe_state_machine(stateMachineArn=deployed["api"].backend.sfn_arn(deployed["sfn"]))
    states = json.loads(machine["definition"])["States"]
    assert states["RunTaskAwsem"]["Resource"].endswith(f":function:run_task_awsem_{group}")
    assert [r["ErrorEquals"][0] for r in states["CheckTaskAwsem"]["Retry"]] == [
        "EC2StartingException", "StillRunningException", "Lambda.ServiceException"]
    functions = boto3.client("lambda").get_function_configuration(FunctionName=f"check_task_awsem_{group}")
    assert functions["Runtime"] == build.LAMBDA_RUNTIME and functions["Architectures"] == ["x86_64"]
    assert functions["Handler"] == "tibanna.backends.aws.lambdas.check_task_awsem.handler"


def test_redeploy_updates_in_place_and_suffix_naming(api, deployed):
    again = api.deploy_unicorn(buckets="log-bucket,out-bucket,in-bucket", usergroup=deployed["usergroup"],
                               no_setenv=True)
    assert again == deployed["sfn"]
    assert api.deploy_unicorn(usergroup=deployed["usergroup"], suffix="dev", no_setup=True,
                              no_setenv=True) == f"tibanna_unicorn_{deployed['usergroup']}_dev"
    assert api.deploy_core("run_task_awsem", suffix="dev", usergroup=deployed["usergroup"]) == [
        f"run_task_awsem_{deployed['usergroup']}_dev"]
    with pytest.raises(UserInputError):
        api.deploy_core("nonsense", usergroup=deployed["usergroup"])
    names_now = [s["name"] for s in api.list_sfns()]
    assert {deployed["sfn"], f"tibanna_unicorn_{deployed['usergroup']}_dev"} <= set(names_now)


def test_setenv_and_users_and_cleanup_with_history(api, deployed, player, shell_job, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("TIBANNA_DEFAULT_STEP_FUNCTION_NAME", "")  # unset, and deploy's export undone after
    sfn = api.deploy_unicorn(buckets="log-bucket,out-bucket", usergroup="doomed")
    assert api.backend.default_sfn() == sfn == "tibanna_unicorn_doomed"
    assert "export TIBANNA_DEFAULT_STEP_FUNCTION_NAME=tibanna_unicorn_doomed" in (tmp_path / ".bashrc").read_text()
    boto3.client("iam").create_user(UserName="alice")
    api.add_user("alice", "doomed")
    assert {"user": "alice", "usergroup": "doomed"} in api.users()
    job = api.run_workflow(shell_job("echo bye"), sfn=sfn)
    player.play(job["_tibanna"]["exec_arn"], on_retry=player.agent_on_boot)
    removed = api.cleanup("doomed", purge_history=True)
    assert f"job {job['jobid']}" in removed and "state machine tibanna_unicorn_doomed" in removed
    assert "group tibanna_doomed" in removed
    assert api.backend.index.get(job["jobid"]) is None
    assert not boto3.client("s3").list_objects_v2(Bucket="log-bucket", Prefix=job["jobid"] + ".").get("Contents")
    assert _policy_documents(boto3.client("iam"), "doomed") == {}
    assert sfn not in [s["name"] for s in api.list_sfns()]
    with pytest.raises(UserInputError):
        api.cleanup("tibanna_doomed")


def test_builds_are_reproducible():
    first, second = build.build_agent_bundle(), build.build_agent_bundle()
    assert first.data == second.data and first.sha256 == second.sha256
    assert build.build_lambda_zip(first) == build.build_lambda_zip(second)
    names_in_zip = zipfile.ZipFile(io.BytesIO(build.build_lambda_zip(first))).namelist()
    assert "tibanna/backends/aws/lambdas/run_task_awsem.py" in names_in_zip
    assert f"tibanna_agent/{first.name}" in names_in_zip


def test_the_lambdas_zip_holds_pydantic_for_their_architecture_or_deploy_refuses(monkeypatch):
    code = build.build_lambda_zip(build.agent_bundle())
    assert len(code) < build.LAMBDA_ZIP_LIMIT
    names_in_zip = zipfile.ZipFile(io.BytesIO(code)).namelist()
    assert "pydantic/main.py" in names_in_zip and [n for n in names_in_zip if n.startswith("pydantic_core/_pydantic_core")]
    monkeypatch.setattr(build, "LAMBDA_ARCH", "aarch64")  # not this machine's, and pip cannot fetch it
    with pytest.raises(RuntimeError, match="compiled files of pydantic for Linux aarch64"):
        build.build_lambda_zip(build.agent_bundle(), download=lambda *args: None)


def test_the_agent_bundle_holds_the_installed_closure_per_architecture(tmp_path):
    """Pure files once, compiled ones per architecture; a wheel fetched for another architecture
    lands in its tree; an architecture that cannot be had is left out."""
    psutil, pydantic_core = importlib.metadata.version("psutil"), importlib.metadata.version("pydantic_core")
    fetched = []

    def download(name, version, arch, folder):
        fetched.append((name, version, arch))
        if arch != "aarch64":
            return None
        wheel = folder / f"{name}-{version}-cp36-abi3-manylinux2014_aarch64.whl"
        with zipfile.ZipFile(wheel, "w") as archive:
            archive.writestr(f"{name}/__init__.py", "ARCH = 'aarch64'\n")
            archive.writestr(f"{name}-{version}.data/scripts/x", "")  # not importable: left out
        return wheel

    bundle = build.build_agent_bundle(download)
    archive = zipfile.ZipFile(io.BytesIO(bundle.data))
    manifest = json.loads(archive.read(build.MANIFEST))
    assert bundle.arches == ("x86_64", "aarch64") == tuple(manifest["arches"])
    assert manifest["distributions"]["psutil"] == psutil and "botocore" in manifest["distributions"]
    # x86_64 is this machine's: taken as installed
    assert fetched == [("psutil", psutil, "aarch64"), ("pydantic_core", pydantic_core, "aarch64")]
    names = archive.namelist()
    assert "any/boto3/__init__.py" in names and "any/tibanna/agent/__main__.py" in names
    assert "x86_64/psutil/__init__.py" in names and "any/psutil/__init__.py" not in names
    assert archive.read("aarch64/psutil/__init__.py") == b"ARCH = 'aarch64'\n"
    assert "x86_64/pydantic_core/__init__.py" in names and "any/pydantic/main.py" in names
    assert not [n for n in names if ".data/" in n or n.endswith(".pyc")]
    offline = build.build_agent_bundle(lambda *args: None)
    assert offline.arches == ("x86_64",)
    assert manifest["python"] == offline.python == "%d.%d" % sys.version_info[:2]


_CLIENTS_PROBE = """
import json, sys
sys.path[:0] = json.loads(sys.argv[1])
import botocore.exceptions, botocore.session
session = botocore.session.get_session()
for name in sys.argv[2:]:
    session.create_client(name, region_name="us-east-1")
try:
    session.create_client("lambda", region_name="us-east-1")
except botocore.exceptions.UnknownServiceError:
    print("no lambda")
print(botocore.__file__)
"""


def test_the_bundles_botocore_serves_the_agents_services_only(tmp_path):
    """The instance's Python, with only the bundle's trees on its path, makes a client for each
    service the agent calls, and has no model of the others."""
    zipfile.ZipFile(io.BytesIO(build.agent_bundle().data)).extractall(tmp_path)
    trees = json.dumps([str(tmp_path / build.PURE), str(tmp_path / platform.machine())])
    done = subprocess.run([sys.executable, "-I", "-S", "-c", _CLIENTS_PROBE, trees, *build.AGENT_AWS_SERVICES],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["no lambda", str(tmp_path / build.PURE / "botocore" / "__init__.py")]


def test_the_deployed_bundle_carries_the_installed_engines():
    """CWL and WDL jobs run their engine on the instance: the bundle deploy uses has them."""
    pytest.importorskip("cwltool")
    pytest.importorskip("WDL")
    names = zipfile.ZipFile(io.BytesIO(build.agent_bundle().data)).namelist()
    assert build.installed_engines() == ("cwltool", "miniwdl")
    assert "any/cwltool/main.py" in names and "any/WDL/__init__.py" in names


def test_user_data_checks_the_bundle_and_is_valid_bash():
    urls = launch.BootUrls("https://b/bundle", "https://b/started", "https://b/log", "https://b/error")
    script = launch.user_data("job1", "log-bucket", "us-east-1", "now", launch.Bootstrap("b", "k", "abc", ("x86_64",), "3.11"), urls, spot=True)
    assert subprocess.run(["bash", "-n"], input=script.encode()).returncode == 0
    assert "sha256sum -c" in script and "BUNDLE_SHA256=abc" in script and "PYTHON=python3.11" in script
    assert "pip" not in script and "aws s3" not in script  # nothing resolved or needed at boot
    assert "--store s3" in script and "watch-spot" in script
    assert len(script.encode()) < 16 * 1024  # EC2's user data limit


def test_launch_template_sizes_tags_and_imdsv2(api, deployed, shell_job):
    job = shell_job("true", ebs_size="3x", ebs_type="gp3", ebs_throughput=250, root_ebs_size=20)
    data = _launcher(api, job).template_data(size=launch.ebs_size(job["config"], 5 * GIB), spot=False,
                                             root_device="/dev/xvda")
    assert data["BlockDeviceMappings"][0]["Ebs"] == {"VolumeSize": 20, "VolumeType": "gp3", "Throughput": 250,
                                                     "DeleteOnTermination": True}
    assert data["BlockDeviceMappings"][1] == {"DeviceName": "/dev/xvda", "Ebs": {
        "VolumeSize": 20, "VolumeType": "gp3", "DeleteOnTermination": True}}
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    assert data["InstanceInitiatedShutdownBehavior"] == "terminate"
    assert {t["ResourceType"] for t in data["TagSpecifications"]} == {"instance", "volume"}
    assert "InstanceMarketOptions" not in data
    assert base64.b64decode(data["UserData"]).startswith(b"#!/bin/bash")


def test_ebs_sizing():
    assert launch.ebs_size({"ebs_size": "3x"}, 5 * GIB) == 20
    assert launch.ebs_size({"ebs_size": "3x"}, 1) == 15  # at least 10, then +5
    assert launch.ebs_size({"ebs_size": 50, "ebs_size_as_is": True}, None) == 50
    with pytest.raises(EC2LaunchException, match="16TB"):
        launch.ebs_size({"ebs_size": "1000x"}, 20 * GIB)


def test_input_sizes_count_files_and_folders(api, deployed):
    s3 = boto3.client("s3")
    s3.put_object(Bucket="in-bucket", Key="sizes/a.txt", Body=b"x" * 100)
    s3.put_object(Bucket="in-bucket", Key="sizes/dir/b.txt", Body=b"x" * 50)
    s3.put_object(Bucket="in-bucket", Key="sizes/dir/c.txt", Body=b"x" * 25)
    args = {"input_files": {"a": {"bucket_name": "in-bucket", "object_key": "sizes/a.txt"},
                            "d": {"bucket_name": "in-bucket", "object_key": "sizes/dir"}},
            "secondary_files": {"a": {"bucket_name": "in-bucket", "object_key": ["sizes/a.txt"]}}}
    sizes = launch.input_sizes(api.backend.store, args)
    assert sizes == {"a": 100, "d": 75, "a_secondary": [100]}
    assert launch.input_bytes(sizes) == 275


def _launcher(api, job: dict) -> launch.Launcher:
    return launch.Launcher(api.backend.clients, api.backend.store, job | {"jobid": "j"},
                           launch.Bootstrap("log-bucket", "k", "s", ("x86_64",), "3.11"), "profile")


def test_app_names_are_sized_by_benchmark(api, deployed, monkeypatch):
    import sys
    import types

    boto3.client("s3").put_object(Bucket="in-bucket", Key="bench/in.txt", Body=b"x" * 1000)
    job = {"args": {"app_name": "md5", "input_files": {"input_file": {"bucket_name": "in-bucket",
                                                                      "object_key": "bench/in.txt"}}},
           "config": {"log_bucket": "log-bucket", "ebs_size": 0, "EBS_optimized": ""}}
    monkeypatch.setitem(sys.modules, "Benchmark", None)
    with pytest.raises(EC2LaunchException, match="needs the Benchmark-4dn package"):
        _launcher(api, job).instance_types()
    seen = {}

    def fake_benchmark(app_name, input_json):
        seen.update(app=app_name, **input_json)
        return {"total_size_in_GB": 13.2, "aws": {"recommended_instance_type": "t3.medium", "EBS_optimized": True}}

    package = types.ModuleType("Benchmark")
    package.run = types.SimpleNamespace(benchmark=fake_benchmark)
    monkeypatch.setitem(sys.modules, "Benchmark", package)
    launcher = _launcher(api, job)
    assert launcher.instance_types() == ["t3.medium"]
    assert seen == {"app": "md5", "input_size_in_bytes": {"input_file": 1000}, "parameters": {}}
    assert (launcher.config["ebs_size"], launcher.config["EBS_optimized"]) == (14, True)


def test_each_architecture_gets_amazons_current_image_and_its_root_device(api, deployed, shell_job):
    """The default image is read from the public SSM parameter of its architecture (moto serves
    Amazon's); the root volume's mapping uses the image's own root device."""
    ssm = boto3.client("ssm")
    expected = {arch: ssm.get_parameter(Name=name)["Parameter"]["Value"]
                for arch, name in launch.DEFAULT_IMAGE_PARAMETERS.items()}
    job = shell_job("true", instance_type=["t3.micro", "a1.large"], subnet=["subnet-1", "subnet-2"])
    config = jobspec.parse(job)["config"]
    launcher = launch.Launcher(api.backend.clients, api.backend.store, {"args": job["args"], "config": config,
                                                                        "jobid": "j"},
                               launch.Bootstrap("log-bucket", "k", "s", ("x86_64", "aarch64"), "3.11"), "profile")
    overrides = launcher.overrides(["t3.micro", "a1.large"])
    images = {(o["InstanceType"], o["SubnetId"]): o["ImageId"] for o in overrides}
    assert len(images) == 4
    assert images[("a1.large", "subnet-2")] == expected["Arm"] and images[("t3.micro", "subnet-1")] == expected["x86"]
    assert launcher.root_device(set(images.values())) == "/dev/xvda"  # Amazon Linux's, not /dev/sda1
    windows = boto3.client("ec2").describe_images(Owners=["amazon"], Filters=[
        {"Name": "name", "Values": ["Windows_Server-2016-English-Nano-Base-*"]}])["Images"][0]
    assert launcher.root_device({windows["ImageId"]}) == windows["RootDeviceName"] == "/dev/sda1"
    with pytest.raises(EC2LaunchException, match="config.ami_id: ami-00000000000000000: InvalidAMIID.NotFound"):
        launcher.root_device({"ami-00000000000000000"})


def test_a_users_image_wins_and_an_architecture_without_its_agent_files_is_refused(api, deployed, shell_job):
    job = shell_job("true", ami_per_region={"x86": {"us-east-1": "ami-11111111111111111"}})
    config = jobspec.parse(job)["config"]
    launcher = _launcher(api, {"args": job["args"], "config": config})
    assert [o["ImageId"] for o in launcher.overrides(["t3.micro"])] == ["ami-11111111111111111"]
    config["ami_id"] = "ami-22222222222222222"
    assert [o["ImageId"] for o in launcher.overrides(["t3.micro"])] == ["ami-22222222222222222"]
    with pytest.raises(EC2LaunchException, match="a1.large is Arm.*x86_64 only"):
        launcher.overrides(["a1.large"])


def test_cheapest_types_from_the_catalogue(api, deployed):
    catalogue = Catalogue(api.backend.clients)
    spot = catalogue.cheapest(cpu=2, mem_gib=5, spot=True)
    on_demand = catalogue.cheapest(cpu=2, mem_gib=5, spot=False)  # moto has no Pricing: smallest first
    shapes = catalogue.types()
    for chosen in (spot, on_demand):
        assert 1 <= len(chosen) <= 10
        assert all(shapes[t].vcpus >= 2 and shapes[t].mem_gib >= 5 for t in chosen)
    assert {shapes[t].arch for t in shapes} == {"x86", "Arm"} and any(s.gpus for s in shapes.values())
    with pytest.raises(EC2LaunchException, match="no EC2 instances"):
        catalogue.cheapest(cpu=100000, mem_gib=1, spot=False)


def test_spot_prices_are_current_and_read_over_every_page(api, deployed):
    """StartTime asks for the prices in effect now; the cheapest type may be on a later page."""
    from aws_harness import _OK

    catalogue = Catalogue(api.backend.clients)
    candidates = catalogue.cheapest(cpu=2, mem_gib=5, spot=False)[:2]
    seen: list[dict] = []

    def answer(params: dict, **_: object):
        seen.append(params["body"])
        stamp = dt.datetime.now(dt.timezone.utc)
        first = "NextToken" not in params["body"]
        entry = {"InstanceType": candidates[0 if first else 1], "AvailabilityZone": "us-east-1a",
                 "SpotPrice": "0.5" if first else "0.1", "Timestamp": stamp, "ProductDescription": "Linux/UNIX"}
        return _OK, {"SpotPriceHistory": [entry], **({"NextToken": "page-2"} if first else {})}

    ec2 = api.backend.clients("ec2")
    ec2.meta.events.register("before-call.ec2.DescribeSpotPriceHistory", answer)
    try:
        assert catalogue._spot_prices(candidates) == {candidates[0]: 0.5, candidates[1]: 0.1}
    finally:
        ec2.meta.events.unregister("before-call.ec2.DescribeSpotPriceHistory", answer)
    assert len(seen) == 2 and all("StartTime" in body for body in seen)


def test_deploy_waits_for_a_new_role_to_be_assumable(api, deployed):
    """Lambda refuses a role IAM has not propagated yet: CreateFunction is retried until it takes it."""
    from botocore.awsrequest import AWSResponse

    refused = []

    def create_function(params: dict, **_: object):
        if len(refused) < 2:
            refused.append(json.loads(params["body"])["FunctionName"])
            error = {"Error": {"Code": "InvalidParameterValueException",
                               "Message": "The role defined for the function cannot be assumed by Lambda."},
                     "ResponseMetadata": {"HTTPStatusCode": 400}}
            return AWSResponse("https://injected", 400, {}, None), error
        return None

    client = api.backend.clients("lambda")
    client.meta.events.register("before-call.lambda.CreateFunction", create_function)
    try:
        deployed_now = api.deploy_core("check_task_awsem", suffix="iamwait", usergroup=deployed["usergroup"])
    finally:
        client.meta.events.unregister("before-call.lambda.CreateFunction", create_function)
    assert deployed_now == refused[:1] == [f"check_task_awsem_{deployed['usergroup']}_iamwait"]
    assert client.get_function_configuration(FunctionName=deployed_now[0])["State"] == "Active"
