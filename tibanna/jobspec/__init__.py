"""The job description (docs/design.md 3.1): upstream's input JSON as pydantic models, and its only parser.

`parse` loads a description, refuses anything upstream refuses (at submission or, later, on the
instance) with upstream's exception class and a one-line message that starts with the field
path, and fills defaults exactly as upstream's `UnicornInput`/`Args`/`Config` do; the parsed job
is a plain dict. Output targets are read by `output_targets`, which the API (to validate) and the
agent (to upload) share. `json_schema` is the models' JSON Schema, published as job.schema.json.

Modules: `loading` (a dict or a JSON file, checked as JSON data), `refusal` (the messages),
`fields` (the shared field types), `config`, `args` and `targets` (the sections' models), `job`
(the whole description, `parse`, the schema), `upstream` (upstream's tables and limits).
"""
from tibanna.jobspec.args import Args, CwlArgs, InputFile, ShellArgs, SnakemakeArgs, WdlArgs
from tibanna.jobspec.config import Config, data_volume_gb
from tibanna.jobspec.fields import DATA_ROOT, iter_keys
from tibanna.jobspec.job import SCHEMA_PATH, Job, json_schema, json_schema_text, parse, redacted
from tibanna.jobspec.loading import MAX_NESTING, load_description
from tibanna.jobspec.targets import OutputTarget, output_targets, secondary_output_targets
from tibanna.jobspec.upstream import (BENCHMARKABLE_APP_NAMES, CAPACITY_BEHAVIORS, CONTAINER_RUNTIMES,
                                      DEFAULT_AWSF_IMAGE, DEFAULT_ROOT_EBS_SIZE, EBS_SIZE_LIMIT_GB, EBS_SIZE_OVERHEAD_GB,
                                      EBS_TYPES, LANGUAGES, MIN_EBS_SIZE_GB, UNZIP_TYPES, WDL_LANGUAGES)

__all__ = [
    "BENCHMARKABLE_APP_NAMES", "CAPACITY_BEHAVIORS", "CONTAINER_RUNTIMES", "DATA_ROOT",
    "DEFAULT_AWSF_IMAGE", "DEFAULT_ROOT_EBS_SIZE", "EBS_SIZE_LIMIT_GB", "EBS_SIZE_OVERHEAD_GB", "EBS_TYPES", "LANGUAGES",
    "MAX_NESTING", "MIN_EBS_SIZE_GB", "SCHEMA_PATH", "UNZIP_TYPES", "WDL_LANGUAGES", "Args", "Config", "CwlArgs",
    "InputFile", "Job", "OutputTarget", "ShellArgs", "SnakemakeArgs", "WdlArgs", "data_volume_gb", "iter_keys", "json_schema",
    "json_schema_text", "load_description", "output_targets", "parse", "redacted", "secondary_output_targets",
]
