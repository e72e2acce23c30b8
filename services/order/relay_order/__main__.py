import asyncio

from relay_order.bootstrap import run

if __name__ == "__main__":
    asyncio.run(run())
