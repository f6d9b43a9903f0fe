"""On-demand benchmarks for issue 5: each figure beside its baseline, measured in one run.

Run `make bench` (everything) or a subset: `python -m bench ingest`,
`python -m bench rebuild --events 100000`. Never part of `make test`.
"""
