"""Codec plugins: ``classical``, ``learned`` and ``compnet_png`` (entry points), and ``trained``, what the
codecs of trained models share."""
