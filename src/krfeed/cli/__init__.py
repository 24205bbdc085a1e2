"""The ``krfeed`` command line (entry point ``krfeed.cli:main``): :mod:`krfeed.cli.app` holds
the app and its error boundary, one module per command group (``decode``, ``stream``,
``record``, ``demo``, ``consume``, ``orders``, ``conditions``, ``sim``, ``web``), the views
beside them; :mod:`krfeed.runner` (a library module: the dashboard uses it too) holds the
run/stop/signal helpers every live command shares.
Library modules never import this package."""

from krfeed.cli.app import app, explain, main

__all__ = ["app", "explain", "main"]
