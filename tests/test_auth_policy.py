"""require_auth against real roles (libpq's test expectations and wording), and the advisory
hooks and warnings for cleartext passwords without TLS and for MD5."""

from __future__ import annotations

import warnings

import pgoxide
import pytest
from pgoxide import AuthEvent, exceptions


async def _connect(pg_cluster, pg_roles, role: str, **kwargs: object) -> pgoxide.Connection:
    name = getattr(pg_roles, role)
    kwargs.setdefault("sslmode", "disable")
    return await pgoxide.connect(pg_cluster.dsn(user=name), password=pg_roles[name], **kwargs)


@pytest.mark.parametrize(
    ("role", "require_auth"),
    [
        ("password", "password"),
        ("md5", "md5"),
        ("scram", "scram-sha-256"),
        ("scram", "password,md5,scram-sha-256"),
        ("trust", "none"),
        ("trust", "!password,!md5"),
        ("md5", "!password,!scram-sha-256"),
        ("scram", "!none"),
        ("password", "password,none"),
    ],
)
async def test_allowed(pg_cluster, pg_roles, role, require_auth):
    conn = await _connect(pg_cluster, pg_roles, role, require_auth=require_auth)
    try:
        assert await conn.fetchval("SELECT current_user") == getattr(pg_roles, role)
    finally:
        await conn.close()


@pytest.mark.parametrize(
    ("role", "require_auth", "reason"),
    [
        ("password", "md5", "server requested a cleartext password"),
        ("password", "scram-sha-256", "server requested a cleartext password"),
        ("md5", "password", "server requested a hashed password"),
        ("md5", "!md5", "server requested a hashed password"),
        ("scram", "md5", "server requested SASL authentication"),
        ("scram", "none", "server requested SASL authentication"),
        ("scram", "!scram-sha-256", "server requested SCRAM-SHA-256 authentication"),
        ("scram", "!password,!md5,!scram-sha-256", "server requested SCRAM-SHA-256 authentication"),
        ("trust", "scram-sha-256", "server did not complete authentication"),
        ("trust", "!none", "server did not complete authentication"),
    ],
)
async def test_refused(pg_cluster, pg_roles, role, require_auth, reason):
    with pytest.raises(exceptions.AuthenticationPolicyError) as info:
        await _connect(pg_cluster, pg_roles, role, require_auth=require_auth)
    assert str(info.value) == f'authentication method requirement "{require_auth}" failed: {reason}'


async def test_refusal_is_not_retried_on_other_hosts(pg_cluster, pg_roles):
    with pytest.raises(exceptions.AuthenticationPolicyError):
        await pgoxide.connect(
            host=["127.0.0.1", "127.0.0.1"],
            port=pg_cluster.port,
            user=pg_roles.password,
            password=pg_roles[pg_roles.password],
            require_auth="scram-sha-256",
            sslmode="disable",
        )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "scram-sha-256,!md5",
            'negative require_auth method "!md5" cannot be mixed with non-negative methods',
        ),
        (
            "!password,!none,scram-sha-256",
            'require_auth method "scram-sha-256" cannot be mixed with negative methods',
        ),
        ("password,md5,password", 'require_auth method "password" is specified more than once'),
        ("!password,!md5,!password", 'require_auth method "!password" is specified more than once'),
        ("none,md5,none", 'require_auth method "none" is specified more than once'),
        ("kerberos", 'invalid require_auth value: "kerberos"'),
    ],
)
async def test_grammar_errors_before_connecting(value, message):
    # Port 1 is never reached: the value is checked first.
    with pytest.raises(exceptions.ClientConfigurationError) as info:
        await pgoxide.connect(host="127.0.0.1", port=1, user="u", require_auth=value)
    assert str(info.value) == message


async def test_require_auth_from_the_environment(pg_cluster, pg_roles, monkeypatch):
    monkeypatch.setenv("PGREQUIREAUTH", "md5")
    with pytest.raises(exceptions.AuthenticationPolicyError, match='"md5" failed'):
        await _connect(pg_cluster, pg_roles, "scram")


async def test_hooks_report_cleartext_without_tls_and_md5(pg_cluster, pg_roles):
    seen: list[tuple[str, AuthEvent]] = []
    hooks = dict(
        on_insecure_auth=lambda e: seen.append(("insecure", e)),
        on_deprecated_auth=lambda e: seen.append(("deprecated", e)),
    )
    with pytest.warns(exceptions.InsecureAuthWarning, match="sent in cleartext without TLS"):
        conn = await _connect(pg_cluster, pg_roles, "password", **hooks)
    assert conn.auth_method == "password"
    await conn.close()
    with pytest.warns(exceptions.DeprecatedAuthWarning, match="MD5"):
        conn = await _connect(pg_cluster, pg_roles, "md5", sslmode="require", **hooks)
    assert conn.auth_method == "md5"
    await conn.close()
    assert seen == [
        ("insecure", AuthEvent("password", False, pg_cluster.host, pg_cluster.port)),
        ("deprecated", AuthEvent("md5", True, pg_cluster.host, pg_cluster.port)),
    ]


async def test_a_tracer_hears_the_same_advisories(pg_cluster, pg_roles):
    class Advisories(pgoxide.Tracer):
        def __init__(self) -> None:
            self.seen: list[tuple[str, AuthEvent]] = []

        def on_insecure_auth(self, event: AuthEvent) -> None:
            self.seen.append(("insecure", event))

        def on_deprecated_auth(self, event: AuthEvent) -> None:
            self.seen.append(("deprecated", event))

    tracer = Advisories()
    with pytest.warns(exceptions.InsecureAuthWarning):
        conn = await _connect(pg_cluster, pg_roles, "password", tracer=tracer)
    await conn.close()
    with pytest.warns(exceptions.DeprecatedAuthWarning):
        conn = await _connect(pg_cluster, pg_roles, "md5", sslmode="require", tracer=tracer)
    await conn.close()
    assert [kind for kind, _ in tracer.seen] == ["insecure", "deprecated"]


async def test_hooks_stay_quiet_when_nothing_is_wrong(pg_cluster, pg_roles):
    seen: list[AuthEvent] = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for role, sslmode in (("password", "require"), ("scram", "disable"), ("trust", "disable")):
            conn = await _connect(
                pg_cluster, pg_roles, role, sslmode=sslmode, on_insecure_auth=seen.append
            )
            await conn.close()
    assert seen == []


async def test_a_wrong_password_still_reports_the_cleartext(pg_cluster, pg_roles):
    # The password left the client whatever the server then said.
    seen: list[AuthEvent] = []
    with pytest.raises(exceptions.InvalidPasswordError), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        await pgoxide.connect(
            pg_cluster.dsn(user=pg_roles.password, sslmode="disable"),
            password="wrong",
            on_insecure_auth=seen.append,
        )
    assert [e.method for e in seen] == ["password"]
