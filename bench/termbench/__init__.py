"""Helpers for bench/bench_terminal.py: terminal clients, workloads, server processes, reports."""
