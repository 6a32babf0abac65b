"""The exception hierarchy: SQLSTATE mapping, fields, client-side construction, asyncpg parity."""

from __future__ import annotations

import importlib.util
import pickle
import re
import sys
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

import pgoxide.exceptions as exc
import pytest

pytestmark = pytest.mark.unit

REPO_ROOT = Path(__file__).resolve().parents[2]

# Every protocol field code with a distinct value, and the attribute it must land on.
ALL_FIELDS: dict[str, tuple[str, str]] = {
    "S": ("severity", "FEHLER"),
    "V": ("severity_en", "ERROR"),
    "C": ("sqlstate", "23505"),
    "M": ("message", 'duplicate key value violates unique constraint "t_pkey"'),
    "D": ("detail", "Key (id)=(1) already exists."),
    "H": ("hint", "Use another id."),
    "P": ("position", "15"),
    "p": ("internal_position", "3"),
    "q": ("internal_query", "SELECT 1"),
    "W": ("context", "PL/pgSQL function f() line 3 at SQL statement"),
    "s": ("schema_name", "public"),
    "t": ("table_name", "t"),
    "c": ("column_name", "id"),
    "d": ("data_type_name", "int4"),
    "n": ("constraint_name", "t_pkey"),
    "F": ("server_source_filename", "nbtinsert.c"),
    "L": ("server_source_line", "664"),
    "R": ("server_source_function", "_bt_check_unique"),
}


def error(code: str, message: str = "boom", **more: str) -> exc.PostgresError:
    return exc.PostgresError.from_fields(
        {"S": "ERROR", "V": "ERROR", "C": code, "M": message, **more}
    )


# --- from_fields: choosing the class ---------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        ("23505", exc.UniqueViolationError),
        ("42P01", exc.UndefinedTableError),
        ("40P01", exc.DeadlockDetectedError),
        ("57014", exc.QueryCanceledError),
        ("08003", exc.ConnectionDoesNotExistError),
        ("XX001", exc.DataCorruptedError),
    ],
)
def test_specific_code_picks_its_class(code: str, cls: type[exc.PostgresError]) -> None:
    err = error(code)
    assert type(err) is cls
    assert err.sqlstate == code == cls.sqlstate


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        ("23000", exc.IntegrityConstraintViolationError),
        ("22000", exc.DataError),
        ("42000", exc.SyntaxOrAccessError),
        ("08000", exc.PostgresConnectionError),
        ("XX000", exc.InternalServerError),
    ],
)
def test_class_level_code_picks_class_level_class(code: str, cls: type[exc.PostgresError]) -> None:
    assert type(error(code)) is cls
    assert cls.__bases__ == (exc.PostgresError,)


def test_specific_class_subclasses_its_class_level_class() -> None:
    assert exc.UniqueViolationError.__bases__ == (exc.IntegrityConstraintViolationError,)
    assert exc.DivisionByZeroError.__bases__ == (exc.DataError,)
    assert issubclass(exc.UniqueViolationError, exc.PostgresError)


def test_unknown_code_in_known_class_falls_back_to_class_level_class() -> None:
    err = error("23P99")
    assert type(err) is exc.IntegrityConstraintViolationError
    assert err.sqlstate == "23P99"  # the code the server sent, not the class's


@pytest.mark.parametrize("fields", [{"C": "QQ123", "M": "x"}, {"M": "x"}, {"C": "", "M": "x"}])
def test_unknown_class_or_missing_code_gives_unknown_error(fields: dict[str, str]) -> None:
    err = exc.PostgresError.from_fields(fields)
    assert type(err) is exc.UnknownPostgresError
    assert isinstance(err, exc.FatalPostgresError)
    assert str(err) == "x"


def test_non_error_code_in_error_response_still_gives_an_error() -> None:
    # RAISE EXCEPTION ... USING ERRCODE = '01000' is possible; the result must be raisable
    # as a PostgresError.
    assert type(error("01000")) is exc.UnknownPostgresError


def test_from_fields_ignores_the_class_it_is_called_on() -> None:
    err = exc.DataError.from_fields({"C": "23505", "M": "x"})
    assert type(err) is exc.UniqueViolationError


def test_fatal_severity_keeps_the_sqlstate_class() -> None:
    # asyncpg does not mix FatalPostgresError in for FATAL/PANIC; the severity says it.
    err = exc.PostgresError.from_fields(
        {
            "S": "FATAL",
            "V": "FATAL",
            "C": "28P01",
            "M": 'password authentication failed for user "u"',
        }
    )
    assert type(err) is exc.InvalidPasswordError
    assert not isinstance(err, exc.FatalPostgresError)
    assert err.severity == err.severity_en == "FATAL"
    panic = exc.PostgresError.from_fields({"S": "PANIC", "V": "PANIC", "C": "XX000", "M": "x"})
    assert type(panic) is exc.InternalServerError
    assert panic.severity_en == "PANIC"


def test_invalid_cached_statement() -> None:
    err = error(
        "0A000",
        "cached plan must not change result type",
        R="RevalidateCachedQuery",
    )
    assert type(err) is exc.InvalidCachedStatementError
    assert isinstance(err, exc.FeatureNotSupportedError)
    assert str(err).startswith("cached statement plan is invalid")
    assert err.message == "cached plan must not change result type"
    assert type(error("0A000", R="something_else")) is exc.FeatureNotSupportedError


# --- fields -----------------------------------------------------------------------------------


def test_every_field_lands_on_its_attribute() -> None:
    fields = {code: value for code, (_, value) in ALL_FIELDS.items()}
    err = exc.PostgresError.from_fields(fields, query="INSERT INTO t VALUES (1)")
    for attribute, value in ALL_FIELDS.values():
        assert getattr(err, attribute) == value, attribute
    assert err.as_dict() == dict(ALL_FIELDS.values())
    assert list(err.as_dict()) == [attribute for attribute, _ in ALL_FIELDS.values()]
    assert err.query == "INSERT INTO t VALUES (1)"


def test_absent_fields_are_none_and_left_out_of_as_dict() -> None:
    err = error("42601", "syntax error")
    assert err.detail is None
    assert err.hint is None
    assert err.position is None
    assert err.query is None
    assert err.as_dict() == {
        "severity": "ERROR",
        "severity_en": "ERROR",
        "sqlstate": "42601",
        "message": "syntax error",
    }


def test_unknown_field_codes_are_kept_in_as_dict() -> None:
    err = exc.PostgresError.from_fields({"C": "42601", "M": "x", "Z": "future", "?": "odd"})
    assert type(err) is exc.PostgresSyntaxError
    assert err.extra_fields == {"Z": "future", "?": "odd"}
    assert err.as_dict() == {"sqlstate": "42601", "message": "x", "Z": "future", "?": "odd"}
    assert error("42601").extra_fields == {}


# --- str / repr -------------------------------------------------------------------------------


def test_str_is_message_with_detail_and_hint_lines() -> None:
    assert str(error("42601", "syntax error")) == "syntax error"
    err = error("23505", "dup", D="Key (id)=(1) already exists.", H="Try again.")
    assert str(err) == "dup\nDETAIL:  Key (id)=(1) already exists.\nHINT:  Try again."
    assert repr(err) == "UniqueViolationError('dup')"


def test_tracebacks_name_the_public_module() -> None:
    assert exc.UniqueViolationError.__module__ == "pgoxide.exceptions"
    assert exc.PostgresWarning.__module__ == "pgoxide.exceptions"


# --- client-side construction -------------------------------------------------------------


@pytest.mark.parametrize(
    "cls",
    [
        exc.DataError,
        exc.ConnectionDoesNotExistError,
        exc.UniqueViolationError,
        exc.PostgresError,
        exc.UnknownPostgresError,
        exc.InvalidCachedStatementError,
    ],
)
def test_client_side_construction_with_a_message(cls: type[exc.PostgresError]) -> None:
    text = "invalid input for query argument $1: 'x' (an int is required)"
    err = cls(text)
    assert err.message == text
    assert str(err) == text
    assert err.args == (text,)
    assert err.sqlstate == cls.sqlstate
    assert err.detail is None
    assert err.severity is None
    assert err.as_dict() == ({"sqlstate": cls.sqlstate} if cls.sqlstate else {}) | {"message": text}


def test_client_side_construction_with_fields() -> None:
    err = exc.DataError("bad value", detail="expected int, got str", hint="cast it")
    assert err.sqlstate == "22000"
    assert str(err) == "bad value\nDETAIL:  expected int, got str\nHINT:  cast it"
    assert exc.DataError().message is None
    assert str(exc.DataError()) == ""
    assert str(exc.DataError(message="only by keyword")) == "only by keyword"
    with pytest.raises(TypeError, match="nonsense"):
        exc.DataError("x", nonsense="y")


def test_client_side_error_can_be_raised_and_caught_by_class() -> None:
    with pytest.raises(exc.DataError, match=r"argument \$1"):
        raise exc.DataError("invalid input for query argument $1: x")
    with pytest.raises(exc.PostgresConnectionError):
        raise exc.ConnectionDoesNotExistError("connection was closed in the middle of operation")


# --- log messages (NoticeResponse) ----------------------------------------------------------


def test_notice_without_specific_class_is_a_log_message() -> None:
    msg = exc.PostgresLogMessage.from_fields(
        {"S": "NOTICE", "V": "NOTICE", "C": "00000", "M": "hello"}
    )
    assert type(msg) is exc.PostgresLogMessage
    assert not isinstance(msg, BaseException)
    assert str(msg) == "PostgresLogMessage: hello"
    assert repr(msg) == "PostgresLogMessage('hello')"
    assert msg.severity == "NOTICE"
    with pytest.raises(TypeError, match="immutable"):
        msg.message = "changed"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("fields", "cls"),
    [
        ({"S": "WARNING", "V": "WARNING", "C": "01000", "M": "w"}, "PostgresWarning"),
        ({"S": "WARNING", "V": "WARNING", "C": "01P01", "M": "w"}, "DeprecatedFeature"),
        ({"S": "WARNING", "V": "WARNING", "C": "01P99", "M": "w"}, "PostgresWarning"),
        ({"S": "WARNING", "V": "WARNING", "C": "QQ000", "M": "w"}, "PostgresWarning"),
        ({"S": "WARNUNG", "V": "WARNING", "C": "00000", "M": "w"}, "PostgresWarning"),
        ({"S": "NOTICE", "V": "NOTICE", "C": "02000", "M": "w"}, "NoData"),
        (
            {"S": "NOTICE", "V": "NOTICE", "C": "42P07", "M": "exists, skipping"},
            "DuplicateTableError",
        ),
        ({"S": "LOG", "V": "LOG", "C": "QQ000", "M": "w"}, "PostgresLogMessage"),
    ],
)
def test_log_message_class(fields: dict[str, str], cls: str) -> None:
    msg = exc.PostgresLogMessage.from_fields(fields)
    assert type(msg) is getattr(exc, cls)
    assert msg.message == fields["M"]
    assert msg.as_dict()["sqlstate"] == fields["C"]


def test_warning_classes() -> None:
    assert exc.PostgresWarning.__bases__ == (exc.PostgresLogMessage, Warning)
    assert exc.NoData.__bases__ == (exc.PostgresWarning,)
    assert exc.NoAdditionalDynamicResultSetsReturned.__bases__ == (exc.NoData,)
    warning = exc.PostgresLogMessage.from_fields({"S": "WARNING", "C": "01000", "M": "careful"})
    assert str(warning) == "PostgresWarning: careful"
    assert repr(warning) == "PostgresWarning('careful')"
    with pytest.warns(exc.PostgresWarning, match="careful"):
        warnings.warn(warning, stacklevel=1)


# --- pickling ---------------------------------------------------------------------------------


def roundtrip(obj: Any) -> Any:
    return pickle.loads(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))


def test_pickle_server_error() -> None:
    fields = {code: value for code, (_, value) in ALL_FIELDS.items()} | {"Z": "future"}
    err = exc.PostgresError.from_fields(fields, query="INSERT")
    copy = roundtrip(err)
    assert type(copy) is exc.UniqueViolationError
    assert copy.as_dict() == err.as_dict()
    assert copy.query == "INSERT"
    assert str(copy) == str(err)
    assert copy.args == err.args


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_pickle_every_protocol(protocol: int) -> None:
    for obj in (
        error("23505", D="d"),
        exc.DataError("client side"),
        exc.PostgresLogMessage.from_fields({"S": "NOTICE", "C": "00000", "M": "n"}),
        exc.PostgresLogMessage.from_fields({"S": "WARNING", "C": "01000", "M": "w"}),
        error("0A000", R="RevalidateCachedQuery"),
    ):
        copy = pickle.loads(pickle.dumps(obj, protocol=protocol))
        assert type(copy) is type(obj)
        assert copy.as_dict() == obj.as_dict()
        assert str(copy) == str(obj)


def test_pickle_client_errors() -> None:
    err = roundtrip(exc.InterfaceError("misuse", detail="d", hint="h"))
    assert (type(err), str(err), err.detail, err.hint) == (
        exc.InterfaceError,
        "misuse\nDETAIL:  d\nHINT:  h",
        "d",
        "h",
    )
    outdated = roundtrip(exc.OutdatedSchemaCacheError("x", schema="s", data_type="t", position="2"))
    assert (outdated.schema_name, outdated.data_type_name, outdated.position) == ("s", "t", "2")
    policy = roundtrip(exc.AuthenticationPolicyError("server requested SCRAM-SHA-256"))
    assert type(policy) is exc.AuthenticationPolicyError


# --- client-side classes ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "bases"),
    [
        (exc.PostgresError, (exc.PostgresMessage, Exception)),
        (exc.FatalPostgresError, (exc.PostgresError,)),
        (exc.UnknownPostgresError, (exc.FatalPostgresError,)),
        (exc.PostgresLogMessage, (exc.PostgresMessage,)),
        (exc.InterfaceError, (exc.InterfaceMessage, Exception)),
        (exc.InterfaceWarning, (exc.InterfaceMessage, UserWarning)),
        (exc.ClientConfigurationError, (exc.InterfaceError, ValueError)),
        (exc.UnsupportedClientFeatureError, (exc.InterfaceError,)),
        (exc.UnsupportedServerFeatureError, (exc.InterfaceError,)),
        (exc.AuthenticationPolicyError, (exc.InterfaceError,)),
        (exc.InternalClientError, (Exception,)),
        (exc.ProtocolError, (exc.InternalClientError,)),
        (exc.OutdatedSchemaCacheError, (exc.InternalClientError,)),
        (exc.TargetServerAttributeNotMatched, (exc.InternalClientError,)),
        (exc.InvalidCachedStatementError, (exc.FeatureNotSupportedError,)),
    ],
)
def test_client_class_bases(cls: type, bases: tuple[type, ...]) -> None:
    assert cls.__bases__ == bases
    assert cls.__doc__


def test_interface_error_str_and_with_msg() -> None:
    err = exc.ClientConfigurationError("bad sslmode", detail="got 'maybe'", hint="use 'require'")
    assert str(err) == "bad sslmode\nDETAIL:  got 'maybe'\nHINT:  use 'require'"
    assert isinstance(err, ValueError)
    other = err.with_msg("still bad")
    assert type(other) is exc.ClientConfigurationError
    assert (str(other).splitlines()[0], other.detail, other.hint) == (
        "still bad",
        "got 'maybe'",
        "use 'require'",
    )
    warning = exc.InterfaceWarning("careful", hint="h")
    assert str(warning) == "careful\nHINT:  h"


def test_all_lists_every_public_class() -> None:
    assert len(set(exc.__all__)) == len(exc.__all__)
    for name in exc.__all__:
        assert isinstance(getattr(exc, name), type), name
    public = {
        name
        for name, value in vars(exc).items()
        if isinstance(value, type)
        and issubclass(value, (BaseException, exc.PostgresMessage))
        and not name.startswith("_")
        and value.__module__ == exc.__name__
    }
    # The message base classes are importable from here but not exported, as in asyncpg.
    assert public - {"InterfaceMessage", "PostgresMessage"} == set(exc.__all__)


def test_user_subclass_with_custom_sqlstate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(exc, "_CLASS_BY_SQLSTATE", dict(exc._CLASS_BY_SQLSTATE))

    class MyAppError(exc.PostgresError):
        sqlstate = "P9X01"

    err = exc.PostgresError.from_fields({"C": "P9X01", "M": "custom"})
    assert type(err) is MyAppError
    with pytest.raises(TypeError, match="23505"):

        class Clash(exc.PostgresError):
            sqlstate = "23505"


# --- the generator --------------------------------------------------------------------------


def load_generator() -> ModuleType:
    path = REPO_ROOT / "tools" / "gen_sqlstate.py"
    if not path.exists():  # tests run against an installed wheel, away from the source tree
        pytest.skip("needs the source tree (tools/gen_sqlstate.py)")
    spec = importlib.util.spec_from_file_location("gen_sqlstate", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


NEWER_ERRCODES = """\
Section: Class 01 - Warning
01000  W  ERRCODE_WARNING  warning
Section: Class 10 - XQuery Error
10608  E  ERRCODE_INVALID_ARGUMENT_FOR_XQUERY  invalid_argument_for_xquery
Section: Class 25 - Invalid Transaction State
25000  E  ERRCODE_INVALID_TRANSACTION_STATE  invalid_transaction_state
25P04  E  ERRCODE_TRANSACTION_TIMEOUT  transaction_timeout
Section: Class 58 - System Error (errors external to PostgreSQL itself)
58000  E  ERRCODE_SYSTEM_ERROR  system_error
58P03  E  ERRCODE_FILE_NAME_TOO_LONG  file_name_too_long
"""


def test_generator_handles_codes_added_after_our_errcodes() -> None:
    gen = load_generator()
    classes = gen.build_classes(gen.parse_errcodes(NEWER_ERRCODES))
    got = {c.sqlstate: (c.name, c.base) for c in classes}
    assert got == {
        "01000": ("PostgresWarning", "PostgresLogMessage, Warning"),
        "10608": ("InvalidArgumentForXqueryError", "PostgresError"),
        "25000": ("InvalidTransactionStateError", "PostgresError"),
        "25P04": ("TransactionTimeoutError", "InvalidTransactionStateError"),
        "58000": ("PostgresSystemError", "PostgresError"),
        "58P03": ("FileNameTooLongError", "PostgresSystemError"),
    }


def test_generated_file_is_up_to_date() -> None:
    generated = REPO_ROOT / "python" / "pgoxide" / "exceptions" / "_sqlstate.py"
    if not generated.exists():
        pytest.skip("needs the source tree (python/pgoxide/exceptions/_sqlstate.py)")
    header = generated.read_text(encoding="utf-8")
    source = re.search(r"^# Generated by tools/gen_sqlstate.py from (.+)$", header, re.M)
    command = re.search(r"^# Command: (.+)$", header, re.M)
    assert source is not None
    assert command is not None
    if not Path(source[1]).exists():
        pytest.skip(f"{source[1]} is not on this machine")
    gen = load_generator()
    codes = gen.parse_errcodes(Path(source[1]).read_text(encoding="utf-8"))
    classes = gen.build_classes(gen.with_other_versions(codes))
    assert gen.render(classes, source[1], command[1]) == header


# --- parity with asyncpg ----------------------------------------------------------------------


def asyncpg_exceptions() -> ModuleType:
    return pytest.importorskip("asyncpg.exceptions")


def sqlstate_classes(module: ModuleType, base: type) -> dict[str, tuple[str, str]]:
    """SQLSTATE -> (class name, parent class name) for classes that define a code."""
    result = {}
    for name in module.__all__:
        cls = getattr(module, name)
        if isinstance(cls, type) and issubclass(cls, base) and vars(cls).get("sqlstate"):
            result[cls.sqlstate] = (cls.__name__, cls.__bases__[0].__name__)
    return result


def test_class_names_and_sqlstates_match_asyncpg() -> None:
    apg = asyncpg_exceptions()
    theirs = sqlstate_classes(apg, apg._base.PostgresMessage)
    ours = sqlstate_classes(exc, exc.PostgresMessage)
    assert len(ours) > 250
    # asyncpg may know codes from a newer PostgreSQL than the errcodes.txt we generated from;
    # every code we have must carry asyncpg's name and parent.
    assert {code: ours[code] for code in ours} == {code: theirs.get(code) for code in ours}


def test_client_class_names_match_asyncpg() -> None:
    apg = asyncpg_exceptions()
    sqlstate_names = {name for name, _ in sqlstate_classes(apg, apg._base.PostgresMessage).values()}
    client_names = set(apg.__all__) - sqlstate_names
    missing = {name for name in client_names if not hasattr(exc, name)}
    assert missing == set()
    for name in client_names:
        ours, theirs = getattr(exc, name), getattr(apg, name)
        assert [b.__name__ for b in ours.__bases__] == [b.__name__ for b in theirs.__bases__], name


PARITY_MESSAGES: list[dict[str, str]] = [
    {code: value for code, (_, value) in ALL_FIELDS.items()},
    {"S": "ERROR", "V": "ERROR", "C": "42P01", "M": 'relation "nope" does not exist', "P": "15"},
    {"S": "FATAL", "V": "FATAL", "C": "28P01", "M": "password authentication failed"},
    {"S": "ERROR", "V": "ERROR", "C": "22012", "M": "division by zero", "H": "h"},
    {"S": "ERROR", "V": "ERROR", "C": "QQ123", "M": "unknown class"},
    {
        "S": "ERROR",
        "C": "0A000",
        "M": "cached plan must not change result type",
        "R": "RevalidateCachedQuery",
    },
]

PARITY_NOTICES: list[dict[str, str]] = [
    {"S": "NOTICE", "V": "NOTICE", "C": "00000", "M": "hello"},
    {"S": "WARNING", "V": "WARNING", "C": "01000", "M": "careful"},
    {"S": "WARNING", "V": "WARNING", "C": "QQ000", "M": "odd warning"},
    {"S": "NOTICE", "V": "NOTICE", "C": "42P07", "M": 'relation "t" already exists, skipping'},
    {"S": "NOTICE", "V": "NOTICE", "C": "02000", "M": "no data"},
]


def describe(obj: Any) -> tuple[str, str, dict[str, str], Any]:
    return (type(obj).__name__, str(obj), obj.as_dict(), obj.query)


@pytest.mark.parametrize("fields", PARITY_MESSAGES)
def test_from_fields_matches_asyncpg(fields: dict[str, str]) -> None:
    apg = asyncpg_exceptions()
    ours = exc.PostgresError.from_fields(fields, query="SELECT 1")
    theirs = apg.PostgresError.new(fields, query="SELECT 1")
    assert describe(ours) == describe(theirs)
    assert ours.args == theirs.args


@pytest.mark.parametrize("fields", PARITY_NOTICES)
def test_log_message_from_fields_matches_asyncpg(fields: dict[str, str]) -> None:
    apg = asyncpg_exceptions()
    ours = exc.PostgresLogMessage.from_fields(fields)
    theirs = apg.PostgresLogMessage.new(fields)
    assert describe(ours) == describe(theirs)


@pytest.mark.parametrize("sqlstate", ["42P05", "26000"])
def test_prepared_statement_errors_carry_the_pooler_note(sqlstate: str) -> None:
    error = exc.PostgresError.from_fields({"C": sqlstate, "M": "gone", "S": "ERROR"})
    assert "pgbouncer" in error.hint and "statement_cache_size=0" in error.hint
    with_hint = exc.PostgresError.from_fields({"C": sqlstate, "M": "x", "H": "theirs"})
    assert with_hint.hint.startswith("theirs\n")
    other = exc.PostgresError.from_fields({"C": "22012", "M": "x"})
    assert other.hint is None
