"""Presence storm: N agent sockets of one tenant connect over two gateway replicas, each joins one chat,
while another user of the tenant pings with acks.

Reports the storm's duration (first connect → last join ack), the other user's ack p50/p99 during it,
the presence events the clients received (deliveries) and the CPU the gateways and the presence service
spent per transition. Writes bench/reports/presence.json (+ a line in presence.md). Measured, never
asserted. Loopback only, bounded in count and time. The load is Node socket.io-client (bench/node,
`task install:bench`), which costs far less CPU than the Python server it loads.

    .venv/bin/python -m bench.presence_storm --sockets 200 1000 --label before [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from relay_auth import mint_token
from relay_config import DEV_JWT_SECRET
from relay_devstack import Stack, StackConfig
from relay_devstack.stack import free_port
from relay_sdk import RelayClient

from bench.profile_summary import summarize

ROOT = Path(__file__).parent
REPORTS = ROOT / "reports"
NODE_DIR = ROOT / "node"
TENANT = "storm"
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def runqueue_wait_seconds(pid: int) -> float:
    """Time the process's threads spent runnable but waiting for a CPU (/proc/<pid>/schedstat, main thread)."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9


def pids(stack: Stack) -> dict[str, int]:
    return {name: proc.popen.pid for name, proc in stack.procs.items() if name != "mongo"}


def gateway_metrics(stack: Stack) -> list[list[str]]:
    """Each gateway's /metrics, as lines."""
    scraped = []
    for url in stack.gateway_urls:
        with urllib.request.urlopen(f"{url}/metrics", timeout=10) as resp:
            scraped.append(resp.read().decode().splitlines())
    return scraped


def loop_lag_buckets(scraped: list[list[str]]) -> list[dict[str, float]]:
    """Each gateway's cumulative loop-lag histogram (relay_event_loop_lag_seconds), bucket bound -> count,
    and its full collections' count and seconds (relay_gc_pause_seconds, generation 2) as `gc2_n`, `gc2_s`."""
    pattern = re.compile(r'^relay_event_loop_lag_seconds_bucket\{le="([^"]+)"\} ([0-9.e+-]+)$')
    gc2 = re.compile(r'^relay_gc_pause_seconds_(count|sum)\{generation="2"\} ([0-9.e+-]+)$')
    out = []
    for lines in scraped:
        buckets = {m[1]: float(m[2]) for line in lines if (m := pattern.match(line))}
        for line in lines:
            if m := gc2.match(line):
                buckets["gc2_n" if m[1] == "count" else "gc2_s"] = float(m[2])
        out.append(buckets)
    return out


def loop_lag_during(before: list[dict[str, float]], after: list[dict[str, float]]) -> list[dict[str, Any]]:
    """Per gateway over the storm: loop probe ticks seen (10 ms apart while late), and how many fired >= 10 / 25 /
    50 / 100 / 250 ms late."""
    result = []
    for b, a in zip(before, after, strict=True):
        ticks = a.get("+Inf", 0) - b.get("+Inf", 0)

        def late(bound: str, a: dict[str, float] = a, b: dict[str, float] = b, ticks: float = ticks) -> int:
            return int(ticks - (a.get(bound, 0) - b.get(bound, 0)))

        result.append(
            {
                "ticks": int(ticks),
                **{f"over_{ms}ms": late(str(ms / 1000)) for ms in (10, 25, 50, 100, 250)},
                "full_gcs": int(a.get("gc2_n", 0) - b.get("gc2_n", 0)),
                "full_gc_ms": round(1000 * (a.get("gc2_s", 0) - b.get("gc2_s", 0)), 1),
            }
        )
    return result


def command_round_trips(scraped: list[list[str]]) -> dict[str, dict[str, float]]:
    """Per command type the gateways wait for: how many, and their mean round trip (ms), summed over replicas."""
    totals: dict[str, list[float]] = {}
    pattern = re.compile(r'^relay_gateway_command_seconds_(sum|count)\{[^}]*type="([^"]+)"[^}]*\} ([0-9.e+-]+)$')
    for lines in scraped:
        for line in lines:
            if match := pattern.match(line):
                entry = totals.setdefault(match[2], [0.0, 0.0])
                entry[0 if match[1] == "sum" else 1] += float(match[3])
    return {t: {"count": int(n), "mean_ms": round(1000 * s / n, 1)} for t, (s, n) in totals.items() if n}


def token(user: str, role: str) -> str:
    return mint_token(DEV_JWT_SECRET, user_id=user, roles=[role], tenant=TENANT, ttl_seconds=3600)


async def open_chat(stack: Stack, run: str) -> str:
    async with RelayClient(stack.gateway_urls[0], token=token(f"visitor-{run}", "visitor")) as visitor:
        return str((await visitor.post("/v2/chats", {"subject": "storm"}))["chatId"])


def start_profilers(stack: Stack, names: list[str], out: Path) -> list[tuple[str, subprocess.Popen[bytes], Path]]:
    py_spy = Path(sys.executable).parent / "py-spy"
    running = []
    for name in names:
        path = out / f"{name}.txt"
        proc = subprocess.Popen(
            [
                str(py_spy),
                "record",
                "--nonblocking",
                "-r",
                os.environ.get("STORM_PROFILE_RATE", "50"),
                "-f",
                "raw",
                "-o",
                str(path),
                "-p",
                str(stack.procs[name].popen.pid),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        running.append((name, proc, path))
    time.sleep(1.0)  # py-spy attaches
    return running


def stop_profilers(running: list[tuple[str, subprocess.Popen[bytes], Path]]) -> dict[str, Any]:
    summaries = {}
    for name, proc, path in running:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        if path.exists():
            summaries[name] = summarize(path.read_text())
            keep = os.environ.get("STORM_PROFILE_DIR")  # keep the raw profiles (py-spy --format raw) there
            if keep:
                Path(keep).mkdir(parents=True, exist_ok=True)
                shutil.copy(path, Path(keep) / path.name)
    return summaries


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


class Pinger:
    """The other user: `storm.mjs plan pinger`, a Node process of its own at normal priority."""

    def __init__(self, plan_path: Path) -> None:
        self.popen = subprocess.Popen(
            ["node", str(NODE_DIR / "storm.mjs"), str(plan_path), "pinger"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.expect("ready")

    def expect(self, key: str) -> dict[str, Any]:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            message: dict[str, Any] = json.loads(line)
            if key in message:
                return message
        raise RuntimeError(f"the pinger ended before saying {key!r}")

    def say(self, line: str, key: str) -> dict[str, Any]:
        assert self.popen.stdin is not None
        self.popen.stdin.write(line + "\n")
        self.popen.stdin.flush()
        return self.expect(key)

    def close(self) -> dict[str, Any]:
        said = self.say("close", "received")
        self.popen.wait(30)
        return said


def storm(stack: Stack, sockets: int, *, profile: bool, dialect: str | None, hello: str | None) -> dict[str, Any]:
    run = uuid.uuid4().hex[:6]
    chat_id = asyncio.run(open_chat(stack, run))
    plan = {
        "urls": stack.gateway_urls,
        "tokens": [token(f"agent-{run}-{i}", "agent") for i in range(sockets)],
        "chatId": chat_id,
        "pingerToken": token(f"pinger-{run}", "agent"),
        "pingEveryMs": 20,
        "timeoutMs": 300_000,
        "settleMs": 1500,
        "join": "chat:join",
        "dialect": dialect,
        "hello": hello,
    }
    with tempfile.TemporaryDirectory(prefix="relay-storm-") as tmp:
        plan_path = Path(tmp) / "plan.json"
        plan_path.write_text(json.dumps(plan))
        watched = pids(stack)
        trips_before = command_round_trips(gateway_metrics(stack))
        profilers = start_profilers(stack, ["gateway-0", *stack.instances("presence")], Path(tmp)) if profile else []
        lag_before = loop_lag_buckets(gateway_metrics(stack))
        cpu_before = {name: cpu_seconds(pid) for name, pid in watched.items()}
        waited_before = {name: runqueue_wait_seconds(pid) for name, pid in watched.items()}
        pinger = Pinger(plan_path)
        try:
            time.sleep(0.3)
            wall = time.perf_counter()
            node = subprocess.run(
                ["node", str(NODE_DIR / "storm.mjs"), str(plan_path)], capture_output=True, text=True, timeout=900
            )
            wall = time.perf_counter() - wall
            stopped = pinger.say("stop", "acks")
            acks = stopped["acks"]
            pinger_saw = pinger.close()
        finally:
            if pinger.popen.poll() is None:
                pinger.popen.kill()
        cpu = {name: round(cpu_seconds(pid) - cpu_before[name], 2) for name, pid in watched.items()}
        waited = {name: round(runqueue_wait_seconds(pid) - waited_before[name], 2) for name, pid in watched.items()}
        hot = stop_profilers(profilers)
        scraped = gateway_metrics(stack)  # one scrape after the storm serves both
        trips = command_round_trips(scraped)
        lag = loop_lag_during(lag_before, loop_lag_buckets(scraped))
    if node.returncode != 0:
        raise RuntimeError(f"storm load failed: {node.stderr[-2000:]}")
    seen = json.loads(node.stdout.strip().splitlines()[-1])
    for event, n in pinger_saw["received"].items():
        seen["received"][event] += n
    if pinger_saw["lastDeliveryWall"]:
        seen["lastPresenceMs"] = max(seen["lastPresenceMs"], pinger_saw["lastDeliveryWall"] - seen["startedWall"])
    storm_acks = [(at, rtt) for at, rtt in acks if seen["startedWall"] <= at <= seen["startedWall"] + seen["stormMs"]]
    rtts = [rtt for _, rtt in storm_acks]
    seen |= {
        "pings": len(rtts),
        "ackP50Ms": percentile(rtts, 0.5),
        "ackP99Ms": percentile(rtts, 0.99),
        "ackMaxMs": percentile(rtts, 1),
        "slowPings": [[at, round(rtt)] for at, rtt in storm_acks if rtt > 50],
    }
    deliveries = sum(seen["received"].values())
    transitions = sockets  # one offline → online per agent (the pinger was online before)
    presence_cpu = sum(v for name, v in cpu.items() if name.startswith(("presence", "gateway")))
    return {
        "sockets": sockets,
        "replicas": len(stack.gateway_urls),
        "dialect_hint": dialect,
        "hello_event": hello,
        "joined": seen["joined"],
        "failed": seen["failed"],
        "first_error": seen["firstError"],
        "client_states": seen["clientStates"],
        "storm_s": round(seen["stormMs"] / 1000, 2),
        "last_presence_s": round(seen["lastPresenceMs"] / 1000, 2),
        "other_user_pings": seen["pings"],
        "other_user_ack_p50_ms": seen["ackP50Ms"],
        "other_user_ack_p99_ms": seen["ackP99Ms"],
        "other_user_ack_max_ms": seen["ackMaxMs"],
        "other_user_slow_acks": seen["slowPings"],  # [wall-clock ms, rtt ms] of acks over 50 ms
        # the same, sent how long after the storm's first connect (ms)
        "other_user_slow_acks_after_start": [[at - seen["startedWall"], rtt] for at, rtt in seen["slowPings"]],
        "client_loop_delay_p99_ms": seen["clientLoopDelayP99Ms"],
        "client_loop_delay_max_ms": seen["clientLoopDelayMaxMs"],
        # the other user's process (from before the storm to its end): its own waits for a core
        "pinger_loop_delay_p99_ms": stopped.get("loopDelayP99Ms"),
        "pinger_loop_delay_max_ms": stopped.get("loopDelayMaxMs"),
        "gateway_loop_lag": lag,  # per replica: probe ticks over the storm (10 ms apart while late), how many late
        "deliveries": deliveries,
        "deliveries_by_event": seen["received"],
        "deliveries_per_transition": round(deliveries / transitions, 1),
        "cpu_s": cpu,
        "runqueue_wait_s": waited,  # runnable but waiting for one of the 2 cores (the main thread)
        "cpu_ms_per_transition": round(presence_cpu * 1000 / transitions, 2),
        "cpu_ms_per_transition_note": "gateways + presence service, whole storm (handshakes and joins included)",
        "wall_s": round(wall, 1),
        "gateway_waits": {
            t: {
                "count": v["count"] - trips_before.get(t, {}).get("count", 0),
                "mean_ms_since_start": v["mean_ms"],
            }
            for t, v in trips.items()
        },
        "profile": hot,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sockets", type=int, nargs="+", default=[200, 1000])
    parser.add_argument("--label", default="run", help="e.g. before / after: the key the runs are stored under")
    parser.add_argument("--profile", action="store_true", help="py-spy the gateway-0 and presence processes")
    parser.add_argument("--dialect", default=None, help="handshake hint every storm socket sends (auth.dialect)")
    parser.add_argument("--hello", default=None, help="an event each storm socket sends first, e.g. get-active-users")
    parser.add_argument("--amqp-url", default=StackConfig.amqp_url, help="the broker the stack uses")
    args = parser.parse_args()
    if not (NODE_DIR / "node_modules" / "socket.io-client").exists():
        sys.exit("the Node load generator is not installed: task install:bench")
    config = StackConfig(
        drop_topology=True,
        instance=f"bench-{uuid.uuid4().hex[:6]}",
        amqp_url=args.amqp_url,
        gateway_ports=[free_port(), free_port()],
        env={"LOG_LEVEL": "WARNING", "JWT_SECRET": DEV_JWT_SECRET, "RATE_LIMITS": "join=off,rest_write=off"},
        log_dir=str(REPORTS / "logs"),
    )
    runs = []
    with Stack(config) as stack:
        for n in args.sockets:
            result = storm(stack, n, profile=args.profile, dialect=args.dialect, hello=args.hello)
            result["when"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            runs.append(result)
            print(json.dumps({k: v for k, v in result.items() if k != "profile"}, indent=2), flush=True)
            time.sleep(5)  # let the previous storm's sockets be announced offline before the next one
    REPORTS.mkdir(exist_ok=True)
    path = REPORTS / "presence.json"
    stored = json.loads(path.read_text()) if path.exists() else {}
    stored[args.label] = runs
    path.write_text(json.dumps(stored, indent=2) + "\n")
    with (REPORTS / "presence.md").open("a") as md:
        for r in runs:
            lag_text = "; ".join(
                f"{g['over_25ms']}/{g['over_50ms']}/{g['over_100ms']} ({g['full_gcs']} full GCs, {g['full_gc_ms']} ms)"
                for g in r["gateway_loop_lag"]
            )
            md.write(
                f"- {r['when']} [{args.label}] {r['sockets']} agent sockets / {r['replicas']} replicas"
                f"{' hello=' + str(r['hello_event']) if r['hello_event'] else ''}: storm {r['storm_s']} s "
                f"(last presence {r['last_presence_s']} s), other user's ack p50 {r['other_user_ack_p50_ms']} ms / "
                f"p99 {r['other_user_ack_p99_ms']} ms, {r['deliveries']} deliveries "
                f"({r['deliveries_per_transition']}/transition), {r['cpu_ms_per_transition']} ms CPU/transition, "
                f"failed {r['failed']}, gateway loop ticks >= 25/50/100 ms late "
                f"{lag_text}\n"
            )


if __name__ == "__main__":
    main()
