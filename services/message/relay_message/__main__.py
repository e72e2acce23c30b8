import asyncio

from relay_message.bootstrap import run

if __name__ == "__main__":
    asyncio.run(run())
