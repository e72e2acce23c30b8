import asyncio

from relay_presence.bootstrap import run

if __name__ == "__main__":
    asyncio.run(run())
