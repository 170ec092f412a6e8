"""The simulated device lab: real OpenSSH servers standing in for devices.

Used by the harness's own tests and by `harness lab up|down|status` for demos.
"""
