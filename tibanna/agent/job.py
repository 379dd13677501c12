"""One job on a worker, start to end, speaking the log-bucket protocol (docs/design.md 3.2).

`.job_started` first; then run.json, the job folder, inputs, the command (monitored), outputs,
the postrun JSON, the full log, and exactly one marker, `.success` or `.error`, last. A SIGTERM
stops the command's tree and ends the agent with no marker (the killer writes `.aborted`).
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Iterator

import psutil

from tibanna import jobspec, protocol, secret_env
from tibanna.agent import cloudwatch, container
from tibanna.agent.callback import Callback
from tibanna.agent.folder import BIND, NATIVE, REWRITE, JobFolder
from tibanna.agent.joblog import JobLog, milestone
from tibanna.agent.monitor import Monitor
from tibanna.agent.outputs import Uploader
from tibanna.agent.runners import RunContext, Runner, runner_for
from tibanna.agent.runners.base import literal
from tibanna.agent.sampling import device_of, disk_bytes, human_size
from tibanna.agent.settings import AgentDefaults
from tibanna.agent.staging import stage_inputs
from tibanna.exceptions import AWSEMJobErrorException, TibannaError
from tibanna.storage import ObjectStore

logger = logging.getLogger(__name__)


class _Terminated(BaseException):
    """SIGTERM arrived: unwind at once, whatever the agent was doing."""


class JobFailed(TibannaError):
    """A step of the job failed; the message is the one-line cause."""


def run_job(store: ObjectStore, jobid: str, log_bucket: str, workdir: Path, *,
            defaults: AgentDefaults | None = None, secrets: dict[str, str] | None = None) -> int:
    """Run job `jobid` whose run.json is in `log_bucket`, in `workdir`; 0 on success, 1 otherwise.

    `secrets` holds the values of input_env variables that run.json shows as `****`: they
    reach the command's environment and nothing else."""
    with _sigterm_raises():
        try:
            return _Job(store, jobid, log_bucket, Path(workdir), defaults or AgentDefaults(),
                        secrets or {}).run()
        except _Terminated:  # before the job log existed: nothing to stop yet
            return 1


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """Turn the first SIGTERM into _Terminated in this (main) thread; elsewhere signals are left alone."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # one unwind is enough
        raise _Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class _Job:
    """The state of one run; `run` is the whole sequence."""

    def __init__(self, store: ObjectStore, jobid: str, log_bucket: str, workdir: Path,
                 defaults: AgentDefaults, secret_values: dict[str, str]) -> None:
        self.store, self.jobid, self.log_bucket, self.defaults = store, jobid, log_bucket, defaults
        self.secret_values = secret_values
        self.workdir = workdir.absolute()
        self.agent_dir = self.workdir / "agent"
        self.start_time = protocol.now_stamp()
        self.codes: list[int] = []
        self.postrun: dict = {"Job": {"JOBID": jobid, "start_time": self.start_time,
                                      "Log": {"log_bucket_directory": log_bucket}}, "config": {}, "commands": []}
        self.folder: JobFolder | None = None
        self.runtime: str | None = None  # the runtime `command` runs in (with the runner's container_image)
        self.usable_runtime: str | None = None  # also handed to engine runners (cwl, wdl) for their own steps
        self.monitor: Monitor | None = None
        self.containers: container.JobContainers | None = None  # set when a runtime is usable
        self.mounted: list[Path] = []
        self.output_files: dict[str, dict] | None = None
        self.callback = Callback(store, jobid, log_bucket)

    def key(self, suffix: str) -> str:
        return protocol.key(self.jobid, suffix)

    # -- the sequence ------------------------------------------------------------------------

    def run(self) -> int:
        milestone("agent")
        self.store.put_bytes(self.log_bucket, self.key(protocol.JOB_STARTED), b"")
        self.callback.start()
        self.agent_dir.mkdir(parents=True, exist_ok=True)
        with JobLog(self.agent_dir / f"{self.jobid}{protocol.LOG}") as self.log:
            try:
                failure = self._steps()
                self._finish(failure)
            except _Terminated:
                self._terminate()
                return 1
        return 0 if failure is None else 1

    def _steps(self) -> str | None:
        """Everything up to the outputs; the cause of a failure, or None."""
        try:
            run_json = self._read_run_json()
            runner = self._setup(run_json)
            ctx = self._stage(run_json, runner)
            code = self._execute(runner, ctx)
            self.codes.append(code)
            if code != 0:
                raise JobFailed(f"the command exited with code {code}")
            with self._step():
                self._upload_outputs(run_json, runner, ctx)
        except TibannaError as err:
            return self._failed(str(err))
        except Exception as err:  # a malformed run.json, a broken machine or a bug: still end with .error
            logger.exception("job %s: agent error", self.jobid)
            return self._failed(f"agent error: {type(err).__name__}: {err}")
        return None

    @contextlib.contextmanager
    def _step(self) -> Iterator[None]:
        """Record a step's exit status (0, or 1 when it raises) as upstream's STATUS does."""
        try:
            yield
        except Exception:
            self.codes.append(1)
            raise
        self.codes.append(0)

    def _failed(self, cause: str) -> str:
        if not self.codes or self.codes[-1] == 0:
            self.codes.append(1)
        self.log.info(f"ERROR: {cause}")
        return cause

    # -- steps ------------------------------------------------------------------------------

    def _read_run_json(self) -> dict:
        text = self.store.get_text(self.log_bucket, self.key(protocol.RUN_JSON))
        if text is None:
            raise JobFailed(f"run.json not found at s3://{self.log_bucket}/{self.key(protocol.RUN_JSON)}")
        try:
            run_json = json.loads(text)
        except json.JSONDecodeError as err:
            raise JobFailed(f"run.json is not valid JSON: {err}") from err
        self.postrun = protocol.initial_postrun_json(run_json, **self._instance(run_json["config"]))
        self.postrun["Job"]["start_time"] = self.start_time
        return run_json

    def _instance(self, config: dict) -> dict[str, str]:
        """Where the job runs: on EC2 (the AWS user data asks for CloudWatch) the instance's id from
        the config or IMDSv2; on a local worker there is no instance, so names say 'local'."""
        instance_type = config.get("instance_type") or protocol.LOCAL_INSTANCE_TYPE
        if isinstance(instance_type, list):
            instance_type = instance_type[0]
        if self.defaults.cloudwatch:
            config["instance_id"] = config.get("instance_id") or cloudwatch.imds_instance_id() or ""
        return {"instance_id": config.get("instance_id") or f"local-{socket.gethostname()}",
                "instance_type": instance_type, "availability_zone": config.get("availability_zone") or "local",
                "filesystem": device_of(self.workdir)}

    def _setup(self, run_json: dict) -> Runner:
        """The runner, the job folder, the container runtime and how the job sees /data1."""
        language = run_json["Job"]["App"]["language"]
        self.log.info(f"job {self.jobid}: language {language}, agent pid {os.getpid()}")
        runner = runner_for(language)(run_json)
        self.folder = folder = JobFolder(self.workdir, protocol.language_family(language))
        folder.create()
        self._choose_runtime(run_json, runner)
        mode = folder.choose_mode(self.defaults.data1_mode, in_container=self.runtime is not None)
        if mode == REWRITE:
            why = "data1_mode 'rewrite'" if self.defaults.data1_mode == REWRITE else "/data1 cannot be bind-mounted here"
            self.log.info(f"{why}: '/data1' is rewritten to {folder.data1} in the command, input_env, "
                          "targets and input paths")
        elif mode == BIND:
            self.log.info(f"{folder.data1} is bind-mounted at /data1 in a private mount namespace")
        # A job that asks for frequent samples gets them uploaded as often, up to the machine's pace.
        asked = run_json["config"].get("metrics_interval")
        interval = asked or self.defaults.metrics_interval
        upload_interval = min(asked, self.defaults.log_upload_interval) if asked else self.defaults.log_upload_interval
        publisher = cloudwatch.publisher(self.store, run_json["config"]) if self.defaults.cloudwatch else None
        self.monitor = Monitor(self.store, self.log_bucket, self.jobid, folder.data1, self.agent_dir, self.log,
                               metrics_interval=interval, upload_interval=upload_interval,
                               cloudwatch=publisher)
        self._put_postrun()
        return runner

    def _choose_runtime(self, run_json: dict, runner: Runner) -> None:
        """The runtime for the job's containers; a runtime asked for by name is used or the job fails."""
        choice = container.requested_runtime(self.defaults.container_runtime, run_json["config"])
        resolution = container.resolve_runtime(choice)
        self.usable_runtime = resolution.runtime
        job = self.postrun["Job"]
        job["container_runtime"] = resolution.runtime or "host"
        if resolution.fallback:
            job["container_fallback"] = f"container_runtime 'auto': {resolution.fallback}, so the job runs on the host"
            self.log.info(job["container_fallback"])
        if resolution.daemon is not None:
            self.containers = container.JobContainers.for_job(self.jobid, resolution.daemon)
            self.containers.save(self.workdir)
        image = runner.container_image
        if image:
            self.runtime = self.usable_runtime
            if self.runtime is None:
                reason = "container_runtime is 'none'" if choice == "none" else "no docker daemon answered"
                self.log.info(f"container_image {image} was not used ({reason}): the command runs on the host")
            else:
                self.log.info(f"container runtime {self.runtime}, image {image}")

    def _stage(self, run_json: dict, runner: Runner) -> RunContext:
        """Inputs staged while the job's image is pulled (both wait on the network)."""
        assert self.folder is not None
        pull = None
        if self.runtime is not None and self.containers is not None:
            pull = container.Pull(self.containers, runner.container_image, self.log.info, lambda: milestone("image"))
        try:
            with self._step():
                staged = stage_inputs(self.store, run_json["Job"]["Input"], self.folder, self.log)
            milestone("staged")
        finally:
            pull_error = pull.join() if pull is not None else None  # a staging error is not masked by it
        if pull_error is not None:
            raise pull_error
        self.mounted = list(staged.mounted.values())
        ctx = RunContext(jobid=self.jobid, run_json=run_json, store=self.store, folder=self.folder, log=self.log,
                         container_runtime=self.usable_runtime, inputs=staged.files,
                         secondary_inputs=staged.secondary)
        runner.prepare(ctx)
        return ctx

    def _execute(self, runner: Runner, ctx: RunContext) -> int:
        """Source the env file and run the runner's command (in its container, if any); its exit code."""
        assert self.folder is not None and self.monitor is not None
        folder = self.folder
        env = ctx.run_json["Job"]["Input"].get("Env") or {}
        secrets = self._secret_values(env)
        runner_lines = [f"export {name}={word}" for name, word in runner.exports(ctx).items()]
        for line in runner_lines:
            self.log.info(line)
        lines = [f"export LANGUAGE={literal(ctx.app['language'])}", *runner_lines,
                 *(f"export {name}={literal(folder.view(str(value)))}" for name, value in env.items()
                   if name not in secrets)]
        env_file = self.agent_dir / "env_command_list.txt"
        env_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
        command = runner.command(ctx)
        path = [os.path.dirname(sys.executable), os.environ.get("PATH", os.defpath)]
        if self.runtime is not None and self.containers is not None:
            command = container.run_words(self.containers, data1=folder.data1, workdir=folder.job_cwd,
                                          env_names=list(env), image=runner.container_image,
                                          read_only_mounts=self.mounted) + " " + command
        elif self.containers is not None:  # an engine's steps: through the shim that marks their containers
            path.insert(0, str(container.write_shim(self.containers, self.agent_dir / "bin").parent))
        on_data1 = folder.mode in (NATIVE, BIND)
        cwd = folder.job_cwd if on_data1 else str(folder.host_path(folder.job_cwd))
        # One `bash -c` string: bash runs its last command in place when that is a simple command.
        script = "\n".join(filter(None, [folder.bind_command(), f". {literal(str(env_file))}",
                                         f"cd {literal(cwd)} || exit 1", command]))
        self.log.info(f"running in {folder.job_cwd}: {command}")
        process_env = dict(os.environ, PATH=os.pathsep.join(path),
                           **{name: folder.view(value) for name, value in secrets.items()})
        with self.log.sink() as sink:
            proc = subprocess.Popen([*folder.bind_prefix(), "bash", "-c", script], stdin=subprocess.DEVNULL,
                                    stdout=sink, stderr=subprocess.STDOUT, env=process_env,
                                    cwd=folder.host_path(folder.job_cwd))
        milestone("command")
        self.monitor.start(proc.pid, self.containers.cgroup() if self.containers else None)
        try:
            code = proc.wait()
        finally:
            self.monitor.stop()
        if self.runtime is not None and self.containers is not None and os.geteuid() != 0:
            self.containers.give_back(folder.data1, runner.container_image)  # before the outputs are read
        code = 128 - code if code < 0 else code
        self.log.info(f"exit code {code}")
        if self.runtime is not None and code == container.RUNTIME_ERROR_CODE:
            self.log.info(f"{self.runtime} could not run image {runner.container_image} (exit {code}; "
                          "e.g. it cannot be pulled): see the lines above")
        return code

    def _secret_values(self, env: dict) -> dict[str, str]:
        """The real values of the input_env variables that run.json withholds (they never reach a file)."""
        names = secret_env.withheld_names(env)
        if not names:
            return {}
        missing = [name for name in names if name not in self.secret_values]
        if missing:
            raise JobFailed(f"input_env.{missing[0]}: its secret value is not available to the agent "
                            "(secrets are kept only until the job ends, and not across a restart)")
        self.log.info(f"input_env {', '.join(names)}: secret values, passed to the command only and "
                      f"written {secret_env.MASK} everywhere else")
        return {name: self.secret_values[name] for name in names}

    def _upload_outputs(self, run_json: dict, runner: Runner, ctx: RunContext) -> None:
        assert self.folder is not None
        args = protocol.run_json_args(run_json)
        uploader = Uploader(self.store, self.folder.real_path, self.log, self.agent_dir)
        self.output_files = uploader.upload_all(jobspec.output_targets(args), runner.output_files(ctx),
                                                jobspec.secondary_output_targets(args),
                                                args["alt_cond_output_argnames"])

    # -- the end ----------------------------------------------------------------------------

    def _finish(self, failure: str | None) -> None:
        """Final postrun JSON, then the full log, the top and samples, then the one marker."""
        job = self.postrun["Job"]
        job.update(end_time=protocol.now_stamp(), status=protocol.status_string(self.codes))
        if self.folder is not None and self.monitor is not None:
            data1 = self.folder.data1
            job.update(total_input_size=human_size(disk_bytes(data1 / "input")),
                       total_tmp_size=human_size(sum(disk_bytes(p) for p in data1.glob("tmp*"))),
                       total_output_size=human_size(disk_bytes(data1 / "out")))
            self.monitor.final_sample()
            job["Metrics"] = self.monitor.summary.as_metrics(psutil.virtual_memory().total)
        self._remove_containers()
        if self.output_files is not None:
            job.setdefault("Output", {})["Output files"] = self.output_files
        if failure is not None:
            protocol.set_postrun_error(self.postrun, AWSEMJobErrorException.__name__, failure)
        self.log.info("job failed" if failure else "job succeeded")
        self._put_postrun()
        if self.monitor is not None:
            self.monitor.upload()
        else:
            self.store.put_file(self.log_bucket, self.key(protocol.LOG), self.log.path)
        self.store.put_bytes(self.log_bucket, self.key(protocol.ERROR if failure else protocol.SUCCESS), b"")
        milestone("ended")
        self.callback.finish(self.postrun, failure is not None, self.log.text())

    def _remove_containers(self) -> None:
        """Remove the job's containers and cgroup parent (after its last sample)."""
        if self.containers is None:
            return
        for cid in self.containers.remove(self.workdir):
            self.log.info(f"removed container {cid[:12]} of the job")

    def _put_postrun(self) -> None:
        self.store.put_bytes(self.log_bucket, self.key(protocol.POSTRUN_JSON), protocol.dump_json(self.postrun))

    def _terminate(self) -> None:
        """Stop the command's whole tree (and its container), upload the log; no marker."""
        self.log.info("terminated (SIGTERM): stopping the command")
        self.callback.stop()
        if self.monitor is not None:
            self.monitor.stop()
        children = psutil.Process().children(recursive=True)
        for child in children:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.terminate()
        for child in psutil.wait_procs(children, timeout=3)[1]:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
        self._remove_containers()
        with contextlib.suppress(OSError):
            self.store.put_file(self.log_bucket, self.key(protocol.LOG), self.log.path)

