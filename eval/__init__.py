"""Evaluation of an index on the user's own movies and labels: genre linear probes on the stored
features, scene-recognition mAP against labelled shots, shot-boundary F1 and text-retrieval
metrics, written as tables and plots to a report folder. The library reads features back from a
:class:`indexer.store.ShotStore`; eval/run.py runs each evaluation end to end and
``ui/cli_eval.py`` is the command-line shell over it; eval/bench/ holds the speed benchmarks."""
