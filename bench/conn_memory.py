"""What one idle WebSocket connection holds in a gateway, by allocation site (issue 10: <= 20 KB).

`python -m bench.conn_memory --sockets 300` starts a private Relay's services, runs ONE gateway in this
process with tracemalloc on, opens N idle Node `socket.io-client` WebSockets to it (bench/node/clients.js),
waits until the gateway is quiet, and compares two snapshots: Python bytes per socket, by source line and
by file. RSS per socket of a real gateway process is the fan-out benchmark's `idle` shape; this is the
part of it Python allocates, and where. Writes bench/reports/conn_memory.{md,json}.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import sys
import time
import tracemalloc
from collections import defaultdict
from pathlib import Path
from typing import Any

from relay_auth import mint_token
from relay_config import DEV_JWT_SECRET
from relay_devstack import Stack, StackConfig
from relay_devstack.stack import free_port

from bench.procs import NodeClients

REPORTS = Path(__file__).parent / "reports"
TENANT = "bench"


def _where(frame: tracemalloc.Frame) -> str:
    name = frame.filename
    for marker in ("site-packages/", "relay_gateway/", "lib/python3.11/"):
        if marker in name:
            name = name.split(marker, 1)[1]
            break
    return f"{name}:{frame.lineno}"


def live_types() -> dict[str, list[int]]:
    """Count and shallow size of every gc-tracked object, by type."""
    table: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for obj in gc.get_objects():
        entry = table[f"{type(obj).__module__}.{type(obj).__qualname__}"]
        entry[0] += 1
        entry[1] += sys.getsizeof(obj)
    return table


def who(names: set[str], ids0: set[int], sockets: int) -> None:
    """Debug aid (CONN_MEMORY_WHO=builtins.list,...): what holds the new objects of these types, per socket."""
    objects = gc.get_objects()
    new = {id(o): o for o in objects if f"{type(o).__module__}.{type(o).__qualname__}" in names and id(o) not in ids0}
    holders: dict[str, int] = defaultdict(int)
    samples: dict[str, str] = {}

    def name(o: Any) -> str:
        code = getattr(o, "f_code", None) or getattr(o, "cr_code", None) or getattr(o, "gi_code", None)
        return type(o).__qualname__ + (f":{code.co_name}" if code else "")

    for holder in objects:
        if id(holder) in new and type(holder) is list:
            continue
        for ref in gc.get_referents(holder):
            if id(ref) in new:
                size = len(ref) if hasattr(ref, "__len__") else "-"
                key = f"{name(ref)} len={size} <- {name(holder)}"
                holders[key] += 1
                if key not in samples and isinstance(holder, (dict, tuple, list)):
                    samples[key] = repr(holder)[:300]
    for desc, n in sorted(holders.items(), key=lambda kv: -kv[1])[:40]:
        print(f"WHO {n / sockets:6.2f}  {desc}   {samples.get(desc, '')}")


def types_per_socket(before: dict[str, list[int]], after: dict[str, list[int]], sockets: int) -> list[list[Any]]:
    """Object types that grew by at least half an object per socket: [type, objects, bytes] per socket."""
    grown = []
    for name, (count, size) in after.items():
        was = before.get(name, [0, 0])
        if count - was[0] >= sockets / 2:
            grown.append([name, round((count - was[0]) / sockets, 2), round((size - was[1]) / sockets, 1)])
    return sorted(grown, key=lambda row: -row[2])


def per_socket(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, sockets: int) -> dict[str, Any]:
    lines: dict[str, float] = defaultdict(float)
    files: dict[str, float] = defaultdict(float)
    for stat in after.compare_to(before, "traceback"):
        # the frame that allocated, and the outermost frame inside a library or Relay (who asked)
        site = _where(stat.traceback[-1])
        lines[site] += stat.size_diff
        files[site.rsplit(":", 1)[0]] += stat.size_diff
    total = sum(lines.values())

    def top(table: dict[str, float], n: int) -> list[tuple[str, float]]:
        return [(k, round(v / sockets, 1)) for k, v in sorted(table.items(), key=lambda kv: -kv[1])[:n]]

    stacks = [
        {"bytes": round(stat.size_diff / sockets, 1), "stack": [_where(f) for f in stat.traceback]}
        for stat in after.compare_to(before, "traceback")[:25]
    ]
    return {
        "python_bytes_per_socket": round(total / sockets, 1),
        "by_line": top(lines, 30),
        "by_file": top(files, 20),
        "stacks": stacks,
    }


async def measure(sockets: int, stack: Stack) -> dict[str, Any]:
    import uvicorn
    from relay_config import load_settings
    from relay_gateway.bootstrap import build
    from relay_gateway.settings import GatewaySettings
    from relay_gateway.wsprotocol import RelayWebSocketProtocol

    port = free_port()
    env = stack.base_env()
    env.update(GATEWAY_PORT=str(port), REPLICA_ID="mem-0", LOG_LEVEL="WARNING", JWT_SECRET=DEV_JWT_SECRET)
    os.environ.update(env)
    settings = load_settings(GatewaySettings)
    app = build(settings)
    await app.start()
    config = uvicorn.Config(
        app.asgi,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
        ws=RelayWebSocketProtocol,
        ws_ping_interval=None,
        ws_per_message_deflate=settings.ws_permessage_deflate,
        access_log=False,
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    for _ in range(400):
        if server.started:
            break
        await asyncio.sleep(0.05)
    tokens = [mint_token(DEV_JWT_SECRET, user_id=f"u{j}", roles=["agent"], tenant=TENANT) for j in range(sockets)]
    url = f"http://127.0.0.1:{port}"
    # warm up every code path once (first connect imports and caches), then measure from a quiet point
    warm = await NodeClients.start({"urls": [url], "count": 20, "tokens": tokens[:20], "event": "bench"})
    await asyncio.sleep(2)
    await warm.stop()
    await asyncio.sleep(3)
    gc.collect()
    types0 = live_types()
    ids0 = {id(o) for o in gc.get_objects()}
    before = tracemalloc.take_snapshot()
    load = await NodeClients.start({"urls": [url], "count": sockets, "tokens": tokens, "event": "bench"})
    await asyncio.sleep(8)  # presence reports, joins and timers settle
    gc.collect()
    after = tracemalloc.take_snapshot()
    types1 = live_types()
    if os.environ.get("CONN_MEMORY_WHO"):
        who(set(os.environ["CONN_MEMORY_WHO"].split(",")), ids0, sockets)
    await load.stop()
    server.should_exit = True
    await serving
    await app.close()
    result = per_socket(before, after, sockets)
    result.update(types=types_per_socket(types0, types1, sockets), sockets=sockets)
    return result


def write_report(result: dict[str, Any], label: str) -> None:
    REPORTS.mkdir(exist_ok=True)
    path = REPORTS / "conn_memory.json"
    runs = json.loads(path.read_text()) if path.exists() else {}
    runs[label] = result
    path.write_text(json.dumps(runs, indent=1) + "\n")
    lines = [
        "# Memory per idle WebSocket connection, by allocation site\n\n",
        "`python -m bench.conn_memory` (tracemalloc in an in-process gateway; Node clients). Bytes per socket.\n",
    ]
    for name, run in runs.items():
        total, sockets = run["python_bytes_per_socket"], run["sockets"]
        lines.append(f"\n## {name}: {total} B Python per socket ({sockets} sockets)\n\n")
        lines.append("| allocated at | bytes per socket |\n| --- | --- |\n")
        lines += [f"| `{site}` | {size} |\n" for site, size in run["by_line"][:20]]
    (REPORTS / "conn_memory.md").write_text("".join(lines))


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    config = StackConfig(
        drop_topology=True,
        instance=f"bench-mem-{os.getpid()}",
        gateway_ports=[],
        env={"LOG_LEVEL": "WARNING", "JWT_SECRET": DEV_JWT_SECRET},
        log_dir=args.log_dir,
    )
    stack = await asyncio.to_thread(lambda: Stack(config).start())
    try:
        tracemalloc.start(args.frames)
        return await measure(args.sockets, stack)
    finally:
        tracemalloc.stop()
        await asyncio.to_thread(stack.stop)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sockets", type=int, default=300)
    parser.add_argument("--frames", type=int, default=1)
    parser.add_argument("--label", default=time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime()))
    parser.add_argument("--log-dir", default="/tmp/relay-bench-mem-logs")
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    result = asyncio.run(main_async(args))
    for site, size in result["by_line"][:30]:
        print(f"{size:9.1f}  {site}")
    print(json.dumps({k: v for k, v in result.items() if k not in ("by_line", "by_file", "stacks", "types")}))
    for site, size in result["by_file"]:
        print(f"{size:9.1f}  {site}")
    for name, count, size in result["types"]:
        print(f"{size:9.1f}  {count:5.2f} x {name}")
    if args.frames > 1:
        for entry in result["stacks"]:
            print(f"{entry['bytes']:9.1f}  " + " <- ".join(reversed(entry["stack"])))
    write_report(result, args.label)


if __name__ == "__main__":
    main()
