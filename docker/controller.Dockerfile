# syntax=docker/dockerfile:1
# The dljobs controller image: `dljobs server` (API and background loops) on port 8765; the chart's migration
# hook runs `dljobs server --migrate-only` from the same image. Runs as uid 10001 with a read-only root
# filesystem: the chart mounts emptyDirs at /tmp and /var/lib/dljobs (DLJOBS_HOME).
#
# Build from the repository root (the file beside this one keeps the context to the package):
#   docker build -f docker/controller.Dockerfile -t dljobs/controller:0.1.0 .
# DLJOBS_VERSION must be the version in pyproject.toml: the install below pins it, so a mismatch fails the build.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS wheel
WORKDIR /src
COPY . .
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
ARG DLJOBS_VERSION=0.1.0
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DLJOBS_HOME=/var/lib/dljobs
RUN --mount=type=bind,from=wheel,source=/wheels,target=/wheels \
    pip install --find-links /wheels "dljobs[server,kube]==${DLJOBS_VERSION}"
RUN groupadd --gid 10001 dljobs \
    && useradd --uid 10001 --gid 10001 --home-dir /var/lib/dljobs --create-home --shell /usr/sbin/nologin dljobs
USER 10001:10001
WORKDIR /var/lib/dljobs
EXPOSE 8765
ENTRYPOINT ["dljobs"]
CMD ["server"]
