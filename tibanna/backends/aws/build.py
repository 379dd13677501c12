"""Reproducible builds from the installed packages: the agent's bundle and the Lambdas' zip.

The agent's bundle is what an instance runs: this package and the exact distributions its agent
imports (boto3's, psutil's and pydantic's closures, and cwltool's and miniwdl's when installed), at
the versions installed where deploy runs, which are the versions that were tested. It is a zip of
ready-to-import trees, `any/` for pure-Python files and one tree per CPU architecture for compiled
ones, that the instance extracts onto `sys.path`: no pip, no index, nothing resolved at boot. Compiled distributions of another architecture than the
deploying machine's are fetched once, at deploy, with `pip download`; an architecture whose
wheels cannot be had is left out, and launching on it is refused.

The Lambdas' zip holds the package and pydantic's closure, built the same way for the Lambdas'
architecture and for the deploying Python's version, which is the runtime deploy gives them.

Both artifacts have fixed timestamps and permissions and sorted entries, so the same
installation gives byte-identical files (and the sha256 the instance checks before it extracts).
"""
from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import io
import json
import logging
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Callable

import tibanna

log = logging.getLogger(__name__)

AGENT_REQUIREMENTS = ("boto3", "psutil", "pydantic")  # what the agent imports on an instance beyond the standard library
# The AWS services the agent calls (storage/s3.py's clients, agent/): the bundle's botocore keeps only
# their models, a seventh of its size (the instance downloads the bundle at each boot).
AGENT_AWS_SERVICES = ("cloudwatch", "ec2", "ecr", "s3", "stepfunctions", "sts")
LAMBDA_REQUIREMENTS = ("pydantic",)  # what the Lambdas import beyond the standard library and the runtime's boto3
# CreateFunction/UpdateFunctionCode take a zip of at most 50 MiB (the API's "Request must be smaller
# than 69905067 bytes": that zip in base64); moto takes any size.
LAMBDA_ZIP_LIMIT = 50 * 1024 * 1024
LAMBDA_ARCH = "x86_64"  # the Lambdas' architecture: their compiled files are built for it
ENGINES = ("cwltool", "miniwdl")  # the CWL and WDL engines the agent drives: bundled when installed at deploy
ARCHES = ("x86_64", "aarch64")  # `uname -m` of the instances Tibanna launches
PURE = "any"  # the bundle's tree of pure-Python files
MANIFEST = "MANIFEST.json"
# The instances and the Lambdas run the Python version that deploys (compiled files are built for one version).
PYTHON_VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"
LAMBDA_RUNTIME = f"python{PYTHON_VERSION}"
_EPOCH = (1980, 1, 1, 0, 0, 0)
_LAMBDA_BUNDLE_DIR = "tibanna_agent"
# The deployed run_task Lambda's environment: where its agent bundle is, its sha256 and architectures.
BUNDLE_PATH_ENV, BUNDLE_SHA256_ENV, BUNDLE_ARCHES_ENV, BUNDLE_PYTHON_ENV = (
    "TIBANNA_AGENT_BUNDLE", "TIBANNA_AGENT_BUNDLE_SHA256", "TIBANNA_AGENT_BUNDLE_ARCHES", "TIBANNA_AGENT_BUNDLE_PYTHON")
LAMBDA_TASK_ROOT = "/var/task"
_SKIPPED_METADATA = ("RECORD", "INSTALLER", "REQUESTED", "direct_url.json")

# (name, version, arch, folder) -> the wheel of that distribution for that architecture, or None.
Downloader = Callable[[str, str, str, Path], "Path | None"]


@dataclass(frozen=True)
class Artifact:
    """A built file: its name, bytes and sha256 (hex)."""

    name: str
    data: bytes
    sha256: str

    @property
    def lambda_path(self) -> str:
        """Where the file sits inside the deployed Lambda (BUNDLE_PATH_ENV of run_task)."""
        return f"{LAMBDA_TASK_ROOT}/{_LAMBDA_BUNDLE_DIR}/{self.name}"


@dataclass(frozen=True)
class AgentBundle(Artifact):
    """The agent's bundle, the architectures it has every compiled file for, and its Python version."""

    arches: tuple[str, ...]
    python: str = PYTHON_VERSION


def package_files(package: ModuleType = tibanna) -> list[tuple[str, Path]]:
    """(archive name, file) for every source and data file of an installed package, sorted."""
    root = Path(package.__file__).parent
    found = []
    for path in root.rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc", ".pyo"):
            found.append((f"{root.name}/{path.relative_to(root).as_posix()}", path))
    return sorted(found)


def requirement_closure(roots: tuple[str, ...]) -> list[importlib.metadata.Distribution]:
    """The installed distributions `roots` need, recursively, with environment markers evaluated."""
    from packaging.requirements import Requirement  # at deploy only: the Lambdas' runtime lacks it
    from packaging.utils import canonicalize_name

    found: dict[str, importlib.metadata.Distribution] = {}
    pending = [(name, frozenset()) for name in roots]
    while pending:
        name, extras = pending.pop()
        key = canonicalize_name(name)
        if key in found and not extras:
            continue
        try:
            dist = found[key] = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            raise RuntimeError(f"{name} is needed by the agent on an instance but is not installed here "
                               "(pip install 'tibanna[aws]')") from None
        for text in dist.requires or []:
            requirement = Requirement(text)
            if requirement.marker is None or any(requirement.marker.evaluate({"extra": extra})
                                                 for extra in (extras or {""})):
                pending.append((requirement.name, frozenset(requirement.extras)))
    return [found[key] for key in sorted(found)]


def _wheel_tags(dist: importlib.metadata.Distribution) -> list[str]:
    return [line.split(":", 1)[1].strip() for line in (dist.read_text("WHEEL") or "").splitlines()
            if line.startswith("Tag:")]


def _is_pure(dist: importlib.metadata.Distribution) -> bool:
    tags = _wheel_tags(dist)
    return bool(tags) and all(tag.endswith("-none-any") for tag in tags)


def _linux_arch(dist: importlib.metadata.Distribution) -> str | None:
    """The architecture of an installed compiled distribution when it was built for Linux, else None."""
    for tag in _wheel_tags(dist):
        platform_tag = tag.rsplit("-", 1)[-1]
        for arch in ARCHES:
            if platform_tag.endswith("_" + arch) and "linux" in platform_tag:
                return arch
    return None


def _installed_files(dist: importlib.metadata.Distribution) -> list[tuple[str, bytes]]:
    """(path under site-packages, bytes) of an installed distribution, without caches, scripts
    outside site-packages, or the installer's bookkeeping."""
    entries = []
    for file in dist.files or []:
        path = file.as_posix()
        if path.startswith("..") or "__pycache__" in path or path.endswith((".pyc", ".pyo")) \
                or (".dist-info/" in path and path.rsplit("/", 1)[-1] in _SKIPPED_METADATA):
            continue
        located = Path(dist.locate_file(file))
        if located.is_file():
            entries.append((path, located.read_bytes()))
    return entries


def _wheel_files(wheel: Path) -> list[tuple[str, bytes]]:
    """(path under site-packages, bytes) of a wheel's purelib/platlib files."""
    with zipfile.ZipFile(wheel) as archive:
        return [(name, archive.read(name)) for name in archive.namelist()
                if not name.endswith("/") and not name.split("/", 1)[0].endswith(".data")
                and name.rsplit("/", 1)[-1] not in _SKIPPED_METADATA]


def pip_download(name: str, version: str, arch: str, folder: Path) -> Path | None:
    """The manylinux wheel of `name==version` for `arch`, fetched with pip's own settings (index,
    proxies); None when it cannot be had (offline, no such wheel)."""
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
               "--retries", "0", "--timeout", "15", "--platform", f"manylinux2014_{arch}",
               "--implementation", "cp", "--python-version", PYTHON_VERSION, "--dest", str(folder),
               f"{name}=={version}"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as err:
        log.warning("cannot fetch %s==%s for %s: %s", name, version, arch, err)
        return None
    wheels = sorted(folder.glob("*.whl"))
    if done.returncode != 0 or not wheels:
        log.warning("cannot fetch %s==%s for %s: %s", name, version, arch, done.stderr.strip()[-300:])
        return None
    return wheels[0]


def _tibanna_files() -> list[tuple[str, bytes]]:
    version = tibanna.__version__
    files = [(name, path.read_bytes()) for name, path in package_files()]
    metadata = f"Metadata-Version: 2.1\nName: tibanna\nVersion: {version}\nRequires-Python: >=3.11\n"
    return files + [(f"tibanna-{version}.dist-info/METADATA", metadata.encode())]


def _add(archive: zipfile.ZipFile, name: str, data: bytes, compress: bool = True) -> None:
    info = zipfile.ZipInfo(name, date_time=_EPOCH)
    info.external_attr = 0o644 << 16
    info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    archive.writestr(info, data, **({"compresslevel": 6} if compress else {}))


def _artifact(name: str, entries: list[tuple[str, bytes]]) -> Artifact:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for entry, data in sorted(entries):
            _add(archive, entry, data)
    data = buffer.getvalue()
    return Artifact(name, data, hashlib.sha256(data).hexdigest())


def installed_engines() -> tuple[str, ...]:
    """The workflow engines installed here, which the bundle carries to the instances."""
    found = []
    for name in ENGINES:
        try:
            importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        found.append(name)
    return tuple(found)


@dataclass
class _Closure:
    """The files of `roots` and what they need, by tree (`any` or an architecture), with versions."""

    entries: list[tuple[str, bytes]] = field(default_factory=list)  # ("<tree>/<path>", bytes)
    versions: dict[str, str] = field(default_factory=dict)
    scripts: dict[str, str] = field(default_factory=dict)  # console scripts: name -> module:function
    missing: set[str] = field(default_factory=set)  # architectures some compiled file could not be had for


def _closure(roots: tuple[str, ...], arches: tuple[str, ...], download: Downloader) -> _Closure:
    """The installed closure of `roots`: pure files in `any/`, compiled ones in one tree per architecture
    (this machine's installed files where they were built for Linux on it, else the downloaded wheel)."""
    found = _Closure()
    for dist in requirement_closure(roots):
        name, version = dist.metadata["Name"], dist.version
        found.versions[name] = version
        found.scripts |= {entry.name: entry.value for entry in dist.entry_points if entry.group == "console_scripts"}
        if _is_pure(dist):
            found.entries += [(f"{PURE}/{path}", data) for path, data in _installed_files(dist)]
            continue
        for arch in arches:
            if _linux_arch(dist) == arch and sys.platform.startswith("linux"):
                found.entries += [(f"{arch}/{path}", data) for path, data in _installed_files(dist)]
                continue
            with tempfile.TemporaryDirectory() as folder:
                wheel = download(name, version, arch, Path(folder))
                if wheel is None:
                    found.missing.add(arch)
                    continue
                found.entries += [(f"{arch}/{path}", data) for path, data in _wheel_files(wheel)]
    return found


def _agent_needs(entry: str) -> bool:
    """All of the closure but botocore's models of services the agent never calls."""
    parts = entry.split("/")
    return not (parts[1:3] == ["botocore", "data"] and len(parts) > 4 and parts[3] not in AGENT_AWS_SERVICES)


def build_agent_bundle(download: Downloader = pip_download,
                       roots: tuple[str, ...] = AGENT_REQUIREMENTS) -> AgentBundle:
    """`tibanna-agent-<version>.zip` of `roots` and what they need: `any/`, one tree per architecture
    available, and a manifest naming each distribution's version, the architectures, the Python and
    the console scripts (`name: module:function`) the instance writes for that Python."""
    closure = _closure(roots, ARCHES, download)
    entries = [(f"{PURE}/{name}", data) for name, data in _tibanna_files()]
    entries += [(name, data) for name, data in closure.entries if _agent_needs(name)]
    arches = tuple(arch for arch in ARCHES if arch not in closure.missing)
    if closure.missing:
        log.warning("the agent's bundle has no compiled files for %s: instances of that architecture cannot "
                    "be launched until a deploy can fetch them", ", ".join(sorted(closure.missing)))
    manifest = {"tibanna": tibanna.__version__, "arches": list(arches), "python": PYTHON_VERSION,
                "distributions": {"tibanna": tibanna.__version__, **closure.versions},
                "scripts": dict(sorted(closure.scripts.items()))}
    entries.append((MANIFEST, json.dumps(manifest, indent=1, sort_keys=True).encode()))
    built = _artifact(f"tibanna-agent-{tibanna.__version__}.zip", entries)
    return AgentBundle(built.name, built.data, built.sha256, arches)


@functools.cache
def agent_bundle() -> AgentBundle:
    """The bundle of this installation, with the engines installed here, built once per process
    (deploys and tests reuse it)."""
    return build_agent_bundle(roots=AGENT_REQUIREMENTS + installed_engines())


def _lambda_extras() -> list[tuple[str, Path]]:
    """Pure-Python packages the Lambdas use when installed: Benchmark-4dn sizes upstream's app names."""
    try:
        import Benchmark
    except ImportError:
        return []
    return package_files(Benchmark)


def build_lambda_zip(bundle: Artifact, download: Downloader = pip_download) -> bytes:
    """The Lambdas' code: the package and the closure of what it imports beyond the runtime's boto3
    (pydantic, built for LAMBDA_ARCH and the runtime's Python, which is the deploying one),
    Benchmark-4dn if installed, and the agent's bundle (stored as is: it is compressed already)."""
    closure = _closure(LAMBDA_REQUIREMENTS, (LAMBDA_ARCH,), download)
    if closure.missing:
        raise RuntimeError(f"the Lambdas need the compiled files of {', '.join(LAMBDA_REQUIREMENTS)} for Linux "
                           f"{LAMBDA_ARCH} and Python {PYTHON_VERSION}, and pip could not fetch them: deploy "
                           "from a machine where pip can reach an index (or a mirror) that has them")
    entries = [(name, path.read_bytes()) for name, path in package_files() + _lambda_extras()]
    entries += [(entry.split("/", 1)[1], data) for entry, data in closure.entries]  # one tree: /var/task
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in sorted(entries):
            _add(archive, name, data)
        _add(archive, f"{_LAMBDA_BUNDLE_DIR}/{bundle.name}", bundle.data, compress=False)
    if buffer.tell() > LAMBDA_ZIP_LIMIT:
        raise RuntimeError(f"the Lambdas' zip is {buffer.tell() / 2**20:.1f} MiB, over Lambda's "
                           f"{LAMBDA_ZIP_LIMIT / 2**20:.0f} MiB limit (its agent bundle: {len(bundle.data) / 2**20:.1f} MiB)")
    return buffer.getvalue()
