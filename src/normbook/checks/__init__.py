"""Runnable checks of normbook's layers against torch, e.g. ``python -m normbook.checks.sync_batchnorm``.

Each module here is a small program with a ``main()`` that prints what it compared and
ends with a ``PASS`` or ``FAIL`` line (exit status 0 or 1). They live inside the package so
that an installed normbook (e.g. on Colab) can run them.
"""
