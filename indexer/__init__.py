"""scenesearch indexer: movies in, one searchable Qdrant point per shot out.

Stages, one module each: ``inputs`` (find movies, manifest, stable ids) → ``decode`` (PyAV, one
pass, small frames) → ``shots`` (PySceneDetect detectors on those frames) → ``sampling`` (k frames
per shot) → ``encoder`` (OpenCLIP, shared with search) → ``labels`` (MovieCLIP weak labels) →
``thumbnails`` → ``store`` (embedded qdrant-edge or a Qdrant server). ``pipeline`` runs them.
"""

__version__ = "0.1.0"
