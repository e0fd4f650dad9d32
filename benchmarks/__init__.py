"""gradkit benchmark suite.

Run from the repository root::

    python -m benchmarks                 # every workload x implementation, CPU
    python -m benchmarks --quick         # smoke test: fewer repeats
    python -m benchmarks --device cuda --only W2,W4 --impl gradkit,torch,numpy
    python -m benchmarks --json results.json

See benchmarks/README.md for what each workload measures and how.
"""
