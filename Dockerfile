# restoration-serve: one image for CPU and GPU (docs/deployment.md).
#   docker build -t restoration-serve .
#   docker run --rm -p 127.0.0.1:8080:8080 restoration-serve                 # CPU
#   docker run --rm --gpus all -p 127.0.0.1:8080:8080 restoration-serve      # GPU, NVIDIA container runtime
# The inference token is printed once in the log, or supplied: -e TS_TOKEN=... or a file named by TS_TOKEN_FILE.
# Inside the container the APIs listen on the container's interface: publish them on 127.0.0.1 as above.
# BASE_IMAGE: any Debian bookworm with python3 and python3-venv, e.g. one made locally with mmdebstrap
# (docs/deploy.md); the official Python image by default.
ARG BASE_IMAGE=python:3.11-slim-bookworm
# hadolint ignore=DL3006
FROM ${BASE_IMAGE}

# Debian's security updates replace package versions within bookworm, so pinned versions would stop
# the image from building; the base image's tag pins the release.
# hadolint ignore=DL3008
RUN mkdir -p /usr/share/man/man1 \
    && apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jre-headless nginx tini \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log

# The GPU path needs nothing else: PyPI's torch wheels carry CUDA, TorchServe counts the GPUs the NVIDIA
# runtime mounts (nvidia-smi, or CUDA_VISIBLE_DEVICES) and gives each worker one.
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/srv/restoration-serve/.venv/bin:$PATH \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    HOME=/tmp
WORKDIR /srv/restoration-serve

# A CPU-only image, a few GB smaller: --build-arg PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG PIP_EXTRA_INDEX_URL=
COPY requirements.txt .
# python3, not python: a plain Debian base has no `python`. The host's pip configuration (index,
# certificates, constraints) comes in as build secrets (deploy/image_build.py), read only during this
# step and never stored in a layer; without them pip uses PyPI.
RUN --mount=type=secret,id=pip.conf --mount=type=secret,id=pip-cert \
    if [ -f /run/secrets/pip.conf ]; then export PIP_CONFIG_FILE=/run/secrets/pip.conf; fi \
    && if [ -f /run/secrets/pip-cert ]; then export PIP_CERT=/run/secrets/pip-cert; fi \
    && python3 -m venv .venv \
    && .venv/bin/pip install --no-cache-dir --disable-pip-version-check -r requirements.txt

COPY . .
# Models are built into the image: nothing is fetched or built when a container starts.
RUN .venv/bin/python archives/build.py \
    && groupadd --system --gid 10001 serve \
    && useradd --system --uid 10001 --gid serve --no-create-home --shell /usr/sbin/nologin serve

# Code and models stay root-owned and read-only; the server writes only under /tmp (the state folder).
USER 10001:10001
EXPOSE 8080 8082
HEALTHCHECK --interval=30s --timeout=5s --start-period=5m --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/ping', timeout=4)"]
# tini reaps the processes TorchServe's launcher leaves behind and passes signals on.
ENTRYPOINT ["tini", "--", "python", "-m", "deploy.container.entrypoint"]
