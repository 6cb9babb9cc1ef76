MAKEFLAGS += --no-print-directory

.PHONY: up down status install install-test-tools lock test test-unit check-protos protos api-baseline config-doc chart-readme lint demo chaos soak

# Install what is missing, start Kafka/Redis/MariaDB and the services, print how to call them.
# TLS=1: mTLS on every server and client, bearer tokens required, TLS to Redis and MariaDB
# (certificates in .stack/tls).
up: install
	TLS=$(TLS) bash stack/stack.sh up

down:
	bash stack/stack.sh down

status:
	bash stack/stack.sh status

install:
	bash stack/install.sh

# Regenerate the hashed pins from pyproject.toml: requirements-dev.lock (make up, tests, CI),
# then requirements.lock (the image: runtime only, constrained to the same versions). Pins
# already there are kept; UPGRADE=--upgrade, or UPGRADE="--upgrade-package NAME", moves them.
UV = .venv/bin/uv
LOCK = $(UV) pip compile -q pyproject.toml --universal --generate-hashes \
	--custom-compile-command "make lock" $(UPGRADE)

lock: install
	$(LOCK) --extra dev --extra bench -o requirements-dev.lock
	$(LOCK) -c requirements-dev.lock -o requirements.lock

# Also what only the tests and the benchmark need (helm, ghz: go install, minutes when cold).
install-test-tools:
	bash stack/install.sh --test-tools

# The full stack (not only infra): some tests call the running servers on 50051-50053.
# Every tier: tests/unit, tests/integration, and the fast part of tests/chaos.
test: install-test-tools up
	$(MAKE) check-protos
	.venv/bin/ruff check .
	.venv/bin/python -m pytest -q tests/

# The unit tier alone: no stack, no test tools, only `pip install -e .[dev]` (under a minute).
test-unit:
	.venv/bin/python -m pytest -q tests/unit

check-protos:
	.venv/bin/python scripts/check_protos.py

protos:
	.venv/bin/python scripts/gen_protos.py

# At a release: the API as it is becomes the baseline `buf breaking` compares with
# (tests/unit/test_api_checks.py; README, "API compatibility"). Commit protos/baseline/.
api-baseline:
	rm -rf protos/baseline/stepboard
	cp -r protos/stepboard protos/baseline/stepboard

# Regenerate docs/configuration.md from the settings registry (common/settings.py).
config-doc:
	.venv/bin/python scripts/gen_config_doc.py

# Regenerate helm/stepboard/README.md from values.yaml's `# --` comments.
chart-readme:
	.venv/bin/python scripts/gen_chart_readme.py

lint:
	.venv/bin/ruff check .

# Seed the running stack with six users, friendships and a week of steps; print user 1's
# daily and weekly friend rankings and history.
demo: up
	.venv/bin/python scripts/demo.py

# Benchmarks against the running stack (own topics, namespaces, databases and processes).
# Scale fields can be overridden: make bench BENCH_ARGS="--users 500000 --duration 10"
bench: install-test-tools up
	.venv/bin/python -m bench.run --scale full $(BENCH_ARGS)

bench-quick: install-test-tools up
	.venv/bin/python -m bench.run --scale quick $(BENCH_ARGS)

# Every fault-injection test, slow ones included, with a short soak, then 10,000 generated
# bad inputs per RPC (docs/reliability.md).
chaos: up
	.venv/bin/python -m pytest -q -s tests/chaos -m "slow or not slow"
	STEPBOARD_FUZZ_EXAMPLES=10000 .venv/bin/python -m pytest -q tests/integration/test_bad_input.py

# The 10-minute soak: mixed load on real service processes, errors and RSS growth checked.
soak: up
	STEPBOARD_SOAK_SECONDS=$${STEPBOARD_SOAK_SECONDS:-600} \
		.venv/bin/python -m pytest -q -s tests/chaos/test_soak.py -m slow
