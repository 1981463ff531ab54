"""A test double of Autodesk Flame's ``flame`` Python module, for comfyfarm's hook tests.

The module itself is tests/doubles/flame/site/flame, importable as ``import flame`` only while a
:class:`~tests.doubles.flame.harness.FlameSession` is open (as Flame's own module exists only inside Flame).
Built from shared/reference/flame.md; product code never imports this package. Tests use
:mod:`tests.doubles.flame.harness` and the fixtures in :mod:`tests.doubles.flame.fixtures`
(``flame_session``, ``flame_session_factory``); the contract and every guess are in harness.py's docstring.
"""
