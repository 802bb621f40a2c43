"""The web page of ``odevideo serve`` (optional extra ``odevideo[web]``): :mod:`service` does the work,
:mod:`app` serves it."""
