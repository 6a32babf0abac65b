"""pytest plugin: run asyncpg's own test suite with pgoxide as the driver under test.

Loaded with ``-p plugin`` (see run.py).  At import time, before any test module is
collected, it makes ``import asyncpg`` mean pgoxide:

* ``asyncpg`` is a module of its own that delegates every attribute to ``pgoxide``
  (it is not pgoxide itself, because asyncpg's ``asyncpg.cluster`` and pgoxide's
  ``pgoxide.cluster`` are different things and the test infrastructure must not touch
  pgoxide's namespace);
* ``asyncpg.exceptions``, ``.types``, ``.pool``, ``.prepared_stmt``, ``.transaction``,
  ``.cursor``, ``.introspection`` are pgoxide's modules of the same name;
* ``asyncpg.connection`` delegates to ``pgoxide.connection`` and adds ``connect``
  (asyncpg defines ``connect`` there; pgoxide in ``pgoxide.establish``);
* ``asyncpg.connect_utils`` and ``asyncpg.protocol.protocol`` are empty placeholders so that
  the test modules importing them can be collected (what the tests read from them is
  asyncpg-internal; those tests are in excluded.py);
* the pure-Python test infrastructure -- ``asyncpg._testbase`` (+ ``fuzzer``),
  ``asyncpg.cluster``, ``asyncpg.serverversion``, ``asyncpg.compat``,
  ``asyncpg._asyncio_compat`` -- is loaded from the asyncpg sdist named by
  ``$ASYNCPG_SDIST_DIR``.

Harness adapter (disabled with ``PGOXIDE_SUITE_STRICT=1``): ``ClusterTestCase.tearDown``
awaits ``pool._maintenance_task``, an asyncpg internal; the adapter's tearDown terminates the
pools without reading it (A3).  Earlier adapters for ``connect(loop=)``, constructing
``Pool`` directly with ``init_size``/``loop``, and a synchronous ``Pool.terminate()`` are
gone: pgoxide accepts all three now.

Results: every test's outcome and failure text are written as JSON lines to
``$PGOXIDE_SUITE_RESULTS`` (run.py aggregates them).
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import types

import pytest

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from excluded import EXCLUDED  # noqa: E402

STRICT = os.environ.get("PGOXIDE_SUITE_STRICT") == "1"
ADAPTERS_USED: dict[str, int] = {
    "A3_maintenance_task": 0,
}


class _Delegating(types.ModuleType):
    """A module whose missing attributes are looked up on ``target``."""

    def __init__(self, name: str, target: types.ModuleType, doc: str = "") -> None:
        super().__init__(name, doc or f"asyncpg shim delegating to {target.__name__}")
        self.__dict__["_shim_target"] = target
        self.__path__ = []  # a package: unknown submodules fail to import, plainly

    def __getattr__(self, attr: str):
        return getattr(self.__dict__["_shim_target"], attr)


def _install() -> None:
    sdist = os.environ.get("ASYNCPG_SDIST_DIR")
    if not sdist or not os.path.isdir(os.path.join(sdist, "asyncpg", "_testbase")):
        raise RuntimeError("set ASYNCPG_SDIST_DIR to an extracted asyncpg 0.32.0 sdist")
    # Forget a real asyncpg if something imported it already.
    for name in [n for n in sys.modules if n == "asyncpg" or n.startswith("asyncpg.")]:
        del sys.modules[name]

    import pgoxide
    import pgoxide.connection
    import pgoxide.cursor
    import pgoxide.exceptions
    import pgoxide.introspection
    import pgoxide.pool
    import pgoxide.prepared_stmt
    import pgoxide.transaction
    import pgoxide.types

    top = _Delegating("asyncpg", pgoxide)
    sys.modules["asyncpg"] = top

    def put(name: str, module: types.ModuleType) -> None:
        sys.modules["asyncpg." + name] = module
        parent = top
        *path, last = name.split(".")
        for p in path:
            parent = getattr(parent, p)
        setattr(parent, last, module)

    for sub in (
        "exceptions",
        "types",
        "pool",
        "prepared_stmt",
        "transaction",
        "cursor",
        "introspection",
    ):
        put(sub, getattr(pgoxide, sub) if hasattr(pgoxide, sub) else sys.modules["pgoxide." + sub])

    connection = _Delegating("asyncpg.connection", pgoxide.connection)
    connection.connect = pgoxide.connect
    put("connection", connection)

    # Placeholders for asyncpg-internal modules: empty on purpose.
    put(
        "connect_utils", types.ModuleType("asyncpg.connect_utils", "placeholder (asyncpg internal)")
    )
    protocol = types.ModuleType("asyncpg.protocol", "placeholder (asyncpg's Cython protocol)")
    protocol.__path__ = []
    put("protocol", protocol)
    proto_mod = types.ModuleType("asyncpg.protocol.protocol", "placeholder")

    def _create_record(mapping, elems):  # asyncpg-private record factory
        raise NotImplementedError(
            "asyncpg.protocol.protocol._create_record: pgoxide has no public Record factory"
        )

    proto_mod._create_record = _create_record
    put("protocol.protocol", proto_mod)

    def load(name: str, relpath: str, package: bool = False) -> types.ModuleType:
        path = os.path.join(sdist, "asyncpg", relpath)
        spec = importlib.util.spec_from_file_location(
            "asyncpg." + name,
            path,
            submodule_search_locations=[os.path.dirname(path)] if package else None,
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        put(name, module)
        spec.loader.exec_module(module)
        return module

    load("_asyncio_compat", "_asyncio_compat.py")
    load("compat", "compat.py")
    load("serverversion", "serverversion.py")
    cluster = load("cluster", "cluster.py")
    tb = load("_testbase", os.path.join("_testbase", "__init__.py"), package=True)

    if not STRICT:
        _adapt(tb, cluster, pgoxide)


def _adapt(tb: types.ModuleType, cluster: types.ModuleType, pgoxide: types.ModuleType) -> None:
    # A3: tearDown reads pool._maintenance_task (asyncpg's own pool internals).
    def tearDown(self):
        for pool in self._pools:
            pool.terminate()
            ADAPTERS_USED["A3_maintenance_task"] += 1
        self._pools = []
        tb.TestCase.tearDown(self)

    tb.ClusterTestCase.tearDown = tearDown


_install()


# -- exclusions --------------------------------------------------------------------------


def _short_id(nodeid: str) -> str:
    """'tests/test_x.py::Class::test' (or with a longer path prefix) -> 'test_x.py::Class::test'."""
    path, _, rest = nodeid.partition("::")
    return os.path.basename(path) + "::" + rest


def pytest_collection_modifyitems(config, items):
    for item in items:
        short = _short_id(item.nodeid)
        reason = EXCLUDED.get(short)
        if reason is None:
            # Whole classes may be excluded with 'test_x.py::Class'.
            reason = EXCLUDED.get(short.rsplit("::", 1)[0])
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason="[excluded] " + reason))


# -- results -----------------------------------------------------------------------------

_results_path = os.environ.get("PGOXIDE_SUITE_RESULTS")


def _write(record: dict) -> None:
    if _results_path:
        with open(_results_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")


def _failure_text(report) -> tuple[str, str]:
    text = str(report.longrepr) if report.longrepr is not None else ""
    crash = getattr(report.longrepr, "reprcrash", None)
    message = crash.message if crash is not None else ""
    if not message:
        lines = [ln for ln in text.strip().splitlines() if ln.strip()]
        message = lines[-1] if lines else ""
    return message, text[-6000:]


def pytest_runtest_logreport(report):
    short = _short_id(report.nodeid)
    if report.when == "call" or (report.when in ("setup", "teardown") and not report.passed):
        if report.passed:
            outcome = "passed"
        elif report.skipped:
            reason = (
                report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
            )
            outcome = "excluded" if "[excluded]" in reason else "skipped"
            _write({"id": short, "outcome": outcome, "when": report.when, "message": reason})
            return
        else:
            outcome = "failed" if report.when == "call" else "error"
        record = {"id": short, "outcome": outcome, "when": report.when}
        if outcome != "passed":
            record["message"], record["text"] = _failure_text(report)
        _write(record)


def pytest_collectreport(report):
    if report.failed:
        message, text = _failure_text(report)
        _write(
            {
                "id": _short_id(report.nodeid)
                if "::" in report.nodeid
                else os.path.basename(report.nodeid),
                "outcome": "collection-error",
                "when": "collect",
                "message": message,
                "text": text,
            }
        )


def pytest_sessionfinish(session, exitstatus):
    _write({"id": "__adapters__", "outcome": "meta", "adapters": ADAPTERS_USED, "strict": STRICT})
