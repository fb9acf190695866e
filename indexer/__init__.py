"""scenesearch indexer: movies in, one searchable Qdrant point per shot out.

Stages, one module each: ``inputs`` (find movies, manifest, stable ids) → ``decode`` (PyAV, one
pass, small frames) → ``shots`` (PySceneDetect detectors on those frames) → ``sampling`` (k frames
per shot; ``sampling.iter_movie`` is the frame source that drives decode → shots → sampling) →
``encoder`` (OpenCLIP, shared with search) → ``labels`` (MovieCLIP weak labels) → ``points``
(one store point per shot) → ``thumbnails`` (which frame, and the JPEGs) → ``store`` (embedded
qdrant-edge or a Qdrant server). ``pipeline`` runs them (the embed loop), with ``workers`` (the
decode pool), ``summary`` (run records) and ``catalog`` (what an index holds: meta, locks, info,
lookup, removal; no model needed).
"""

__version__ = "0.1.0"
