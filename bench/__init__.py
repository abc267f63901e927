"""Benchmarks of the event library against real PostgreSQL and a real Kafka-protocol broker.

`make bench` (or `.venv/bin/python -m bench`) measures, in one process: append throughput
against a plain-INSERT baseline, commit-to-projection latency through the outbox relay and
a projection runner, projection rebuild rate and `log verify` rate. `--write-doc` rewrites
docs/performance.md with the figures; `--quick` is a short smoke run. Not part of the tests.
"""
