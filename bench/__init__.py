"""Benchmarks that run one workload against Heron and its peers in one run.

`python -m bench --help` lists the options; `bench/README.md` says what each
figure means. Each system runs in its own subprocess (`bench._worker`), so a
crash or a slow peer cannot stall the run.
"""
