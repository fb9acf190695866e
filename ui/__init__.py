"""User-facing shells: the ``scenesearch`` command line (``ui.cli``) and the Gradio web app
(``ui.app``). They parse arguments, build config and call the libraries; no logic of their own."""
