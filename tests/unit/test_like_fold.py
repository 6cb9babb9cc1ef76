"""A batch's likes folded to one op each (rank_svc.likes.fold) leave every like as the ops
applied one by one would, whatever state the batch starts from (including a replay of ops
already applied): pure logic, checked against a sequential model."""

import random

from rank_svc.likes import LIKE, RELIKE, UNLIKE, LikeOp, fold


def apply_one(state: int | None, liked: bool, at_ms: int) -> int | None:
    """The design's rule, op by op: the like time (None: not liked); a repeat keeps it."""
    if not liked:
        return None
    return at_ms if state is None else state


def apply_folded(state: int | None, op: LikeOp) -> int | None:
    """What the script does with one folded op."""
    if op.mode == UNLIKE:
        return None
    if op.mode == LIKE:
        return op.at_ms if state is None else state
    assert op.mode == RELIKE
    return op.at_ms


def test_folded_batches_equal_ops_applied_one_by_one():
    rng = random.Random(5)
    for _ in range(3000):
        ops = [(rng.random() < 0.6, at) for at in range(rng.randint(1, 8))]
        start = rng.choice([None, -1])
        expected = start
        for liked, at_ms in ops:
            expected = apply_one(expected, liked, at_ms)
        cut = rng.randint(0, len(ops))  # two batches
        state = start
        for batch in (ops[:cut], ops[cut:]):
            folded: dict = {}
            for liked, at_ms in batch:
                fold(folded, ("day", 1, 2), liked, at_ms)
            if folded:
                state = apply_folded(state, folded["day", 1, 2])
        assert state == expected, (start, ops, cut)
        replayed = state  # a replay of a suffix of ops already applied changes nothing
        folded = {}
        for liked, at_ms in ops[cut:]:
            fold(folded, ("day", 1, 2), liked, at_ms)
        if folded:
            replayed = apply_folded(replayed, folded["day", 1, 2])
        assert replayed == expected, (start, ops, cut)
