"""Profile cache entries read alike whatever version of ``Profile`` wrote them."""

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from common.social_cache_format import decode_profile, encode_profile
from stepboard.v1 import social_pb2

# An entry as social_svc cached it before Profile had cover_url (bytes of that version).
CACHED_BEFORE_COVERS = b"\x08\x07\x12\x03Ada\x1a\x11https://a/ada.png"


def profile_before_covers() -> type:
    """The Profile message as it was before cover_url: user_id, nickname, avatar_url."""
    file = descriptor_pb2.FileDescriptorProto(name="old_social.proto", package="old",
                                              syntax="proto3")
    message = file.message_type.add(name="Profile")
    for number, name, kind in ((1, "user_id", "TYPE_INT64"), (2, "nickname", "TYPE_STRING"),
                               (3, "avatar_url", "TYPE_STRING")):
        message.field.add(name=name, number=number, label=1,
                          type=descriptor_pb2.FieldDescriptorProto.Type.Value(kind))
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("old.Profile"))


def test_an_entry_cached_before_covers_decodes_without_a_cover():
    profile = decode_profile(CACHED_BEFORE_COVERS)
    assert profile == social_pb2.Profile(user_id=7, nickname="Ada",
                                         avatar_url="https://a/ada.png")
    assert profile.cover_url == ""


def test_the_old_format_is_the_new_one_without_a_cover():
    old = profile_before_covers()(user_id=7, nickname="Ada", avatar_url="https://a/ada.png")
    assert old.SerializeToString() == CACHED_BEFORE_COVERS
    assert encode_profile(decode_profile(CACHED_BEFORE_COVERS)) == CACHED_BEFORE_COVERS


def test_a_reader_that_predates_covers_reads_an_entry_with_one():
    cached = encode_profile(social_pb2.Profile(
        user_id=7, nickname="Ada", avatar_url="https://a/ada.png", cover_url="https://c/a.jpg"
    ))
    read = profile_before_covers().FromString(cached)
    assert (read.user_id, read.nickname, read.avatar_url) == (7, "Ada", "https://a/ada.png")
    assert decode_profile(cached).cover_url == "https://c/a.jpg"


def test_a_user_known_to_have_no_profile_stays_empty():
    assert encode_profile(None) == b""
    assert decode_profile(b"") is None
