# syntax=docker/dockerfile:1
# One image for every role of event_platform: the Dagster code location (gRPC server), the
# webserver, the daemon, the containers the Docker/Kubernetes run launchers start for each run,
# the HTTP API (`event-platform serve`) and the Pub/Sub consumer (`event-platform consume`).
# The role is the command; compose.yaml and deploy/k8s/ give each role its command and probes.
#
#   docker build -t event-platform:latest .
#   (the Iceberg backend on GCS: --build-arg EXTRAS=deploy,gcs)
#   (behind a TLS-intercepting proxy: --secret id=ca,src=/path/to/ca-bundle.crt)
ARG BASE_IMAGE=python:3.11-slim-bookworm
#checkov:skip=CKV_DOCKER_7:FROM reads the BASE_IMAGE argument, whose default above is a pinned version tag

# ---- build: a virtualenv with the package and the run launchers, nothing else -------------
FROM ${BASE_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# A C compiler for the parser's compiled fast path (`event_platform/ingest/_shape.c`), in this
# stage only. python:3.11-slim carries Python's headers; a Debian python3 base needs python3-dev.
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && if [ ! -f "$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["include"])')/Python.h" ]; then \
         apt-get install -y --no-install-recommends python3-dev; fi \
    && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/venv
COPY pyproject.toml setup.py README.md ./
COPY event_platform ./event_platform
# The package's extras: `deploy,gcs` for the Iceberg backend on GCS (pyiceberg, gcsfs, psycopg2).
ARG EXTRAS=deploy
# The CA bundle is mounted for this one step only (a build secret), never written to a layer;
# a build without the secret uses the base image's own CAs. The import check runs with -I: from
# WORKDIR /src, the current directory on sys.path would find the copied sources (no .so), not
# the installed package.
RUN --mount=type=secret,id=ca \
    if [ -s /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi; \
    /opt/venv/bin/pip install ".[${EXTRAS}]" \
    && /opt/venv/bin/python -I -c "import event_platform.ingest._shape" \
    && /opt/venv/bin/pip uninstall --yes pip

# ---- runtime: the virtualenv on a clean base, run as an unprivileged user -------------------
FROM ${BASE_IMAGE} AS runtime
ARG APP_UID=10001
RUN groupadd --gid "${APP_UID}" eventplatform \
    && useradd --uid "${APP_UID}" --gid "${APP_UID}" --no-create-home \
       --home-dir /opt/dagster --shell /usr/sbin/nologin eventplatform \
    && mkdir -p /data/landing /data/published /opt/dagster/home/storage /opt/dagster/app \
    && chown -R "${APP_UID}:${APP_UID}" /data /opt/dagster
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    DAGSTER_HOME=/opt/dagster/home \
    EVENT_PLATFORM_DATA_DIR=/data
WORKDIR /opt/dagster/app
USER ${APP_UID}:${APP_UID}
# 3000 webserver, 4000 code location (gRPC), 8080 HTTP API; none is published by the image.
EXPOSE 3000 4000 8080
# Each role has its own check (compose.yaml healthcheck, Kubernetes probes); one image-wide
# HEALTHCHECK would be wrong for all but one of them.
#checkov:skip=CKV_DOCKER_2:one image serves several roles; each role's check is in compose.yaml and the k8s probes
CMD ["event-platform", "--help"]
