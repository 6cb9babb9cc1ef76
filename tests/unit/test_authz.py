"""The authorization policy: parsing, wildcards, internal methods, bad entries; and the
settings rules that tie tokens, client certificates and the policy together."""

import json

import pytest

from common.authz import INTERNAL_METHODS, Policy, certificate_identity, read_policy
from common.config import ConfigError
from common.server import ServerSettings, TlsSettings

RANKING = {"GetFriendRanking", "GetGlobalTop", "GetGlobalRank", "GetHistory", "ListLikes"}


def parse(document: object) -> Policy:
    return Policy.parse(json.dumps(document), "STEPBOARD_AUTH_POLICY")


def test_full_names_and_service_wildcards_are_expanded():
    policy = parse({
        "rank": ["stepboard.v1.FriendGraph/ListFriends"],
        "app": ["stepboard.v1.Ranking/*"],
    })
    assert policy.grants["rank"] == {"/stepboard.v1.FriendGraph/ListFriends"}
    assert policy.grants["app"] == {f"/stepboard.v1.Ranking/{m}" for m in RANKING}
    assert policy.callers_of("/stepboard.v1.Ranking/GetGlobalTop") == {"app"}
    assert policy.callers_of("/stepboard.v1.StepIngest/ReportSteps") == frozenset()


def test_a_wildcard_leaves_out_internal_methods_an_explicit_listing_grants_them():
    policy = parse({
        "app": ["stepboard.v1.FriendGraph/*"],
        "precompute": ["stepboard.v1.FriendGraph/ListHotUsers"],
    })
    assert "/stepboard.v1.FriendGraph/AddFriendship" in policy.grants["app"]
    assert "/stepboard.v1.FriendGraph/CheckFriendship" in policy.grants["app"]
    for internal in INTERNAL_METHODS:
        assert f"/{internal}" not in policy.grants["app"]
    assert policy.callers_of("/stepboard.v1.FriendGraph/ListHotUsers") == {"precompute"}


@pytest.mark.parametrize(("document", "message"), [
    ({"rank": ["stepboard.v1.Nope/ListFriends"]},
     "caller 'rank': 'stepboard.v1.Nope/ListFriends': unknown service"),
    ({"rank": ["stepboard.v1.FriendGraph/ListFriend"]},
     "'stepboard.v1.FriendGraph/ListFriend': stepboard.v1.FriendGraph has no method ListFriend"),
    ({"rank": ["FriendGraph/ListFriends"]}, "'FriendGraph/ListFriends': unknown service"),
    ({"rank": ["/stepboard.v1.FriendGraph/ListFriends"]}, "expected package.Service/Method"),
    ({"rank": ["stepboard.v1.FriendGraph"]}, "expected package.Service/Method"),
    ({"rank": ["*"]}, "expected package.Service/Method"),
    ({"rank": "stepboard.v1.Ranking/*"}, "caller 'rank': expected a list of method names"),
    ({"other": ["stepboard.v1.Ranking/*"]}, "caller name 'other' is reserved"),
    ({"bad name": []}, "caller name 'bad name'"),
    ([], "expected a JSON object"),
    ({}, "expected a JSON object"),
])
def test_bad_entries_are_refused_naming_them(document, message):
    with pytest.raises(ConfigError) as raised:
        parse(document)
    assert message in str(raised.value)
    assert str(raised.value).startswith("STEPBOARD_AUTH_POLICY:")


def test_the_policy_comes_inline_or_from_a_file(tmp_path):
    assert read_policy("", "") is None
    path = tmp_path / "policy.json"
    path.write_text('{"cli": ["stepboard.v1.Ranking/*"]}')
    assert set(read_policy("", str(path)).grants) == {"cli"}
    with pytest.raises(ConfigError, match="not valid JSON"):
        read_policy("{nope", "")
    with pytest.raises(ConfigError, match="not both"):
        read_policy('{"a": []}', str(path))
    with pytest.raises(ConfigError, match="cannot read"):
        read_policy("", str(tmp_path / "missing.json"))


def test_tokens_need_a_policy_and_a_policy_needs_a_way_to_name_callers():
    with pytest.raises(ConfigError, match="STEPBOARD_AUTH_POLICY"):
        ServerSettings(0, None, auth_tokens={"t": "rank"})
    with pytest.raises(ConfigError, match="no caller can be identified"):
        ServerSettings(0, None, auth_policy=parse({"rank": []}))
    mtls = TlsSettings(cert_file="s.pem", key_file="k.pem", client_ca_file="ca.pem")
    settings = ServerSettings(0, None, auth_policy=parse({"app": []}), tls=mtls)
    assert settings.authenticator is not None
    assert settings.caller_labels == {"app"}
    assert ServerSettings(0, None).authenticator is None


def test_token_names_are_checked_like_policy_callers():
    env = {"STEPBOARD_AUTH_TOKENS": "anonymous:abc", "STEPBOARD_AUTH_POLICY": '{"a": []}'}
    with pytest.raises(ConfigError, match="'anonymous' is reserved"):
        ServerSettings.from_env(env, "rank")


def test_a_certificate_names_its_first_dns_san_else_uri_san_else_common_name():
    assert certificate_identity({
        "x509_common_name": [b"cn"], "peer_uri": [b"spiffe://a/b"], "peer_dns": [b"a.example"],
    }) == "a.example"
    assert certificate_identity({"x509_common_name": [b"cn"], "peer_uri": [b"spiffe://a/b"]}) \
        == "spiffe://a/b"
    assert certificate_identity({"x509_common_name": [b"cn"]}) == "cn"
    assert certificate_identity({}) is None
