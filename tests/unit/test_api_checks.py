"""The stepboard.v1 API passes the Buf CLI's checks (protos/buf.yaml): formatted, STANDARD
lint with only the listed exceptions, and no breaking change against the released API in
protos/baseline/. Also shows that the checks fail: a removed field breaks ``buf breaking``,
a lint violation (even one with a ``buf:lint:ignore`` comment) fails ``buf lint``.

``buf`` is the buf-bin package of the dev extra, installed beside this interpreter.
"""

import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest
from google.protobuf.descriptor import FileDescriptor

from stepboard.v1 import ingest_pb2, ranking_pb2, social_pb2
from tests.stack import ROOT

PROTOS = ROOT / "protos"
FILES = [module.DESCRIPTOR for module in (ingest_pb2, ranking_pb2, social_pb2)]
GO_PACKAGE = "github.com/stepboard/stepboard/gen/go/stepboard/v1;stepboardv1"
JAVA_PACKAGE = "com.stepboard.v1"
# The names protos/buf.yaml excepts from STANDARD lint (with its reasons): nothing else.
UNSUFFIXED_SERVICES = {"stepboard.v1.StepIngest", "stepboard.v1.Ranking",
                       "stepboard.v1.FriendGraph"}
NONSTANDARD_RESPONSES = {
    "StreamFriends": "FriendChunk",
    "GetPrivacySettings": "PrivacySettings",
    "GetRankingExclusions": "RankingExclusions",
}


def buf_path() -> str:
    """The buf executable of this interpreter's environment (buf-bin, dev extra)."""
    found = shutil.which("buf", path=sysconfig.get_path("scripts"))
    assert found, "buf not found beside this Python: install requirements-dev.lock (buf-bin)"
    return found


def buf(*args: str, cwd: Path = PROTOS) -> subprocess.CompletedProcess:
    """Runs ``buf args`` in ``cwd`` (a folder holding buf.yaml), output captured."""
    return subprocess.run([buf_path(), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60)


def output(result: subprocess.CompletedProcess) -> str:
    return f"exit {result.returncode}\n{result.stdout}{result.stderr}"


@pytest.fixture
def protos_copy(tmp_path: Path) -> Path:
    """A scratch copy of protos/ (buf.yaml and baseline included) a test may change."""
    copy = tmp_path / "protos"
    shutil.copytree(PROTOS, copy)
    return copy


def edit(path: Path, old: str, new: str) -> None:
    """Replaces the one occurrence of ``old`` in ``path`` with ``new``."""
    text = path.read_text()
    assert text.count(old) == 1, (path, old)
    path.write_text(text.replace(old, new))


def test_protos_are_formatted():
    result = buf("format", "--diff", "--exit-code")
    assert result.returncode == 0, "run `buf format -w` in protos/:\n" + output(result)


def test_protos_pass_standard_lint():
    result = buf("lint")
    assert result.returncode == 0, (
        "buf lint: fix the violations, or add an exception with its reason to "
        "protos/buf.yaml:\n" + output(result)
    )


def test_no_breaking_change_against_the_released_api():
    result = buf("breaking", "--against", "baseline")
    assert result.returncode == 0, (
        "buf breaking: this change breaks callers of the released API (protos/baseline/); "
        "add instead of changing (a new field, message or RPC), or cut a new major "
        "version:\n" + output(result)
    )


def test_a_removed_field_fails_buf_breaking(protos_copy: Path):
    edit(protos_copy / "stepboard" / "v1" / "social.proto", "  int64 total_count = 3;\n", "")
    result = buf("breaking", "--against", "baseline", cwd=protos_copy)
    assert result.returncode != 0, output(result)
    assert 'field "3" with name "total_count"' in result.stdout, output(result)


def test_a_renamed_rpc_request_fails_buf_breaking(protos_copy: Path):
    """Giving an RPC another request type (what UpsertProfile's fix did once) is caught."""
    social = protos_copy / "stepboard" / "v1" / "social.proto"
    edit(social, "rpc UpsertProfile(UpsertProfileRequest)", "rpc UpsertProfile(Profile)")
    result = buf("breaking", "--against", "baseline", cwd=protos_copy)
    assert result.returncode != 0, output(result)
    assert '"UpsertProfile"' in result.stdout and "request type" in result.stdout, output(result)


@pytest.mark.parametrize("proto, anchor, addition, rule", [
    pytest.param("ranking.proto", "message HistoryDay {\n", "  int64 bestDay = 99;\n",
                 "should be lower_snake_case", id="camel-case-field"),
    # The comment-ignore is refused: exceptions live in buf.yaml only.
    pytest.param("ranking.proto", "message HistoryDay {\n",
                 "  // buf:lint:ignore FIELD_LOWER_SNAKE_CASE\n  int64 bestDay = 99;\n",
                 "should be lower_snake_case", id="comment-ignore"),
    # An RPC sharing another's request and response, in the file whose response names are
    # excepted: RPC_REQUEST_RESPONSE_UNIQUE still holds there.
    pytest.param("social.proto", "service FriendGraph {\n",
                 "  rpc UpsertProfiles(UpsertProfileRequest) returns (UpsertProfileResponse);\n",
                 "is used as the request or response type for multiple RPCs",
                 id="shared-request-type"),
    # A new service without the "Service" suffix: the exception covers only the three
    # existing files.
    pytest.param("archive.proto", None,
                 'syntax = "proto3";\n\npackage stepboard.v1;\n\nservice Archive {\n'
                 "  rpc GetArchive(GetArchiveRequest) returns (GetArchiveResponse);\n}\n\n"
                 "message GetArchiveRequest {}\n\nmessage GetArchiveResponse {}\n",
                 'should be suffixed with "Service"', id="new-service-without-suffix"),
])
def test_lint_catches_a_violation(protos_copy: Path, proto, anchor, addition, rule):
    path = protos_copy / "stepboard" / "v1" / proto
    if anchor is None:
        path.write_text(addition)
    else:
        edit(path, anchor, anchor + addition)
    result = buf("lint", cwd=protos_copy)
    assert result.returncode != 0, output(result)
    assert rule in result.stdout, output(result)


@pytest.mark.parametrize("file", FILES, ids=lambda f: f.name)
def test_every_proto_sets_go_and_java_options(file: FileDescriptor):
    options = file.GetOptions()
    assert options.go_package == GO_PACKAGE
    assert options.java_package == JAVA_PACKAGE
    assert options.java_multiple_files
    stem = Path(file.name).stem
    assert options.java_outer_classname == stem.capitalize() + "Proto"


def test_lint_exceptions_cover_only_the_listed_names():
    """buf.yaml can except a rule only file by file; these are the elements it is for."""
    services = [s for f in FILES for s in f.services_by_name.values()]
    assert {s.full_name for s in services if not s.name.endswith("Service")} == \
        UNSUFFIXED_SERVICES
    nonstandard = {m.name: m.output_type.name for s in services for m in s.methods
                   if m.output_type.name not in (f"{m.name}Response",
                                                 f"{s.name}{m.name}Response")}
    assert nonstandard == NONSTANDARD_RESPONSES


def test_upsert_profile_has_its_own_request_and_response():
    upsert = social_pb2.DESCRIPTOR.services_by_name["FriendGraph"].methods_by_name[
        "UpsertProfile"]
    assert upsert.input_type.full_name == "stepboard.v1.UpsertProfileRequest"
    assert upsert.output_type.full_name == "stepboard.v1.UpsertProfileResponse"
    for message in (upsert.input_type, upsert.output_type):
        (field,) = message.fields
        assert (field.name, field.number, field.message_type.full_name) == (
            "profile", 1, "stepboard.v1.Profile")
