"""The archive's merge of board shards read page by page (rank_svc.archive.merged_pages)."""

import random

from rank_svc.archive import merged_pages


def pages_of(members: list[tuple[int, int]], rng: random.Random) -> list[list[tuple[int, int]]]:
    """``members`` (sorted) cut into pages of random sizes."""
    pages, start = [], 0
    while start < len(members):
        size = rng.randint(1, 30)
        pages.append(members[start:start + size])
        start += size
    return pages


def test_merged_pages_give_every_member_once_in_order():
    rng = random.Random(7)
    for _ in range(200):
        shards = [sorted({(-rng.randrange(20), rng.randrange(10**6))
                          for _ in range(rng.randrange(0, 120))}) for _ in range(rng.randint(1, 6))]
        pages = list(merged_pages([iter(pages_of(shard, rng)) for shard in shards]))
        assert all(pages)  # no empty page
        assert [m for page in pages for m in page] == sorted(m for shard in shards for m in shard)
