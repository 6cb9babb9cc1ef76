"""One chaos run: steady ingest, a fault, healing, then the board checked against the ledger."""

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

from common.report_rules import day_start
from tests.chaos.ledger import Ledger, Verdict, record_result
from tests.chaos.load import SteadyIngest
from tests.harness import today, wait_until
from tests.write_path import WritePath

USERS = range(1, 20_001)
AFTER_HEAL_S = 2.0
WARM_PARTICIPANTS = 1000


@dataclass
class Outcome:
    """What a run measured; ``heal_s`` is from the heal action to a board equal to the ledger
    (ingest keeps running for the first ``AFTER_HEAL_S`` of it)."""

    verdict: Verdict
    refused: dict[str, int]
    heal_s: float
    slowest_call_s: float
    calls: int
    replayed: bool | None


def replayed(consumer: subprocess.Popen) -> bool:
    """Whether the consumer noticed Redis had lost board data and replayed from Kafka."""
    return "replaying" in consumer.log_path.read_text(errors="replace")


def run_under_ingest(
    name: str,
    path: WritePath,
    fault: Callable[[], None],
    heal: Callable[[], None],
    converge_timeout_s: float = 90,
    consumer: subprocess.Popen | None = None,
) -> Outcome:
    """Ingests steadily, runs ``fault`` (which also holds it for as long as it wants), then
    ``heal``; stops ingest ``AFTER_HEAL_S`` later, waits for the board to equal the ledger,
    records the figures under ``name`` and returns them (the caller asserts). ``consumer``:
    one whose log tells whether it replayed."""
    day = today()
    ledger = Ledger(day)
    with SteadyIngest(path.ingest, ledger, USERS) as load:
        load.wait_acknowledged(300)
        # The fault must hit a consumer that has written to the boards already.
        wait_until(lambda: path.store.participants(day) >= WARM_PARTICIPANTS, 60, 0.1)
        fault()
        healed_at = time.monotonic()
        heal()
        time.sleep(AFTER_HEAL_S)
    verdict, _ = ledger.converge(path, int(day_start(day).timestamp()), converge_timeout_s)
    outcome = Outcome(
        verdict=verdict,
        refused=dict(ledger.refused),
        heal_s=round(time.monotonic() - healed_at, 1),
        slowest_call_s=round(load.slowest_s, 2),
        calls=load.calls,
        replayed=None if consumer is None else replayed(consumer),
    )
    record_result(name, **vars(outcome))
    return outcome
