"""One module per stage kind (``KIND``, ``TRAITS``, ``lower``, ``expand``), discovered by
:mod:`compiler.lower.kinds`."""
