# syntax=docker/dockerfile:1
# fraudgate's image: `docker build -t fraudgate:0.1.0 .` (the default image of
# `fraudgate export kubernetes --target native`).
#
# Two stages. `build` installs fraudgate and its dependencies into a virtual environment with uv;
# `runtime` is the same slim base with only that environment, gcc (TL2cgen compiles each model
# to C when the server loads it), LightGBM's OpenMP runtime and an unprivileged user: no source
# tree, no build cache, no pip. The pods run it as uid 10001 with a read-only root filesystem:
# what it writes goes to /tmp and /var/cache/fraudgate (emptyDir volumes in the manifests).
#
# tests/deploy/test_dockerfile.py runs the same install command (the RUN after "# install") and
# the same start command (ENTRYPOINT + CMD) in a clean virtual environment.

# The base is pinned to a patch release; pin its digest too (python:3.11.13-slim-bookworm@sha256:...)
# once your registry mirror has it.
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV UV_VERSION=0.13.9 \
    UV_NO_CACHE=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy
RUN python -m pip install --no-cache-dir "uv==${UV_VERSION}"
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
# install
RUN uv venv /opt/fraudgate && uv pip install --python /opt/fraudgate/bin/python /src

FROM ${PYTHON_IMAGE} AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev libgomp1 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 fraudgate \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /tmp \
      --shell /usr/sbin/nologin fraudgate
COPY --from=build /opt/fraudgate /opt/fraudgate
ENV PATH=/opt/fraudgate/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    XDG_CACHE_HOME=/var/cache/fraudgate
USER 10001:10001
EXPOSE 8080 8081
# start
ENTRYPOINT ["fraudgate"]
CMD ["serve", "--config", "/etc/fraudgate/fraudgate.yaml"]
