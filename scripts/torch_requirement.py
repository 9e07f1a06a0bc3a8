"""Print the pip arguments that install a suitable PyTorch on this machine.

An unpinned ``pip install torch`` takes a multi-GB CUDA build even on a machine without a GPU.
The choice, in order:

1. torch already importable: nothing to install (prints nothing);
2. an NVIDIA driver present (``nvidia-smi`` on PATH): the default PyPI build (CUDA);
3. a CPU wheel of torch in one of pip's ``find-links`` folders (offline mirrors, CI images):
   that file, so nothing large is downloaded;
4. otherwise: the official CPU-only wheel index.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import shutil
import subprocess
import sys

CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def find_links() -> list[str]:
    """Folders pip is configured to look in (PIP_FIND_LINKS and pip config)."""
    folders = os.environ.get("PIP_FIND_LINKS", "").split()
    try:
        listing = subprocess.run(
            [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, timeout=30
        ).stdout
    except (OSError, subprocess.SubprocessError):
        listing = ""
    for line in listing.splitlines():
        key, _, value = line.partition("=")
        if key.endswith("find-links"):
            folders += value.strip().strip("'\"").split()
    return [f.removeprefix("file://") for f in folders if os.path.isdir(f.removeprefix("file://"))]


def local_cpu_wheel() -> str | None:
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    for folder in find_links():
        wheels = sorted(glob.glob(os.path.join(folder, f"torch-*+cpu-{tag}-*.whl")))
        if wheels:
            return wheels[-1]
    return None


def main() -> None:
    if importlib.util.find_spec("torch") is not None:
        return
    if shutil.which("nvidia-smi"):
        print("torch")
        return
    wheel = local_cpu_wheel()
    print(wheel if wheel else f"torch --index-url {CPU_INDEX}")


if __name__ == "__main__":
    main()
