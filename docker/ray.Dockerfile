# syntax=docker/dockerfile:1
# The Ray image every Ray pod runs (the chart's RayCluster and the RayJob launcher's per-job clusters): Ray 2.60,
# torch 2.13 and dljobs' workloads. KubeRay starts it with its own `ray start` command, so there is no
# entrypoint. Runs as uid 1000 (the chart's Ray pods expect it) with a read-only root filesystem: the chart
# mounts emptyDirs at /tmp (Ray's session dir; HOME=/tmp) and /dev/shm (object store, DataLoader workers).
#
# torch from PyPI's Linux x86_64 index bundles its CUDA libraries: the same image runs on GPU nodes (with the
# NVIDIA driver and device plugin) and on CPU nodes.
#
# Build from the repository root:
#   docker build -f docker/ray.Dockerfile -t dljobs/ray:0.1.0 .

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS wheel
WORKDIR /src
COPY . .
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
ARG DLJOBS_VERSION=0.1.0
ARG RAY_VERSION=2.60.0
ARG TORCH_VERSION=2.13.0
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# KubeRay's readiness and liveness probes call wget inside the Ray container.
RUN apt-get update \
    && apt-get install -y --no-install-recommends wget \
    && rm -rf /var/lib/apt/lists/*
RUN pip install "torch==${TORCH_VERSION}"
# smart_open[s3] and boto3: Ray downloads a job's s3:// working_dir (the RayJob launcher's code bundles) with them.
RUN --mount=type=bind,from=wheel,source=/wheels,target=/wheels \
    pip install --find-links /wheels \
        "dljobs[train]==${DLJOBS_VERSION}" \
        "ray[default,train,tune,serve]==${RAY_VERSION}" \
        "torch==${TORCH_VERSION}" \
        "smart_open[s3]" \
        boto3
RUN groupadd --gid 1000 ray \
    && useradd --uid 1000 --gid 1000 --home-dir /home/ray --create-home --shell /bin/bash ray
USER 1000:1000
WORKDIR /home/ray
