"""The `tibanna` command: upstream's verbs and flags over `tibanna.core.API`.

Honours TIBANNA_BACKEND (local by default). A user mistake prints one line and exits 1.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Any, Callable

from tibanna import __version__, settings
from tibanna.exceptions import TibannaError

STAT_HEADERS = {"start_time": "execution_start_time", "stop_time": "execution_stop_time"}


def _default_sfn() -> str | None:
    return settings.TIBANNA_DEFAULT_STEP_FUNCTION_NAME.get()


def _api():
    from tibanna.core import API

    return API()


def _rerun_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-s", "--sfn", default=_default_sfn(), help="step function to rerun on")
    p.add_argument("-a", "--app-name-filter", help="rerun only jobs of this app name")
    p.add_argument("-i", "--instance-type", help="override the instance type")
    p.add_argument("-d", "--shutdown-min", help="override shutdown minutes")
    p.add_argument("-b", "--ebs-size", help="override the EBS size (GB, or e.g. 3x)")
    p.add_argument("-T", "--ebs-type", help="override the EBS type")
    p.add_argument("-p", "--ebs-iops", help="override the EBS IOPS")
    p.add_argument("-w", "--ebs-throughput", type=int, help="override the gp3 throughput")
    p.add_argument("-k", "--key-name", help="override the ssh key name")
    p.add_argument("-n", "--name", help="run name of the rerun")
    p.add_argument("-u", "--use-spot", action="store_true", default=None, help="rerun on spot")
    p.add_argument("-U", "--do-not-use-spot", action="store_true", default=None, help="rerun on-demand")
    p.add_argument("-x", "--overwrite-input-extra", action="store_true", default=None,
                   help="4DN (Pony) only; accepted for compatibility")


def _deploy_flags(p: argparse.ArgumentParser) -> None:
    """The flags deploy_unicorn and deploy_core share."""
    p.add_argument("-s", "--suffix", help="name suffix")
    p.add_argument("-g", "--usergroup", help="usergroup")
    p.add_argument("-t", "--subnets", nargs="+", help="subnets")
    p.add_argument("-r", "--security-groups", nargs="+", help="security groups")
    p.add_argument("-q", "--quiet", action="store_true", help="say less")


def _rerun_options(a: argparse.Namespace) -> dict[str, Any]:
    return {"app_name_filter": a.app_name_filter, "instance_type": a.instance_type, "shutdown_min": a.shutdown_min,
            "ebs_size": a.ebs_size, "ebs_type": a.ebs_type, "ebs_iops": a.ebs_iops,
            "ebs_throughput": a.ebs_throughput, "key_name": a.key_name, "name": a.name, "use_spot": a.use_spot,
            "do_not_use_spot": a.do_not_use_spot, "overwrite_input_extra": a.overwrite_input_extra}


def _print_submitted(result: dict) -> None:
    print(f"JOBID {result['jobid']} submitted")
    print(f"EXECUTION ARN = {result['_tibanna']['exec_arn']}")


def cmd_run_workflow(a):
    _print_submitted(_api().run_workflow(a.input_json, sfn=a.sfn, jobid=a.jobid, sleep=a.sleep, verbose=False,
                                         open_browser=not a.do_not_open_browser))


def cmd_run_batch_workflows(a):
    for result in _api().run_batch_workflows(a.input_json_list, sfn=a.sfn, sleep=a.sleep, verbose=False):
        _print_submitted(result)


def cmd_stat(a):
    rows = _api().stat(sfn=a.sfn, status=a.status, verbose=a.long, n=a.nlines, job_ids=a.job_ids)
    from tibanna.core import LONG_COLUMNS, SHORT_COLUMNS

    columns = LONG_COLUMNS if a.long else SHORT_COLUMNS
    print("\t".join(STAT_HEADERS.get(c, c) for c in columns))
    for row in rows:
        print("\t".join(str(row[c]) for c in columns))


def cmd_kill(a):
    _api().kill(exec_arn=a.exec_arn, job_id=a.job_id, sfn=a.sfn, soft=a.soft)


def cmd_kill_all(a):
    for jobid in _api().kill_all(sfn=a.sfn, soft=a.soft):
        print(f"killed {jobid}")


def cmd_log(a):
    text = _api().log(exec_arn=a.exec_arn, job_id=a.job_id, exec_name=a.exec_name, sfn=a.sfn,
                      postrunjson=a.postrunjson, runjson=a.runjson, top=a.top, top_latest=a.top_latest)
    print(text, end="" if text.endswith("\n") else "\n")


def cmd_info(a):
    print(json.dumps(_api().info(a.job_id), indent=True))


def cmd_add_user(a):
    _api().add_user(user=a.user, usergroup=a.usergroup)


def cmd_users(a):
    print("user\ttibanna_usergroup")
    for row in _api().users():
        print(f"{row['user']}\t{row['usergroup']}")


def cmd_list_sfns(a):
    from tibanna import protocol

    for row in _api().list_sfns(numbers=a.numbers):
        created = row["creation_date"]
        fields = [row["name"], _when(created)]
        if a.numbers:
            fields += [f"{s}={row[s]}" for s in protocol.STATUSES]
        print("\t".join(fields))


def _when(epoch: float | None) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S") if epoch else "(built in)"


def cmd_rerun(a):
    result = _api().rerun(exec_arn=a.exec_arn, job_id=a.job_id, sfn=a.sfn, verbose=False, **_rerun_options(a))
    if result:
        _print_submitted(result)


def cmd_rerun_many(a):
    for result in _api().rerun_many(sfn=a.sfn, stopdate=a.stopdate, stophour=a.stophour, stopminute=a.stopminute,
                                    offset=a.offset, sleeptime=a.sleeptime, status=a.status, verbose=False,
                                    **_rerun_options(a)):
        _print_submitted(result)


def cmd_setup_tibanna_env(a):
    print(_api().setup_tibanna_env(buckets=a.buckets, usergroup_tag=a.usergroup_tag, no_randomize=a.no_randomize,
                                   do_not_delete_public_access_block=a.do_not_delete_public_access_block))


def cmd_deploy_unicorn(a):
    print(_api().deploy_unicorn(suffix=a.suffix, buckets=a.buckets, no_setup=a.no_setup,
                                deploy_costupdater=a.deploy_costupdater, no_setenv=a.no_setenv,
                                usergroup=a.usergroup or "", subnets=a.subnets, security_groups=a.security_groups,
                                do_not_delete_public_access_block=a.do_not_delete_public_access_block,
                                quiet=a.quiet))


def cmd_deploy_core(a):
    for name in _api().deploy_core(name=a.name, suffix=a.suffix, usergroup=a.usergroup or "", subnets=a.subnets,
                                   security_groups=a.security_groups, quiet=a.quiet):
        print(name)


def cmd_cleanup(a):
    for item in _api().cleanup(user_group_name=a.usergroup, suffix=a.suffix, purge_history=a.purge_history,
                               do_not_remove_iam_group=a.do_not_remove_iam_group,
                               ignore_errors=not a.do_not_ignore_errors, verbose=not a.quiet):
        print(f"removed {item}")


def cmd_plot_metrics(a):
    print(_api().plot_metrics(a.job_id, sfn=a.sfn, force_upload=a.force_upload, update_html_only=a.update_html_only,
                              open_browser=not a.do_not_open_browser, endtime=a.endtime or "",
                              instance_id=a.instance_id or ""))


def cmd_cost(a):
    print(_api().cost(a.job_id, sfn=a.sfn, update_tsv=a.update_tsv))


def cmd_cost_estimate(a):
    if a.input_json:
        value, kind = _api().cost_estimate(input_json=a.input_json, hours=a.hours)
    else:
        value, kind = _api().cost_estimate(job_id=a.job_id, update_tsv=a.update_tsv, force=a.force)
    print(f"{value} ({kind})")


def cmd_job_schema(a):
    from tibanna import jobspec

    print(jobspec.json_schema_text(), end="")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tibanna", description="Run and track Tibanna jobs "
                                     "(backend: TIBANNA_BACKEND, default local).")
    parser.add_argument("-v", "--version", action="version", version=f"tibanna {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="<verb>")
    sub.required = True

    def verb(name: str, func: Callable, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(func=func)
        return p

    p = verb("run_workflow", cmd_run_workflow, "submit a job")
    p.add_argument("-i", "--input-json", required=True, help="job description JSON file")
    p.add_argument("-s", "--sfn", default=_default_sfn(), help="step function")
    p.add_argument("-j", "--jobid", help="job id (random if not given)")
    p.add_argument("-B", "--do-not-open-browser", action="store_true", help="do not open a browser")
    p.add_argument("-S", "--sleep", type=float, default=None, help="seconds to pause after submitting")

    p = verb("run_batch_workflows", cmd_run_batch_workflows, "submit many jobs")
    p.add_argument("-i", "--input-json-list", nargs="+", required=True, help="job description JSON files")
    p.add_argument("-s", "--sfn", default=_default_sfn(), help="step function")
    p.add_argument("-S", "--sleep", type=float, default=None, help="seconds to pause between submissions")

    p = verb("stat", cmd_stat, "list jobs and their status")
    p.add_argument("-s", "--sfn", default=_default_sfn(), help="step function")
    p.add_argument("-t", "--status", help="RUNNING|SUCCEEDED|FAILED|TIMED_OUT|ABORTED")
    p.add_argument("-l", "--long", action="store_true", help="add instance columns")
    p.add_argument("-n", "--nlines", type=int, help="print only the first n lines")
    p.add_argument("-j", "--job-ids", nargs="+", help="only these jobs")

    for name, func, text in (("kill", cmd_kill, "kill a job"), ("log", cmd_log, "print a job's log")):
        p = verb(name, func, text)
        p.add_argument("-e", "--exec-arn", help="execution ARN")
        p.add_argument("-j", "--job-id", help="job id")
        p.add_argument("-s", "--sfn", default=_default_sfn(), help="step function")
    verb_kill = sub.choices["kill"]
    verb_kill.add_argument("-z", "--soft", action="store_true", help="fail the job with JobAbortedException")
    verb_log = sub.choices["log"]
    verb_log.add_argument("-n", "--exec-name", help="execution name")
    verb_log.add_argument("-r", "--runjson", action="store_true", help="the run JSON instead")
    verb_log.add_argument("-p", "--postrunjson", action="store_true", help="the postrun JSON instead")
    verb_log.add_argument("-t", "--top", action="store_true", help="the top snapshots instead")
    verb_log.add_argument("-T", "--top-latest", action="store_true", help="the latest top snapshot instead")

    p = verb("kill_all", cmd_kill_all, "kill every running job of a step function")
    p.add_argument("-s", "--sfn", default=_default_sfn(), help="step function")
    p.add_argument("-z", "--soft", action="store_true", help="fail the jobs with JobAbortedException")

    p = verb("info", cmd_info, "print a job's index entry")
    p.add_argument("-j", "--job-id", required=True, help="job id")

    p = verb("add_user", cmd_add_user, "add a user to a usergroup")
    p.add_argument("-u", "--user", required=True, help="user name")
    p.add_argument("-g", "--usergroup", required=True, help="usergroup, e.g. default_3465")

    verb("users", cmd_users, "list users and their usergroups")

    p = verb("list_sfns", cmd_list_sfns, "list step functions")
    p.add_argument("-s", "--sfn-type", default="unicorn", help="accepted for compatibility")
    p.add_argument("-n", "--numbers", action="store_true", help="add job counts per status")

    p = verb("rerun", cmd_rerun, "rerun a job")
    p.add_argument("-e", "--exec-arn", help="execution ARN")
    p.add_argument("-j", "--job-id", help="job id")
    _rerun_flags(p)

    p = verb("rerun_many", cmd_rerun_many, "rerun the jobs that ended after a time")
    _rerun_flags(p)
    p.add_argument("-D", "--stopdate", default="13Feb2018", help="e.g. 14Feb2018")
    p.add_argument("-H", "--stophour", type=int, default=13, help="hour, system time zone")
    p.add_argument("-M", "--stopminute", type=int, default=0, help="minute")
    p.add_argument("-o", "--offset", type=int, default=0, help="hours added to the time")
    p.add_argument("-r", "--sleeptime", type=float, default=None, help="seconds between reruns")
    p.add_argument("-t", "--status", default="FAILED", help="status of the jobs to rerun")

    p = verb("setup_tibanna_env", cmd_setup_tibanna_env, "create a usergroup with bucket access")
    p.add_argument("-b", "--buckets", default="", help="comma-separated buckets")
    p.add_argument("-g", "--usergroup-tag", default="default", help="usergroup tag")
    p.add_argument("-R", "--no-randomize", action="store_true", help="no random number after the tag")
    p.add_argument("-P", "--do-not-delete-public-access-block", action="store_true", help="keep access blocks")

    p = verb("deploy_unicorn", cmd_deploy_unicorn, "deploy a step function")
    _deploy_flags(p)
    p.add_argument("-b", "--buckets", default="", help="comma-separated buckets")
    p.add_argument("-S", "--no-setup", action="store_true", help="skip the usergroup set-up")
    p.add_argument("-C", "--deploy-costupdater", action="store_true", help="deploy the cost updater too")
    p.add_argument("-E", "--no-setenv", action="store_true", help="do not make it the default step function")
    p.add_argument("-P", "--do-not-delete-public-access-block", action="store_true", help="keep access blocks")

    p = verb("deploy_core", cmd_deploy_core, "redeploy a step function's workers")
    p.add_argument("-n", "--name", required=True, help="all | unicorn | run_task_awsem | check_task_awsem")
    _deploy_flags(p)

    p = verb("cleanup", cmd_cleanup, "remove a usergroup's step functions")
    p.add_argument("-g", "--usergroup", required=True, help="usergroup, e.g. default_3465")
    p.add_argument("-s", "--suffix", help="name suffix")
    p.add_argument("-p", "--purge-history", action="store_true", help="delete the jobs and their logs too")
    p.add_argument("-G", "--do-not-remove-iam-group", action="store_true", help="keep the usergroup")
    p.add_argument("-q", "--quiet", action="store_true", help="say less")
    p.add_argument("-E", "--do-not-ignore-errors", action="store_true", help="fail when nothing is there")

    p = verb("plot_metrics", cmd_plot_metrics, "write a job's metrics report and print where it is")
    p.add_argument("-j", "--job-id", required=True, help="job id")
    p.add_argument("-s", "--sfn", default=_default_sfn(), help="step function")
    p.add_argument("-f", "--force-upload", action="store_true", help="re-plot even when the report is locked")
    p.add_argument("-B", "--do-not-open-browser", action="store_true", help="do not open a browser")
    p.add_argument("-u", "--update-html-only", action="store_true", help="re-render the page from the tsvs")
    p.add_argument("-e", "--endtime", help="end of the time window (YYYYmmdd-HH:MM:SS-UTC)")
    p.add_argument("-i", "--instance-id", "--instance_id", dest="instance_id", help="the job's instance id")

    p = verb("cost", cmd_cost, "print what a job cost")
    p.add_argument("-j", "--job-id", required=True, help="job id")
    p.add_argument("-s", "--sfn", default=_default_sfn(), help="step function")
    p.add_argument("-u", "--update-tsv", action="store_true", help="write the cost into metrics_report.tsv")

    p = verb("cost_estimate", cmd_cost_estimate, "print a job's cost estimate (or a description's, before a run)")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("-j", "--job-id", help="job id")
    target.add_argument("-i", "--input-json", help="a job description, priced before it runs (with --hours)")
    p.add_argument("-H", "--hours", type=float, help="expected run time in hours (with --input-json)")
    p.add_argument("-u", "--update-tsv", action="store_true", help="write the estimate into metrics_report.tsv")
    p.add_argument("-f", "--force", action="store_true", help="estimate even when the actual cost is known")

    verb("job_schema", cmd_job_schema, "print the JSON Schema of a job description (for editors and validators)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `tibanna` command."""
    args = build_parser().parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logging.getLogger("tibanna").addHandler(handler)
    logging.getLogger("tibanna").setLevel(logging.INFO)
    try:
        args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
    except BrokenPipeError:  # `tibanna stat | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing more to flush at exit
        return 141  # 128 + SIGPIPE, as a command the pipe ended
    except TibannaError as err:
        print(f"tibanna {args.verb}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as err:  # noqa: BLE001 - a bug, not a user mistake: one line unless asked
        if settings.TIBANNA_DEBUG.get():
            raise
        print(f"tibanna {args.verb}: unexpected error: {type(err).__name__}: {err} "
              "(set TIBANNA_DEBUG=1 for the traceback)", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
