"""Background CPU of idle servers: N connected sockets, no events, utime+stime of each server process.

At a low event rate every millisecond per second a gateway spends on its own (heartbeats, sweeps, the
Redis manager, metrics, collections) adds to the fan-out bench's CPU per delivery: at 16k deliveries/s over
two replicas, 1 ms/s per replica is 0.125 µs per delivery. This measures it for both systems, same
clients, and can py-spy Relay's gateways over the window (`--profile DIR`, raw format for
bench/profile_summary.py).

    .venv/bin/python -m bench.idle_cpu --sockets 200 --seconds 30
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

from bench.fanout import settle
from bench.procs import NodeClients, NodeReference, RelaySystem, System, cpu_seconds
from bench.profile import py_spy

REPORTS = Path(__file__).parent / "reports"


def spy(pids: list[int], seconds: float, out: Path) -> list[subprocess.Popen[bytes]]:
    """py-spy (raw, 200 Hz) on each process for `seconds`, into out/idle-gateway-<n>.txt."""
    out.mkdir(parents=True, exist_ok=True)
    spies = []
    for i, pid in enumerate(pids):
        args = [py_spy(), "record", "--nonblocking", "-r", "200", "-d", str(int(seconds)), "-f", "raw"]
        args += ["-o", str(out / f"idle-gateway-{i}.txt"), "-p", str(pid)]
        spies.append(subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    return spies


async def measure(system: System, sockets: int, seconds: float, profile: Path | None) -> dict[str, Any]:
    load = await NodeClients.start(system.client_config(sockets, 0))
    try:
        await settle(system)
        spies = spy(system.server_pids, seconds, profile) if profile is not None and system.name == "relay" else []
        before = [cpu_seconds([pid]) for pid in system.server_pids]
        await asyncio.sleep(seconds)
        after = [cpu_seconds([pid]) for pid in system.server_pids]
        for spying in spies:
            await asyncio.to_thread(spying.wait)
    finally:
        await load.stop()
    per_process = [round((a - b) * 1000 / seconds, 2) for a, b in zip(after, before, strict=True)]
    result = {"system": system.name, "sockets": sockets, "seconds": seconds, "cpu_ms_per_s": per_process}
    print(json.dumps(result), flush=True)
    return result


async def main_async(args: argparse.Namespace) -> list[dict[str, Any]]:
    key = f"bench-idle-{uuid.uuid4().hex[:6]}"
    out = []
    for name in args.systems:
        system: System
        if name == "node":
            system = await NodeReference.start(key)
        else:
            system = await RelaySystem.start(key, log_dir=REPORTS / "logs")
        try:
            out.append(await measure(system, args.sockets, args.seconds, args.profile))
        finally:
            await system.stop()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--systems", default="node,relay")
    parser.add_argument("--sockets", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--profile", type=Path, default=None, help="py-spy Relay's gateways into this directory")
    args = parser.parse_args()
    args.systems = args.systems.split(",")
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
