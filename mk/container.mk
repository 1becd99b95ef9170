# Containers: the pinned images a capture can run in. Included by the top-level Makefile.
#
#   make base-image    local/debian:bookworm by debootstrap + docker import (root; skipped when present)
#   make wheels        wheels/*.whl, exactly the hash-locked set of wheels/requirements.lock
#                      (re-resolves and rewrites the lock first when it is missing or its inputs,
#                      requirements.txt / constraints.txt / pyproject's build-system, changed)
#   make wheels-lock   re-resolve and rewrite wheels/requirements.lock regardless
#   make image         the CPU image, tagged nb-evidence:cpu and nb-evidence:<hash12> (content tag:
#                      docker_seam.image_content), on BASE_IMAGE (default local/debian:bookworm), by
#                      `nb-evidence image build`: the build a capture --in-container makes
#   make image-smoke   check nb-evidence:cpu as a capture runs it (non-root, --network none,
#                      read-only root, tmpfs /tmp): --help, the users' port's imports, torch.compile
#   make wheels-cuda   build/wheels-cuda/*.whl (outside the CPU image's context), exactly the set of
#                      wheels/requirements-cuda.lock: 71 wheels, 2.94 GB; prints the total size
#   make wheels-cuda-lock  re-resolve and rewrite wheels/requirements-cuda.lock regardless
#   make image-cuda    the CUDA image (Dockerfile.cuda), tagged nb-evidence:cuda and its content
#                      tag; checks its torch/CUDA/gcc pins at build time; no GPU needed
#   make ci-cuda       image-cuda, then scripts/image-smoke.sh cuda (--help, pins, torch.compile on
#                      CPU, --network none); .ci/run runs it unless NB_CI_CUDA=0
#
# A Docker engine must answer (scripts/start-dockerd.sh starts one as root). The legacy builder is
# used (DOCKER_BUILDKIT=0 for the docker CLI; the SDK's /build endpoint is that builder). Where
# build containers cannot reach the Debian mirror over the default bridge: DOCKER_BUILD_NETWORK=host
# (make image) / DOCKER_BUILD_FLAGS='--network host' (image-cuda, built with the docker CLI).

PY ?= .venv/bin/python
DOCKER ?= docker
LOCAL_BASE_IMAGE ?= local/debian:bookworm
BASE_IMAGE ?= $(LOCAL_BASE_IMAGE)
DOCKER_BUILD_FLAGS ?=
CUDA_CONTEXT ?= build/cuda-context

# The local base is made only when the build is to use it.
_BASE_PREREQ := $(if $(filter $(LOCAL_BASE_IMAGE),$(BASE_IMAGE)),base-image)

# `--label k=v ...` (shell-quoted) and the content tag, as bundle/container.py computes them, so an
# image from `make image` is the very image ensure_image() looks for. $(1): context, $(2): Dockerfile,
# $(3): lock.
_LABELS = $(PY) -c 'import shlex, sys; from bundle.container.docker_seam import image_labels; \
print(" ".join("--label " + shlex.quote(k + "=" + v) for k, v in \
image_labels(sys.argv[1], {"BASE_IMAGE": sys.argv[2]}, sys.argv[3], sys.argv[4]).items()))' \
'$(1)' '$(BASE_IMAGE)' '$(2)' '$(3)'
_TAG = $(PY) -c 'import sys; from bundle.container.docker_seam import image_content; \
print(image_content(sys.argv[1], sys.argv[2], sys.argv[3]).tag)' '$(1)' '$(2)' '$(3)'

.PHONY: base-image wheels wheels-lock image image-smoke wheels-cuda wheels-cuda-lock image-cuda ci-cuda

base-image:
	DOCKER='$(DOCKER)' bash scripts/make-base-image.sh '$(LOCAL_BASE_IMAGE)'

wheels:
	$(PY) scripts/lock-wheels.py wheels

wheels-lock:
	$(PY) scripts/lock-wheels.py lock

# The same build a capture --in-container makes (bundle/container/docker_seam.py build_image, the
# SDK's legacy builder), plus the nb-evidence:cpu tag; prints tag, id, size and seconds.
image: wheels $(_BASE_PREREQ)
	$(PY) -m cli image build --base-image '$(BASE_IMAGE)' --tag nb-evidence:cpu \
		$(if $(DOCKER_BUILD_NETWORK),--network '$(DOCKER_BUILD_NETWORK)')

image-smoke:
	DOCKER='$(DOCKER)' bash scripts/image-smoke.sh cpu

wheels-cuda:
	@start=$$(date +%s); $(PY) scripts/lock-wheels.py wheels --flavor cuda; \
	echo "wheels-cuda: $$(du -sh build/wheels-cuda | cut -f1) in build/wheels-cuda, $$(( $$(date +%s) - start ))s"

wheels-cuda-lock:
	$(PY) scripts/lock-wheels.py lock --flavor cuda

# The CUDA wheels (build/wheels-cuda) stay out of the CPU image's context, so this image builds in
# a staged context of its own: Dockerfile.cuda, its lock, the wheels (hard links) and the source.
image-cuda: wheels-cuda $(_BASE_PREREQ)
	@set -e; \
	start=$$(date +%s); \
	rm -rf '$(CUDA_CONTEXT)'; \
	mkdir -p '$(CUDA_CONTEXT)/wheels' '$(CUDA_CONTEXT)/wheels-cuda'; \
	cp Dockerfile.cuda '$(CUDA_CONTEXT)/'; \
	cp wheels/requirements-cuda.lock '$(CUDA_CONTEXT)/wheels/'; \
	for w in build/wheels-cuda/*.whl; do ln "$$w" '$(CUDA_CONTEXT)/wheels-cuda/' 2>/dev/null || cp "$$w" '$(CUDA_CONTEXT)/wheels-cuda/'; done; \
	tar -c --exclude=__pycache__ --exclude='*.pyc' pyproject.toml README.md cli bundle minibragg \
		| tar -x -C '$(CUDA_CONTEXT)'; \
	labels="$$($(call _LABELS,$(CUDA_CONTEXT),Dockerfile.cuda,wheels/requirements-cuda.lock))"; \
	tag="$$($(call _TAG,$(CUDA_CONTEXT),Dockerfile.cuda,wheels/requirements-cuda.lock))"; \
	eval "DOCKER_BUILDKIT=0 $(DOCKER) build -f '$(CUDA_CONTEXT)/Dockerfile.cuda' \
		--build-arg BASE_IMAGE='$(BASE_IMAGE)' $$labels -t nb-evidence:cuda -t $$tag \
		$(DOCKER_BUILD_FLAGS) '$(CUDA_CONTEXT)'"; \
	rm -rf '$(CUDA_CONTEXT)'; \
	echo "image-cuda: $$tag = nb-evidence:cuda, id $$($(DOCKER) image inspect --format '{{.Id}}' $$tag), \
	$$($(DOCKER) image inspect --format '{{.Size}}' $$tag) bytes, built in $$(( $$(date +%s) - start ))s"

ci-cuda: image-cuda
	DOCKER='$(DOCKER)' bash scripts/image-smoke.sh cuda
