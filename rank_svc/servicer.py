"""Ranking: global and friend rankings read from the day, week and month boards."""

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from typing import NamedTuple

from common.errors import InvalidArgument, NotFound, Unavailable
from common.page_tokens import decode_numbers, decode_offset, encode_token
from common.report_rules import DAY, MONTH, WEEK, Window, check_readable, parse_day, window_of
from rank_svc.board_format import Row, decode_scores
from rank_svc.board_readers import BoardReader, Members
from rank_svc.friend_ranking import (
    Ordering,
    first_index,
    next_token,
    page_size_of,
    token_scope,
)
from rank_svc.history import History
from rank_svc.hot_rankings import HotPage, HotRankings
from rank_svc.left_scores import LeftScores
from rank_svc.likes import LikeCounts, Liker, LikeReader, fill_likes
from rank_svc.privacy_filter import PrivacySource, View
from rank_svc.social_client import FriendSource, ProfileSource
from rank_svc.top_cache import TopCache
from stepboard.v1 import ranking_pb2, ranking_pb2_grpc, social_pb2

DEFAULT_TOP = 100
MAX_TOP = 1000
DEFAULT_LIKERS = 50
MAX_LIKERS = 500
_PERIODS = {
    ranking_pb2.PERIOD_UNSPECIFIED: DAY,
    ranking_pb2.PERIOD_DAY: DAY,
    ranking_pb2.PERIOD_WEEK: WEEK,
    ranking_pb2.PERIOD_MONTH: MONTH,
}


def fill_entries(
    new_entry: Callable[[], ranking_pb2.RankEntry], day: date | Window, first_rank: int,
    rows: Sequence[Row], profiles: Mapping[int, social_pb2.Profile],
) -> None:
    """Fills ``rows`` of the board ``day``, ranked from ``first_rank``, into the entries
    ``new_entry`` gives (a repeated field's ``add``, or a singular field): in place, no copy
    into the reply. A user without a report has 0 steps and no ``reached_at``."""
    reached = iter(decode_scores(day, [row.score for row in rows if row.score is not None]))
    for rank, (user_id, score) in enumerate(rows, first_rank):
        entry = new_entry()
        entry.rank = rank
        entry.user_id = user_id
        if score is not None:
            entry.steps, entry.reached_at.seconds = next(reached)
        profile = profiles.get(user_id)
        if profile is not None:
            entry.nickname = profile.nickname
            entry.avatar_url = profile.avatar_url


def fill_champion(
    champion: ranking_pb2.Champion, day: date | Window, first: Row,
    profiles: Mapping[int, social_pb2.Profile],
) -> None:
    """Fills ``champion`` with ``first``, the rank-1 row of a friend ranking of the board
    ``day``, and the cover of its profile (left empty without one)."""
    fill_entries(lambda: champion.entry, day, 1, [first], profiles)
    profile = profiles.get(first.user_id)
    if profile is not None:
        champion.cover_url = profile.cover_url


class TooLargeToRank(Unavailable):
    """A friend ranking too large to compute per call: it is served only precomputed."""

    def __init__(self, user_id: int, users: int, max_users: int) -> None:
        super().__init__(
            f"the friend ranking of user {user_id} has {users} users, more than the "
            f"{max_users} ranked per call (STEPBOARD_LIVE_RANKING_MAX_USERS), and no "
            "precomputed ranking is available yet: it is being computed, retry later"
        )


def bounded_members(
    prepare: Callable[[Sequence[int]], Members], max_users: int,
) -> Callable[[int, Sequence[int]], Members]:
    """How the ranking server prepares a friend list (``FriendSource``'s ``prepare``): the
    user first, then their friends, as ``prepare`` makes them (``read_scores``' form, the
    servicer finds the user at ``first_at``); a list of more than ``max_users`` with the user
    raises :class:`TooLargeToRank` before that work and the score read are paid."""

    def members(user_id: int, friends: Sequence[int]) -> Members:
        if len(friends) + 1 > max_users:
            raise TooLargeToRank(user_id, len(friends) + 1, max_users)
        return prepare([user_id, *friends])

    return members


def _window_of(request) -> Window:
    """The window a request asks about: its ``period`` (unset: the day) of its ``day``."""
    period = _PERIODS.get(request.period)
    if period is None:
        raise InvalidArgument(
            "period", f"must be PERIOD_DAY, PERIOD_WEEK or PERIOD_MONTH, got {request.period}"
        )
    return window_of(parse_day(request.day), period)


def _set_window(reply, window: Window) -> None:
    """The days ``window`` covers, in ``reply``'s ``window_first_day`` and ``_last_day``."""
    reply.window_first_day = window.first.isoformat()
    reply.window_last_day = window.last.isoformat()


class _Top(NamedTuple):
    """A board's top as cached: every row (users who left included, filtered per call),
    the participants who did not leave, the rows' profiles and a day's like counts (a
    change of a day's counts bumps its board's versions, so the cached ones are current)."""

    rows: list[Row]
    total: int
    profiles: Mapping[int, social_pb2.Profile]
    likes: LikeCounts | None  # a day's like counts of the rows (None: a week or month)


class _Page(NamedTuple):
    """One page of a friend ranking, precomputed or computed for the call."""

    start: int
    rows: list[Row]
    total: int
    my_index: int
    me: Row
    first: Row  # the ranking's rank-1 row: its champion, shown on every page
    # Like counts and liked_by_me of every member, read with the scores (None: not read).
    likes: LikeCounts | None = None


def _check_user(user_id: int) -> None:
    if user_id <= 0:
        raise InvalidArgument("user_id", f"must be > 0, got {user_id}")


class PrivacyPending(Unavailable):
    """A precomputed ranking that predates a privacy change, too large to compute per call."""

    def __init__(self, user_id: int) -> None:
        super().__init__(
            f"the friend ranking of user {user_id} is too large to compute per call and its "
            "precomputed ranking predates a privacy change: it is being recomputed, retry later"
        )


class RankingServicer(ranking_pb2_grpc.RankingServicer):
    """Answers ranking questions from the boards in the order docs/design.md defines."""

    def __init__(
        self,
        store: BoardReader,
        hot: HotRankings,
        friends: FriendSource[Members],
        profiles: ProfileSource,
        hot_threshold: int,
        live_limit: int,
        max_age_s: float,
        history: History,
        likes: LikeReader,
        privacy: PrivacySource,
    ) -> None:
        """``hot_threshold``: users with more friends may have a precomputed ranking.
        ``live_limit``: the largest ranking computed per call (``friends`` refuses larger
        lists, :func:`bounded_members`); a precomputed ranking of at most this many users
        that predates a change of the friend list, or is older than ``max_age_s``, is not
        used: the ranking is computed from the list. ``history`` answers GetHistory;
        ``likes`` reads the day's likes at serve time (precomputed pages included).
        ``privacy`` says whom each answer must leave out (``rank_svc/privacy_filter.py``)."""
        self._store = store
        self._likes = likes
        self._privacy = privacy
        self._history = history
        self._hot = hot
        self._friends = friends
        self._profiles = profiles
        self._hot_threshold = hot_threshold
        self._live_limit = live_limit
        self._max_age_s = max_age_s
        self._tops: TopCache[_Top] = TopCache(store)
        self._left = LeftScores(store)

    def _read_window(self, request) -> Window:
        """The day, week or month a read asks about; ``InvalidArgument`` naming ``period``
        or ``day``, or unless its board may exist now (:func:`check_readable`): a read of an
        expired or not yet begun board is answered at once instead of reading friend lists
        and boards that cannot exist."""
        window = _window_of(request)
        check_readable(window, time.time(), self._store.settings.retention_days)
        return window

    def _add_entries(
        self, entries, day: date | Window, first_rank: int, rows: Sequence[Row],
        extra: Sequence[int],
    ) -> Mapping[int, social_pb2.Profile]:
        """Appends ``rows`` ranked from ``first_rank`` to the repeated field ``entries``;
        returns the profiles of them and of the ``extra`` users."""
        ids = [row.user_id for row in rows] + list(extra)
        profiles = self._profiles.profiles(ids)
        fill_entries(entries.add, day, first_rank, rows, profiles)
        return profiles

    def GetGlobalTop(self, request, context):
        """The best ``limit`` (default 100, at most 1000) users of the day, week or month
        that the viewer (``viewer_id``, optional) may see."""
        day = self._read_window(request)
        limit = request.limit or DEFAULT_TOP
        if not 1 <= limit <= MAX_TOP:
            raise InvalidArgument("limit", f"must be between 1 and {MAX_TOP}, got {limit}")
        if request.viewer_id < 0:
            raise InvalidArgument("viewer_id", f"must be >= 0, got {request.viewer_id}")
        view = self._privacy.view(request.viewer_id)
        rows, top = self._visible_top(day, limit, view)
        total = top.total - self._hidden_counts(day, view.excluded(request.viewer_id), 0, None)[1]
        reply = ranking_pb2.GetGlobalTopResponse(total_participants=total)
        _set_window(reply, day)
        fill_entries(reply.entries.add, day, 1, rows, top.profiles)
        if top.likes is not None:
            fill_likes(self._likes, day.first, reply.entries, None, top.likes)
        return reply

    def _visible_top(self, day: Window, limit: int, view: View) -> tuple[list[Row], _Top]:
        """The best ``limit`` users ``view`` does not hide, and the cached top they come
        from. The board's top is fetched deeper by as many hidden users as it
        held, until ``limit`` are left or the board is exhausted; each depth is a cached
        question (:class:`TopCache`), so only the filtering is paid per call."""
        fetch = limit
        while True:
            top = self._tops.answer(
                day, (fetch, view.opted_out.generation or view.opted_out.ids),
                lambda depth=fetch: self._top_in_rankings(day, depth, view),
            )
            visible = [row for row in top.rows if not view.hides(row.user_id)]
            if len(visible) >= limit or len(top.rows) < fetch:
                return visible[:limit], top
            fetch = limit + len(top.rows) - len(visible)

    def _top_in_rankings(self, day: Window, depth: int, view: View) -> _Top:
        """The board's best ``depth`` rows with their profiles, and its participants less
        those who left."""
        rows, total = self._store.top(day, depth)
        total -= self._hidden_counts(day, view.opted_out.members, 0, None)[1]
        ids = [row.user_id for row in rows]
        likes = self._likes.counts(day.first, ids, None) if day.period == DAY else None
        return _Top(rows, total, self._profiles.profiles(ids), likes)

    def _hidden_counts(
        self, day: Window, hidden: Members | Sequence[int], user_id: int, score: int | None,
    ) -> tuple[int, int]:
        """Of the ``hidden`` users other than ``user_id``: how many rank above ``score``
        (None: not asked) on the board ``day`` and how many are on it, from one
        ``ZMSCORE`` per board shard."""
        members = hidden if isinstance(hidden, Members) else self._store.members(hidden)
        if not len(members.ids):
            return 0, 0
        above = present = 0
        for other, found in zip(members.ids, self._store.read_scores(day, members)[0],
                                strict=True):
            if found is None or other == user_id:
                continue
            present += 1
            if score is not None and (found > score or (found == score and other < user_id)):
                above += 1
        return above, present

    def GetGlobalRank(self, request, context):
        """One user's place among the participants of the day, week or month they may see
        (users who left the rankings, or who hide from them, are not counted).

        On a single server one round trip reads what the answer needs: the privacy
        generations and the user's view, the rank script (the rank, the participants, the
        shards' versions and, for a day, the user's likes) and the user's profile in
        social_svc's cache unless this process holds it. Those who left are counted from
        their scores kept per board version (:class:`LeftScores`); only the user's own
        hiders, if any, take one more round trip."""
        user_id = request.user_id
        _check_user(user_id)
        day = self._read_window(request)
        privacy_keys = self._privacy.keys(user_id)
        profile_key = self._profiles.cache_key(user_id)
        like_keys = self._likes.keys
        read = self._store.rank_with(
            day, user_id, privacy_keys + ([profile_key] if profile_key else []),
            None if day.period != DAY else like_keys.counts_key(day.first,
                                                                like_keys.shard(user_id)))
        view = self._privacy.view_of(user_id, read.values[:len(privacy_keys)])
        if read.found is None:
            raise NotFound(f"user {user_id} has no report for {day.label}")
        rank, score, total = read.found
        above, present = self._left.counts(day, view.opted_out, read.versions, user_id, score)
        rank, total = rank - above, total - present
        above, present = self._hidden_counts(day, view.excluded(user_id), user_id, score)
        rank, total = rank - above, total - present
        reply = ranking_pb2.GetGlobalRankResponse(
            total_participants=total, in_rankings=user_id not in view.opted_out.ids
        )
        _set_window(reply, day)
        profiles = self._profiles.profile(user_id, profile_key is not None,
                                          read.values[-1] if profile_key else None)
        fill_entries(lambda: reply.entry, day, rank, [Row(user_id, score)], profiles)
        if read.like_fields is not None:
            likes = LikeReader.decode(Members([user_id], like_keys.shards), [read.like_fields],
                                      user_id)
            fill_likes(self._likes, day.first, [reply.entry], user_id, likes)
        return reply

    def GetHistory(self, request, context):
        """One user's days from ``from_day`` to ``to_day`` (:mod:`rank_svc.history`)."""
        days = self._history.days(request.user_id, request.from_day, request.to_day,
                                  time.time())
        reply = ranking_pb2.GetHistoryResponse()
        for found in days:
            entry = reply.days.add(day=found.day.isoformat(), steps=found.steps,
                                   global_rank=found.global_rank, archived=found.archived)
            if found.reached_at_s:
                entry.reached_at.seconds = found.reached_at_s
        return reply

    def GetFriendRanking(self, request, context):
        """The caller and their friends, one page, served from a precomputed ranking when
        the caller is a hot user, else computed from the friend list and the board.

        A user whose cached friend list is no longer than the hot threshold is not looked
        up among the precomputed rankings (one Redis round trip saved for most users). A
        precomputed ranking older than the friend list's last change, or than
        ``max_age_s`` (precompute stopped or fell behind), is used only when it is too
        large to compute per call (``live_limit``): so a removed friend leaves every other
        ranking at once, a user who is no longer hot is not shown the ranking from when
        they were, and no ranking freezes. One older than ``max_age_s`` is marked
        ``stale_ranking``. A ranking too large to compute with nothing precomputed is
        ``UNAVAILABLE`` (:class:`TooLargeToRank`). Days, weeks and months alike. Every page
        carries the ranking's champion, its rank-1 row, read with the page.
        """
        user_id = request.user_id
        _check_user(user_id)
        window = self._read_window(request)
        size = page_size_of(request.page_size)
        token_offset = decode_offset(request.page_token, token_scope(user_id, window))
        reply = ranking_pb2.GetFriendRankingResponse()
        _set_window(reply, window)
        page = self._page(user_id, window, size, token_offset, request.around_me, reply)
        profiles = self._add_entries(reply.entries, window, page.start + 1, page.rows,
                                     (user_id, page.first.user_id))
        fill_entries(lambda: reply.me, window, page.my_index + 1, [page.me], profiles)
        fill_champion(reply.champion, window, page.first, profiles)
        reply.total = page.total
        reply.next_page_token = next_token(user_id, window, page.start, size, page.total)
        if window.period == DAY:
            fill_likes(self._likes, window.first,
                       [*reply.entries, reply.me, reply.champion.entry], user_id, page.likes)
        return reply

    def ListLikes(self, request, context):
        """Who liked a user's day, newest first, keyset-paged by (time, liker id)."""
        user_id = request.user_id
        _check_user(user_id)
        day = window_of(parse_day(request.day), DAY)
        check_readable(day, time.time(), self._store.settings.retention_days)
        size = request.page_size or DEFAULT_LIKERS
        if not 1 <= size <= MAX_LIKERS:
            raise InvalidArgument(
                "page_size", f"must be between 1 and {MAX_LIKERS}, got {request.page_size}"
            )
        scope = f"likes:{user_id}:{day.label}"
        after = None
        if request.page_token:
            at_ms, liker_id = decode_numbers(request.page_token, scope, 2)
            after = Liker(liker_id, at_ms)
        found = self._likes.page(day.first, user_id, size, after)
        profiles = self._profiles.profiles([liker.user_id for liker in found.likers])
        reply = ranking_pb2.ListLikesResponse(total=found.total)
        for liker in found.likers:
            entry = reply.likers.add(user_id=liker.user_id)
            entry.liked_at.FromMilliseconds(liker.at_ms)
            profile = profiles.get(liker.user_id)
            if profile is not None:
                entry.nickname, entry.avatar_url = profile.nickname, profile.avatar_url
        if found.more:
            last = found.likers[-1]
            reply.next_page_token = encode_token(scope, f"{last.at_ms}:{last.user_id}")
        return reply

    def _page(
        self, user_id: int, day: Window, size: int, token_offset: int, around_me: bool,
        reply: ranking_pb2.GetFriendRankingResponse,
    ) -> _Page:
        """A page of the friend ranking of ``day`` (a day, week or month): precomputed or
        computed (see :meth:`GetFriendRanking`)."""
        known = self._friends.known_count(user_id)
        hot_start = None if around_me else token_offset
        view = self._privacy.view(user_id)
        hot = None
        if known is None or known > self._hot_threshold:
            hot = self._precomputed(user_id, day, hot_start, size, view)
        if hot is not None and (self._usable(hot) or hot.total > self._live_limit):
            return self._served_hot(hot, reply)
        try:
            return self._live(user_id, day, size, token_offset, around_me, reply, view)
        except TooLargeToRank:  # the list outgrew the last one seen or precomputed
            hot = hot or self._precomputed(user_id, day, hot_start, size, view)
            if hot is None:
                raise
            return self._served_hot(hot, reply)

    def _precomputed(
        self, user_id: int, day: Window, start: int | None, size: int, view: View,
    ) -> HotPage | None:
        """The page from ``start`` (None: the user's own) of the user's precomputed ranking,
        checked against the friend list's current generation; None if there is none.
        ``PrivacyPending`` if it was computed under another view generation than ``view``'s
        (a privacy change since): such a page is never served."""
        hot = self._hot.page(user_id, day, start, size, self._friends.generation_key(user_id))
        if hot is None or (view.generation and hot.view_generation == view.generation):
            return hot
        if hot.total > self._live_limit:
            raise PrivacyPending(user_id)
        return None

    def _usable(self, hot: HotPage) -> bool:
        """Whether a precomputed ranking may be served as it is: computed from the friend
        list as it is now, and refreshed recently enough."""
        return hot.current and not self._too_old(hot)

    def _too_old(self, hot: HotPage) -> bool:
        return time.time() - hot.computed_at_s > self._max_age_s

    def _served_hot(self, hot: HotPage, reply: ranking_pb2.GetFriendRankingResponse) -> _Page:
        """``hot`` as the page to serve; its time, and whether it is too old, in ``reply``."""
        reply.computed_at.seconds = hot.computed_at_s
        reply.stale_ranking = self._too_old(hot)
        return _Page(hot.start, hot.rows, hot.total, hot.my_index, hot.me, hot.first)

    def _live(
        self, user_id: int, day: Window, size: int, token_offset: int, around_me: bool,
        reply: ranking_pb2.GetFriendRankingResponse, view: View,
    ) -> _Page:
        """The page computed from the friend list and the board ``day`` (a day's like counts
        read in the same round trip), without the friends ``view`` hides; whether the list
        is an old one served because social_svc failed, in ``reply``."""
        listed = self._friends.friends(user_id)
        members = listed.prepared
        extra = [] if day.period != DAY else self._likes.commands(day.first, members, user_id)
        scores, generation, like_replies = self._store.read_scores_with(
            day, members, self._friends.generation_key(user_id), extra
        )
        likes = None if not extra else LikeReader.decode(members, like_replies, user_id)
        if not self._friends.current(listed, generation):  # a friendship changed
            listed = self._friends.changed(user_id)
            scores, _ = self._store.read_scores(day, listed.prepared)
            likes = None  # read for the page
        members, reply.stale_friends = listed.prepared, listed.stale
        ordering = Ordering(
            (member, score) for member, score in zip(members.ids, scores, strict=True)
            if member == user_id or not view.hides(member)
        )
        me = Row(user_id, scores[members.first_at])
        my_index = ordering.index_of(*me)
        start = first_index(size, token_offset, around_me, my_index)
        return _Page(start, ordering.rows(start, start + size), len(ordering), my_index, me,
                     ordering.rows(0, 1)[0], likes)
