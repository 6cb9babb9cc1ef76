"""``python -m rank_svc.precompute``: the hot-user ranking refresher (placeholder).

Until hot-user rankings land it only validates its configuration, serves metrics and waits
for SIGTERM, so the local stack and the Helm chart already run it.
"""

from common.lifecycle import stop_on_signals
from common.metrics import serve_metrics
from common.runtime import load
from rank_svc.config import PrecomputeConfig


def main() -> None:
    """Reads config, serves metrics, waits for a stop signal."""
    config = load("rank_svc.precompute", PrecomputeConfig.from_env)
    stop = stop_on_signals()
    serve_metrics(config.metrics_port)
    stop.wait()


if __name__ == "__main__":
    main()
