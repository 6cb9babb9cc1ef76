"""When the board writer gives up on a group join (pure logic; the real consumer's
replacement is tested in test_write_path.py)."""

from rank_svc.join_watch import JoinWatch


def test_a_join_is_overdue_only_after_the_limit_without_an_assignment():
    watch = JoinWatch(30.0, now=100.0)
    assert not watch.overdue(129.9)
    assert watch.overdue(130.0)
    watch.assigned()
    assert not watch.overdue(1_000.0)


def test_a_revoke_starts_a_new_wait_and_a_second_one_keeps_the_first_start():
    watch = JoinWatch(30.0, now=0.0)
    watch.assigned()
    watch.waiting(50.0)
    watch.waiting(70.0)
    assert not watch.overdue(79.9)
    assert watch.overdue(80.0)
    watch.assigned()
    assert not watch.overdue(200.0)
