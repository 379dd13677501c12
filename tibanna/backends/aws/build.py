"""Reproducible builds of the installed package: the agent's wheel and the Lambdas' zip.

Both are made from the files of the installed `tibanna` package, with fixed timestamps and
permissions and sorted entries, so the same package gives byte-identical artifacts (and the
same sha256, which the instance checks before it installs the wheel). Nothing is fetched.
"""
from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import tibanna

_EPOCH = (1980, 1, 1, 0, 0, 0)
_LAMBDA_WHEEL_DIR = "tibanna_wheel"
LAMBDA_TASK_ROOT = "/var/task"


@dataclass(frozen=True)
class Wheel:
    """A built wheel: its file name, bytes and sha256 (hex)."""

    name: str
    data: bytes
    sha256: str

    @property
    def lambda_path(self) -> str:
        """Where the wheel sits inside the deployed Lambda (TIBANNA_WHEEL_PATH of run_task)."""
        return f"{LAMBDA_TASK_ROOT}/{_LAMBDA_WHEEL_DIR}/{self.name}"


def package_files(package: ModuleType = tibanna) -> list[tuple[str, Path]]:
    """(archive name, file) for every source and data file of an installed package, sorted."""
    root = Path(package.__file__).parent
    found = []
    for path in root.rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc", ".pyo"):
            found.append((f"{root.name}/{path.relative_to(root).as_posix()}", path))
    return sorted(found)


def _lambda_extras() -> list[tuple[str, Path]]:
    """Pure-Python packages the Lambdas use when installed: Benchmark-4dn sizes upstream's app names."""
    try:
        import Benchmark
    except ImportError:
        return []
    return package_files(Benchmark)


def _add(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=_EPOCH)
    info.external_attr = 0o644 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, data, compresslevel=9)


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _metadata(version: str) -> str:
    dist = importlib.metadata.distribution("tibanna")
    lines = ["Metadata-Version: 2.1", "Name: tibanna", f"Version: {version}",
             f"Summary: {dist.metadata.get('Summary', '')}", "Requires-Python: >=3.11"]
    extras = sorted({r.split("extra ==", 1)[1].strip().strip("'\"") for r in dist.requires or [] if "extra ==" in r})
    lines += [f"Provides-Extra: {extra}" for extra in extras]
    lines += [f"Requires-Dist: {requirement}" for requirement in dist.requires or []]
    return "\n".join(lines) + "\n"


def build_wheel() -> Wheel:
    """`tibanna-<version>-py3-none-any.whl` of the installed package."""
    version = tibanna.__version__
    info_dir = f"tibanna-{version}.dist-info"
    entries = [(name, path.read_bytes()) for name, path in package_files()]
    entries.append((f"{info_dir}/METADATA", _metadata(version).encode()))
    entries.append((f"{info_dir}/WHEEL", b"Wheel-Version: 1.0\nGenerator: tibanna\nRoot-Is-Purelib: true\n"
                                         b"Tag: py3-none-any\n"))
    entries.append((f"{info_dir}/entry_points.txt", b"[console_scripts]\ntibanna = tibanna.cli:main\n"))
    record = "".join(f"{name},{_record_hash(data)},{len(data)}\n" for name, data in entries)
    record += f"{info_dir}/RECORD,,\n"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries:
            _add(archive, name, data)
        _add(archive, f"{info_dir}/RECORD", record.encode())
    data = buffer.getvalue()
    return Wheel(f"tibanna-{version}-py3-none-any.whl", data, hashlib.sha256(data).hexdigest())


def build_lambda_zip(wheel: Wheel) -> bytes:
    """The Lambdas' code: the package (boto3 comes with the runtime), Benchmark-4dn if installed, the wheel."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, path in sorted(package_files() + _lambda_extras()):
            _add(archive, name, path.read_bytes())
        _add(archive, f"{_LAMBDA_WHEEL_DIR}/{wheel.name}", wheel.data)
    return buffer.getvalue()
