"""A test double of the Deadline 10 Web Service (REST API) for comfyfarm's tests.

A real HTTP server on 127.0.0.1 in a thread of the test process, over an in-process job store that
emulated Workers can also drive. Built from shared/reference/deadline.md; product code never imports it,
and it imports no product code. Tests use :mod:`tests.doubles.deadline.harness` (``start_fake_deadline``)
and the pytest fixtures in :mod:`tests.doubles.deadline.fixtures`; the contract, and every place where the
double had to guess, is written in harness.py's module docstring.
"""
