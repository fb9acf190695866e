"""The speed benchmarks (``scenesearch bench ...`` and ``python -m scenesearch.eval.bench.<name>``):
indexing, search, frame-vector search, stills, sequence queries, Ray overhead and the embedded
store's ingest profile. Each writes ``report.json`` + ``report.md`` with the machine description."""
