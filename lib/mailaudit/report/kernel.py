"""The Jupyter kernel papermill runs notebooks with: always this environment's own Python.

A kernel-name mismatch is the most common papermill failure (the notebook's metadata names a
kernel that does not exist on this machine, or one from another environment without the kit).
The runner therefore installs a kernelspec named ``mailaudit`` into ``sys.prefix`` pointing at
``sys.executable`` and passes that name to papermill, whatever the notebook's metadata says.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

KERNEL_NAME = "mailaudit"


def _spec_points_here(spec_dir: str | os.PathLike) -> bool:
    try:
        spec = json.loads((Path(spec_dir) / "kernel.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    argv = spec.get("argv") or []
    return bool(argv) and os.path.abspath(argv[0]) == os.path.abspath(sys.executable)


def ensure_kernel() -> str:
    """Install (or repair) the kit's kernelspec and return the kernel name to give papermill.

    When a user-level kernelspec of the same name points elsewhere it would shadow ours
    (Jupyter searches the user's directory first), so a name unique to this environment is used;
    so too when the environment is read-only and the spec goes to the user's folder.
    """
    from ipykernel.kernelspec import install
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    prefix_id = hashlib.sha1(sys.prefix.encode("utf-8")).hexdigest()[:8]
    unique = f"{KERNEL_NAME}-{prefix_id}"
    for name in (KERNEL_NAME, unique):
        manager = KernelSpecManager()
        try:
            found = manager.get_kernel_spec(name).resource_dir
        except NoSuchKernel:
            found = None
        if found and _spec_points_here(found):
            return name
        own = Path(sys.prefix) / "share" / "jupyter" / "kernels" / name
        if found is None or Path(found).resolve() == own.resolve():
            try:
                install(kernel_name=name, display_name=f"Python (mailaudit, {Path(sys.prefix).name})",
                        prefix=sys.prefix)
            except PermissionError:   # a read-only environment: the user's own kernelspec folder
                install(kernel_name=unique, display_name=f"Python (mailaudit, {sys.prefix})", user=True)
                return unique
            if _spec_points_here(KernelSpecManager().get_kernel_spec(name).resource_dir):
                return name
    raise RuntimeError(
        f"cannot install a Jupyter kernel for {sys.executable}: the kernelspecs named "
        f"{KERNEL_NAME!r} found by Jupyter point to another Python (see `jupyter kernelspec list`)")


def quiet_kernel_manager(socket_dir: str, output_path: str, cwd: str | None = None, started: list | None = None,
                         env: dict[str, str] | None = None):
    """A kernel-manager class whose kernel process writes its stdout and stderr to `output_path`.

    The kernel starts in `cwd` with `env` added to its environment (papermill's own `cwd`, like a
    change of os.environ, would affect the whole process, which reports running side by side in
    threads would race on); each started manager is appended to `started`, so that an interrupted run
    can stop every kernel it launched.

    A kernel logs to its own stderr (``[IPKernelApp] ERROR | KeyboardInterrupt caught in kernel``,
    ZMQ tracebacks when it is shut down mid-cell); inherited, that lands on the user's terminal.
    What a notebook prints still reaches the notebook: cells' output travels over the sockets.
    On POSIX the kernel talks over Unix sockets in `socket_dir`: the default TCP transport on
    localhost is unencrypted (the kernel warns about it on every start), IPC sockets in a private
    temporary folder are reachable by this user only. Windows has no IPC transport: TCP there.
    """
    from jupyter_client.manager import AsyncKernelManager

    class QuietKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs):
            if os.name != "nt":
                kwargs.setdefault("transport", "ipc")
                kwargs.setdefault("ip", os.path.join(socket_dir, "kernel"))
            super().__init__(**kwargs)

        async def _async_launch_kernel(self, kernel_cmd, **kw):
            if cwd is not None:
                kw["cwd"] = cwd
            if env:
                kw["env"] = {**kw.get("env", os.environ), **env}
            with open(output_path, "ab") as output:   # the child keeps its own descriptor
                await super()._async_launch_kernel(kernel_cmd, **{**kw, "stdout": output, "stderr": output})
            if started is not None:
                started.append(self)

    return QuietKernelManager


def kill_kernels(managers: list) -> None:
    """Kill the kernel processes of these managers at once (an interrupted run; no graceful shutdown)."""
    for manager in list(managers):
        process = getattr(manager.provisioner, "process", None) if manager.provisioner else None
        if process is not None and process.poll() is None:
            process.kill()
