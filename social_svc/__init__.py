"""FriendGraph: the symmetric friend graph and profiles on sharded MySQL."""
