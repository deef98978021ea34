"""Run untrusted code (a model's completion plus its unit tests) in a separate, limited process.

Never in the harness process: a fresh `python -I` in a temporary directory, with CPU-time, address-space,
file-size and process-count limits, fork/exec/kill disabled inside it, its own session (the whole
process group is killed on timeout), and a wall-clock timeout. Whatever the code does, the result is a
`SandboxResult`; an infinite loop or a fork bomb is a failed sample, not a hung or crashed harness.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass

_GUARD = r"""
import builtins, os, posix, resource, shutil, subprocess, sys
mem = {mem}
resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
resource.setrlimit(resource.RLIMIT_CPU, ({cpu}, {cpu}))
resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
try:
    resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
except (ValueError, OSError):
    pass
def _denied(*a, **k):
    raise PermissionError("disabled in the harness sandbox")
for name in ("fork", "forkpty", "system", "kill", "killpg", "putenv", "remove", "removedirs", "rmdir",
             "unlink", "rename", "renames", "truncate", "setuid", "execv", "execve", "execvp", "execl",
             "spawnv", "spawnve", "posix_spawn", "posix_spawnp"):
    for mod in (os, posix):
        if hasattr(mod, name):
            setattr(mod, name, _denied)
shutil.rmtree = shutil.move = _denied
subprocess.Popen = _denied
sys.modules["multiprocessing"] = None
sys.modules["ctypes"] = None
sys.modules["_posixsubprocess"] = None
del builtins, os, posix, resource, shutil, subprocess, sys, _denied, mem
"""


@dataclass(frozen=True)
class SandboxResult:
    passed: bool
    status: str  # passed | failed | timed out
    detail: str


def run_python(program: str, *, timeout: float = 5.0, memory_mb: int = 512) -> SandboxResult:
    """Execute `program`; it passes when it exits 0 within `timeout` seconds."""
    guard = _GUARD.format(mem=memory_mb * 1024 * 1024, cpu=max(1, int(timeout) + 1))
    with tempfile.TemporaryDirectory(prefix="harness-sandbox-") as tmp:
        path = os.path.join(tmp, "program.py")
        with open(path, "w", encoding="utf-8") as f:
            f.write(guard + "\n" + program)
        env = {"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1", "HOME": tmp, "TMPDIR": tmp}
        proc = subprocess.Popen(
            [sys.executable, "-I", path],
            cwd=tmp,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            _, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            return SandboxResult(False, "timed out", f"no result within {timeout:g} s")
        finally:
            _kill_group(proc)  # anything it left behind in its session
    if proc.returncode == 0:
        return SandboxResult(True, "passed", "")
    tail = err.decode("utf-8", "replace").strip().splitlines()[-1:] or [f"exit code {proc.returncode}"]
    return SandboxResult(False, "failed", tail[0][:300])


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass
