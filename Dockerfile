# syntax=docker/dockerfile:1
# One image for every stepboard process; the command picks the entry point:
#   python -m ingest_svc | social_svc | social_svc migrate | rank_svc
#   python -m rank_svc.consumer | rank_svc.precompute
#   python -m rank_svc.dlq | common.smoke   (operator tools; `helm test` runs the latter)
# The generated gRPC stubs are committed under stepboard/v1/, so nothing is generated here.
# Every Python dependency ships manylinux wheels, so no stage needs a C compiler.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG GO_IMAGE=golang:1.25-bookworm
# The Kubernetes probes of servers that serve TLS run it (the kubelet's gRPC probe has no TLS).
ARG GRPC_HEALTH_PROBE_VERSION=v0.4.63

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/stepboard
ENV PATH=/opt/stepboard/bin:$PATH
WORKDIR /src
# The pinned, hash-checked runtime dependencies first (`make lock` writes requirements.lock),
# in a layer of their own that a change of the code leaves cached.
COPY requirements.lock ./
RUN pip install -r requirements.lock
COPY pyproject.toml ./
COPY common/ common/
COPY ingest_svc/ ingest_svc/
COPY social_svc/ social_svc/
COPY rank_svc/ rank_svc/
COPY stepboard/ stepboard/
COPY stepboard_client/ stepboard_client/
# A regular (not editable) install: the final stage needs only the virtualenv. --no-deps:
# the dependencies are the locked ones above, never resolved again.
RUN pip install --no-deps . \
    && pip uninstall -y pip \
    && python -m compileall -q /opt/stepboard/lib

FROM ${GO_IMAGE} AS probe
ARG GRPC_HEALTH_PROBE_VERSION
# A static binary, so it runs on the slim Python base.
RUN CGO_ENABLED=0 GOBIN=/out go install \
    github.com/grpc-ecosystem/grpc-health-probe@${GRPC_HEALTH_PROBE_VERSION}

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="stepboard" \
      org.opencontainers.image.description="stepboard gRPC services: ingest, social, rank, board consumer, precompute"
# A fixed numeric id, so Kubernetes' runAsNonRoot can verify it without a passwd lookup.
RUN groupadd --system --gid 10001 stepboard \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin stepboard
COPY --from=build /opt/stepboard /opt/stepboard
COPY --from=probe /out/grpc-health-probe /usr/local/bin/grpc_health_probe
ENV PATH=/opt/stepboard/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# An empty directory the user cannot write to: `python -m` puts the working directory
# first on sys.path. In Kubernetes the root filesystem is read-only and /tmp an emptyDir.
WORKDIR /app
USER 10001:10001
EXPOSE 50051 50052 50053
ENTRYPOINT ["python", "-m"]
CMD ["rank_svc"]
