"""`task dev`: check RabbitMQ and Redis, start the embedded MongoDB when needed, the services and
the gateway replicas, print where to connect, and stop everything on Ctrl-C."""

from __future__ import annotations

import asyncio
import signal
import sys
import time

from pydantic import Field
from relay_config import DEV_JWT_SECRET, RelaySettings, load_settings

from relay_devstack.preflight import check
from relay_devstack.stack import Stack, StackConfig, available_services


class DevSettings(RelaySettings):
    gateway_ports: str = "3000,3001"
    dev_services: str = ""  # empty: every service in this checkout
    service_instances: int = Field(default=1, ge=1, le=16)  # processes of each service
    mongo_url: str = ""  # empty: embedded SecantusDB
    dev_data_dir: str = ".relay-dev/mongo"


def main() -> None:
    settings = load_settings(DevSettings)
    problems = asyncio.run(check(settings.amqp_url, settings.redis_url))
    if problems:
        for problem in problems:
            print(f"relay-dev: {problem}", file=sys.stderr)
        sys.exit(2)
    ports = [int(p) for p in settings.gateway_ports.split(",") if p.strip()]
    config = StackConfig(
        instance=settings.relay_instance,
        gateway_ports=ports,
        services=tuple(s.strip() for s in settings.dev_services.split(",") if s.strip()) or available_services(),
        service_instances=settings.service_instances,
        amqp_url=settings.amqp_url,
        redis_url=settings.redis_url,
        mongo_url=settings.mongo_url or None,
        mongo_data_dir=settings.dev_data_dir,
    )
    stack = Stack(config)
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    stack.start()
    secret_note = (
        " (dev default secret: set JWT_SECRET for anything shared)" if settings.jwt_secret == DEV_JWT_SECRET else ""
    )
    print(
        "\nRelay is up.\n"
        + "".join(
            f"  gateway replica {i}: {url}   (Socket.IO path /socket.io/)\n" for i, url in enumerate(stack.gateway_urls)
        )
        + f"  MongoDB: {stack.mongo_url}{' (embedded SecantusDB)' if not settings.mongo_url else ''}\n"
        + "".join(f"  {name} ops: http://127.0.0.1:{port}/metrics\n" for name, port in stack.ops_ports.items())
        + f"  in a browser: {stack.gateway_urls[0]}/app/ (chat: a visitor, or agent@relay.dev / demo1234),\n"
        + f"    {stack.gateway_urls[0]}/app/kitchen (kitchen@restaurante.com / password123),\n"
        + f"    {stack.gateway_urls[0]}/app/ops (admin@relay.dev / demo1234)\n"
        + f"  get a token{secret_note}:\n"
        + "    .venv/bin/relay-token --demo agent --tenant acme\n"
        + "    .venv/bin/relay-token --demo visitor --user visitor-1 --tenant acme\n"
        + "Ctrl-C stops everything.\n",
        flush=True,
    )
    try:
        while not stopping:
            for proc in stack.procs.values():
                if proc.popen.poll() is not None:
                    print(f"relay-dev: {proc.name} exited with {proc.popen.returncode}; stopping", file=sys.stderr)
                    stopping = True
                    break
            time.sleep(0.5)
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
