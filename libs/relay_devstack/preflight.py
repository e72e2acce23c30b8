"""Check that RabbitMQ and Redis answer before starting anything, with a message that says how to fix it."""

from __future__ import annotations

import asyncio

import aio_pika
import relay_redis

HOW_TO_START = {
    "RabbitMQ": "start it with: rabbitmq-server -detached   (or set AMQP_URL)",
    "Redis": (
        'start it with: redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no'
        "   (or set REDIS_URL)"
    ),
}


async def check(amqp_url: str, redis_url: str) -> list[str]:
    problems: list[str] = []
    try:
        connection = await asyncio.wait_for(aio_pika.connect(amqp_url.split(",")[0].strip()), 5)
        await connection.close()
    except Exception as exc:
        problems.append(
            f"RabbitMQ at {amqp_url} does not answer ({type(exc).__name__}: {exc}); {HOW_TO_START['RabbitMQ']}"
        )
    redis = relay_redis.connect(redis_url)
    try:
        await asyncio.wait_for(redis.ping(), 5)
    except Exception as exc:
        problems.append(f"Redis at {redis_url} does not answer ({type(exc).__name__}: {exc}); {HOW_TO_START['Redis']}")
    finally:
        await redis.aclose()
    return problems
