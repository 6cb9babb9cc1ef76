"""Which week and month boards a restore covers, and which of their days come from the
archive (rank_svc.window_restore): pure date arithmetic."""

from datetime import UTC, date, datetime

from common.report_rules import MONTH, WEEK, Window
from rank_svc.window_restore import restorable_windows, split_days

# Thursday 2026-12-03 15:00 UTC: a day's board, kept 3 days after the day ended at UTC-12
# (12:00 UTC the next day), has expired up to 2026-11-29; 2026-12-04 has begun at UTC+14.
NOW = datetime(2026, 12, 3, 15, tzinfo=UTC).timestamp()


def days(first: int, last: int, month: int = 11) -> list[date]:
    return [date(2026, month, d) for d in range(first, last + 1)]


def test_expired_days_come_from_the_archive_and_kept_ones_from_their_boards():
    november = Window(MONTH, date(2026, 11, 1), date(2026, 11, 30))
    assert split_days(november, NOW, 3) == (days(1, 29), [date(2026, 11, 30)])
    week = Window(WEEK, date(2026, 11, 30), date(2026, 12, 6))
    assert split_days(week, NOW, 3) == ([], [date(2026, 11, 30), *days(1, 4, 12)])
    # One second earlier, 2026-11-29's board still exists.
    assert split_days(november, NOW - 3 * 3600 - 1, 3)[0] == days(1, 28)


def test_every_window_whose_board_may_exist_and_that_began_is_restored():
    # Window boards live 30 days longer (the largest late window): down to the windows of
    # 2026-10-31, whose board expires on 2026-12-03 at 12:00 + 1 s at the earliest.
    windows = restorable_windows(NOW, 3)
    assert [w for w in windows if w.period == MONTH] == [
        Window(MONTH, date(2026, 10, 1), date(2026, 10, 31)),
        Window(MONTH, date(2026, 11, 1), date(2026, 11, 30)),
        Window(MONTH, date(2026, 12, 1), date(2026, 12, 31)),
    ]
    weeks = [w.first for w in windows if w.period == WEEK]
    assert weeks == [date(2026, 10, 26), *days(2, 30, 11)[::7]]
    assert restorable_windows(NOW + 86400, 3)[0] == Window(WEEK, date(2026, 10, 26),
                                                           date(2026, 11, 1))
