"""How long a call may wait on a dependency (common.call_deadline): pure logic."""

import threading

import pytest

from common import call_deadline


def test_outside_a_call_or_without_a_deadline_the_cap_applies():
    assert call_deadline.wait_s(2.0) == (2.0, False)
    token = call_deadline.enter(None)
    try:
        assert call_deadline.wait_s(2.0, 0.5) == (2.0, False)
    finally:
        call_deadline.leave(token)


def test_a_deadline_shorter_than_the_cap_sets_the_wait_less_the_answers_margin():
    token = call_deadline.enter(1.0)
    try:
        wait, by_deadline = call_deadline.wait_s(2.0)
        assert by_deadline and 0.7 < wait <= 0.8  # a fifth kept back for the answer
        half, _ = call_deadline.wait_s(2.0, 0.5)
        assert half == pytest.approx(wait / 2, abs=0.01)
        assert call_deadline.wait_s(0.1) == (0.1, False)  # the cap is shorter
    finally:
        call_deadline.leave(token)
    assert call_deadline.wait_s(2.0) == (2.0, False)  # forgotten when the call ends


def test_a_long_deadline_keeps_at_most_a_quarter_second_back():
    token = call_deadline.enter(30.0)
    try:
        wait, by_deadline = call_deadline.wait_s(60.0)
        assert by_deadline and 29.7 < wait <= 29.75
    finally:
        call_deadline.leave(token)


def test_each_thread_sees_only_the_call_it_serves():
    token = call_deadline.enter(1.0)
    seen = []
    try:
        thread = threading.Thread(target=lambda: seen.append(call_deadline.wait_s(2.0)))
        thread.start()
        thread.join()
    finally:
        call_deadline.leave(token)
    assert seen == [(2.0, False)]
