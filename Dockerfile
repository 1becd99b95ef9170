# nb-evidence, CPU image: the C engine's compiler and the PyTorch port's runtime, both pinned.
#
#   make base-image image          here (no registry): builds on local/debian:bookworm
#   docker build .                 elsewhere: builds on the public base pinned below
#
# Legacy-builder compatible (DOCKER_BUILDKIT=0): no RUN --mount, no heredocs, no # syntax line.
# Build context: .dockerignore admits only this file, wheels/ and the project's own source.
#
# Base: Docker Hub's debian:bookworm-slim by its OCI image-index digest. The digest was not pulled
# here (no registry answers on the machines this project is built on); it is the one that many
# independent public Dockerfiles pin as debian:bookworm-slim in July-August 2026, one of them
# naming its tag bookworm-20260713-slim. Whatever base is used, a capture's manifest records the
# built image's id and the base reference (the nb-evidence.base-image label).
ARG BASE_IMAGE=debian:bookworm-slim@sha256:7b140f374b289a7c2befc338f42ebe6441b7ea838a042bbd5acbfca6ec875818

# ---------------------------------------------------------------------------------------------
# system: pinned gcc 12.2 (the C engine's compiler), Python 3.11 from Debian, git, a non-root user;
# and what torch.compile needs at run time on CPU, where inductor compiles C++ as it goes: g++ and
# libstdc++'s headers (the same 12.2.0-14+deb12u1 as gcc) and Python's headers (Python.h).
# libpython3.11-dev's exact version also fixes the interpreter's (python3.11, libpython3.11-stdlib
# depend on it by `=`).
FROM ${BASE_IMAGE} AS system

ENV DEBIAN_FRONTEND=noninteractive \
    LANG=C.UTF-8

# Exact Debian versions (bookworm). The apt step is skipped when the base already holds every
# pinned version (a base made with `NB_BASE_INCLUDE=... make base-image` for an engine whose build
# containers cannot reach a mirror); otherwise it needs the Debian mirror. The check afterwards
# fails the build if any pin is not what got installed.
RUN set -eu; \
    pins="gcc=4:12.2.0-3 gcc-12=12.2.0-14+deb12u1 cpp-12=12.2.0-14+deb12u1 libgcc-12-dev=12.2.0-14+deb12u1 libgomp1=12.2.0-14+deb12u1 g++=4:12.2.0-3 g++-12=12.2.0-14+deb12u1 libstdc++-12-dev=12.2.0-14+deb12u1 python3=3.11.2-1+b1 python3-venv=3.11.2-1+b1 python3-dev=3.11.2-1+b1 libpython3.11-dev=3.11.2-6+deb12u9"; \
    unpinned="libc6-dev git"; \
    need=""; \
    for p in $pins; do \
        have="$(dpkg-query -W -f='${Version}' "${p%%=*}" 2>/dev/null || true)"; \
        [ "$have" = "${p#*=}" ] || need="$need $p"; \
    done; \
    for n in $unpinned; do \
        dpkg-query -W -f='${Status}' "$n" 2>/dev/null | grep -q 'ok installed' || need="$need $n"; \
    done; \
    if [ -n "$need" ]; then \
        apt-get update; \
        apt-get install -y --no-install-recommends $need; \
        rm -rf /var/lib/apt/lists/*; \
    fi; \
    for p in $pins; do \
        have="$(dpkg-query -W -f='${Version}' "${p%%=*}")"; \
        if [ "$have" != "${p#*=}" ]; then echo "pin ${p} not met: ${p%%=*} is $have" >&2; exit 1; fi; \
    done; \
    gcc --version | head -n 1; g++ --version | head -n 1; python3 --version; \
    test -f "$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["include"])')/Python.h"; \
    git config --system safe.directory '*'; \
    groupadd --gid 1000 nb; \
    useradd --uid 1000 --gid nb --home-dir /tmp --no-create-home --shell /usr/sbin/nologin nb

# ---------------------------------------------------------------------------------------------
# venv: the runtime's wheels, installed offline and hash-checked against the committed lock.
# A stage of its own so that the wheel files never become a layer of the final image.
FROM system AS venv

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

COPY wheels/requirements.lock /tmp/wheels/requirements.lock
COPY wheels/*.whl /tmp/wheels/
RUN python3 -m venv /opt/nb-evidence \
    && /opt/nb-evidence/bin/pip install --no-index --require-hashes \
        --find-links /tmp/wheels -r /tmp/wheels/requirements.lock \
    && /opt/nb-evidence/bin/pip check

# ---------------------------------------------------------------------------------------------
# final: system + the venv + the project itself (installed --no-deps, offline).
FROM system

ARG BASE_IMAGE
LABEL org.opencontainers.image.title="nb-evidence" \
      org.opencontainers.image.description="C-versus-PyTorch parity evidence (CPU)" \
      nb-evidence.base-image="${BASE_IMAGE}" \
      nb-evidence.flavor="cpu"

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PATH=/opt/nb-evidence/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/tmp \
    MPLCONFIGDIR=/tmp \
    PYTHONDONTWRITEBYTECODE=1

COPY --from=venv /opt/nb-evidence /opt/nb-evidence
COPY pyproject.toml README.md /tmp/src/
COPY cli /tmp/src/cli
COPY bundle /tmp/src/bundle
COPY minibragg /tmp/src/minibragg
RUN /opt/nb-evidence/bin/pip install --no-index --no-deps --no-build-isolation /tmp/src \
    && rm -rf /tmp/src \
    && test -x /opt/nb-evidence/bin/nb-evidence \
    && /opt/nb-evidence/bin/python -c "import bundle"

USER nb
WORKDIR /tmp
ENTRYPOINT ["nb-evidence"]
