"""The daily boards as one object, for the tests and the benchmark, which write a board
and read it back: the services use the writer (:mod:`rank_svc.board_writer`) or the
readers (:mod:`rank_svc.board_readers`) they need."""

from common.redis_clients import RedisClient
from rank_svc.board_format import BoardSettings
from rank_svc.board_readers import BoardReader
from rank_svc.board_writer import BoardWriter


class BoardStore(BoardWriter, BoardReader):
    """The writer and the readers of the boards over one Redis client."""

    def __init__(
        self, client: RedisClient, settings: BoardSettings, topic: str = "", staging: bool = False
    ) -> None:
        """``staging`` stores use separate board keys, for building a day off to the side."""
        BoardWriter.__init__(self, client, settings, topic, staging)
        BoardReader.__init__(self, client, settings, topic, staging)
