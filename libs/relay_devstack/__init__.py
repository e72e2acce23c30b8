"""Runs a whole Relay stack on this machine (task dev, e2e tests, benchmarks).

The only place that starts SecantusDB (GPL-2.0, a dev/test extra): when MONGO_URL is unset it
runs `secantusd-py` as a child process. Service code never imports it.
"""

from relay_devstack.stack import Stack, StackConfig

__all__ = ["Stack", "StackConfig"]
