"""py-spy over a bench step: sample a stack's processes and summarise where their time goes."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from relay_devstack import Stack

from bench.profile_summary import samples

RATE = 100  # samples per second per process
TARGETS = ("message-0", "gateway-0", "gateway-1", "mongo")  # service processes are named <service>-<index>
# a sample counts once for each of these it passes through (inclusive time by layer)
LAYERS = {
    "database wire (pymongo)": "pymongo/",
    "broker (aio_pika/aiormq/pamqp)": ("aio_pika/", "aiormq/", "pamqp/"),
    "pydantic": "pydantic",
    "json": ("json/", "orjson"),
    "socket.io/engine.io": ("socketio/", "engineio/"),
    "http (uvicorn/starlette)": ("uvicorn/", "starlette/", "httptools"),
    "structlog": "structlog/",
    "asyncio event loop": "asyncio/",
    "relay code": ("relay_",),
    "secantus storage": ("secantus",),
    "bson": "bson/",
}


def py_spy() -> str:
    return shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")


class Profiler:
    def __init__(self, stack: Stack, out_dir: Path, step: str) -> None:
        self.stack = stack
        self.out_dir = out_dir
        self.step = step.replace("@", "-")
        self.runs: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
        self.seconds = 0.0

    def start(self, seconds: float) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.seconds = seconds
        for name in TARGETS:
            proc = self.stack.procs.get(name)
            if proc is None:
                continue
            out = self.out_dir / f"{self.step}-{name}.txt"
            args = [py_spy(), "record", "--nonblocking", "-r", str(RATE), "-d", str(int(seconds)), "-f", "raw"]
            args += ["-o", str(out), "-p", str(proc.popen.pid)]
            self.runs[name] = (subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), out)

    def stop(self) -> dict[str, Any]:
        summary = {}
        for name, (popen, out) in self.runs.items():
            popen.wait(int(self.seconds) + 30)
            if out.exists():
                summary[name] = summarise(out.read_text(), self.seconds)
        return summary


def summarise(raw: str, seconds: float, top: int = 12) -> dict[str, Any]:
    """Busy share of one core, the hottest leaf functions and inclusive time per layer."""
    leaves: Counter[str] = Counter()
    layers: Counter[str] = Counter()
    total = 0
    for stack, count in samples(raw):
        total += count
        frames = stack.split(";")
        leaves[_strip_line(frames[-1])] += count
        for layer, needles in LAYERS.items():
            needles = (needles,) if isinstance(needles, str) else needles
            if any(n in stack for n in needles):
                layers[layer] += count
    if total == 0:
        return {"samples": 0}
    return {
        "samples": total,
        "busy_share_of_one_core": round(total / (RATE * seconds), 2),
        "top_leaf_functions_pct": {k: round(100 * v / total, 1) for k, v in leaves.most_common(top)},
        "inclusive_by_layer_pct": {k: round(100 * v / total, 1) for k, v in layers.most_common()},
    }


def _strip_line(frame: str) -> str:
    """`fn (path/to/file.py:123)` → `fn (file.py)`: one entry per function, not per line."""
    name, _, where = frame.partition(" (")
    file = where.rstrip(")").rsplit(":", 1)[0].rsplit("/", 1)[-1]
    return f"{name} ({file})" if file else name
