"""The stub backend: jobs that follow a script on a fake clock, for fast tests of pipelines built on Tibanna.

Nothing runs; each job does what its `Script` says, when the clock says so, and leaves in its
log bucket what a real job leaves (run.json, `.job_started`, `.log`, the postrun JSON, one
terminal marker). A sleep on the stub's `FakeClock` returns at once and moves its jobs on, and
the provider's waits (operators, sensors, triggers, Prefect tasks) sleep on the API's clock, so
a DAG or flow that waits for hours of jobs runs in milliseconds:

    from tibanna.backends import substitute
    from tibanna.backends.stub import Script, StubBackend

    def test_my_dag(tmp_path):
        stub = StubBackend(tmp_path, script=lambda job: Script.fails(after=3600)
                           if "bwa" in job["args"]["command"] else Script.succeeds(after=600))
        with substitute(stub):          # every API the DAG's tasks make is on the stub
            run = my_dag.test()
        assert ...

Or directly: `API(backend=StubBackend(tmp_path))`.
"""
from tibanna.backends.stub.backend import StubBackend
from tibanna.backends.stub.script import Ending, Script
from tibanna.clock import FakeClock

__all__ = ["Ending", "FakeClock", "Script", "StubBackend"]
