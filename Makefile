# restoration-serve: `make serve`, `make stop`, `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-requirements

.PHONY: serve stop test archives install java bench-serve bench-sweep batch

install: $(STAMP)

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

java:
	@command -v java >/dev/null 2>&1 || { echo "Java was not found: TorchServe needs a JDK 17; install it (Debian/Ubuntu: sudo apt-get install openjdk-17-jdk-headless) and run make again."; exit 1; }

archives: $(STAMP)
	$(PY) archives/build.py

serve: java archives
	$(PY) -m serving.server start

stop:
	@if [ -x $(PY) ]; then $(PY) -m serving.server stop; else echo "nothing to stop (no $(VENV))"; fi

# make studio [PORT=8000]: the web page on http://127.0.0.1:PORT, in front of `make serve`'s TorchServe (started if not up)
.PHONY: studio
studio: java archives
	$(PY) -m studio.server $(if $(PORT),--port $(PORT))

test: java $(STAMP)
	$(PY) -m pytest tests

# make train-deblur DATA="/photos /faces": train an endpoint and install its weights into archives/
train-%: $(STAMP)
	$(PY) -m training.train $* $(if $(DATA),--data $(DATA)) --export-to archives/$*/$*.pt

# make eval-deblur DATA="/photos /faces": held-out quality and latency of the committed weights
eval-%: $(STAMP)
	$(PY) -m benchmarks.$*_quality --data $(DATA)

# latency and throughput against issue 9's targets through a fresh TorchServe; rewrites docs/serving.md's table
bench-serve: $(STAMP) java
	$(PY) -m benchmarks.serve_latency --readme

# make bench-sweep [SWEEP="--quick --endpoints superres"]: batching settings per endpoint at 1, 4, 16 clients
bench-sweep: $(STAMP) java
	$(PY) -m benchmarks.batching_sweep $(SWEEP)

# mutation fuzzer, long run: make fuzz N=100000 [LIVE=1: also through a fresh TorchServe]; prints counts per outcome
N ?= 20000
fuzz: $(STAMP)
	$(PY) -m tests.fuzz.run --n $(N) $(if $(LIVE),--live)

# Locust at a steady rate over every endpoint of a fresh TorchServe: make soak DURATION=2h [RATE=3];
# failures, p50/p95 per endpoint per minute, worker RSS, log folder size (benchmarks/results/soak*)
DURATION ?= 10m
soak: $(STAMP) java
	$(PY) -m benchmarks.soak --duration $(DURATION) $(if $(RATE),--rate $(RATE))

.PHONY: fuzz soak

# make batch IN=photos OUT=restored ENDPOINT=deblur [OPTS="ensemble=true"] [FORMAT=jpeg] [WORKERS=4] [URL=...] [CRF=14 | LOSSLESS=1]:
# every image and video under IN through a running `make serve` (or the server at URL), into OUT (resumes: existing
# outputs are skipped, a video continues from its last finished frame); CRF/LOSSLESS: the videos' quality (docs/video.md)
batch: $(STAMP)
	@test -n "$(IN)" -a -n "$(OUT)" -a -n "$(ENDPOINT)" || { echo "usage: make batch IN=<folder> OUT=<folder> ENDPOINT=<name> [OPTS=\"key=value ...\"] [FORMAT=jpeg] [WORKERS=4] [CRF=14 | LOSSLESS=1]"; exit 2; }
	$(PY) -m client.batch "$(IN)" "$(OUT)" --endpoint "$(ENDPOINT)" $(foreach o,$(OPTS),--opt "$(o)") $(if $(FORMAT),--format $(FORMAT)) $(if $(WORKERS),--workers $(WORKERS)) $(if $(URL),--url $(URL)) $(if $(CRF),--crf $(CRF)) $(if $(LOSSLESS),--lossless)

# docs/deployment.md's capacity table from benchmarks/results/serve_latency.json (after `make bench-serve` on a quiet machine)
capacity: $(STAMP)
	$(PY) -m benchmarks.capacity --write-readme

# lint the Dockerfile (hadolint) and validate the compose, Grafana, Kubernetes and KServe files offline;
# `make test` runs these too (tests/test_deploy.py), plus live checks of the container's entrypoint
deploy-check: $(STAMP)
	$(PY) -m pytest tests/test_deploy.py -k "not test_container"

.PHONY: capacity deploy-check

# make openapi [OPENAPI=docs/openapi.json]: the inference API as OpenAPI 3.1, generated from handlers/options.py
# (standard library only: no venv needed); the studio serves the same document at /openapi.json
OPENAPI ?= docs/openapi.json
openapi:
	$(PYTHON) -m handlers.openapi "$(OPENAPI)"

.PHONY: openapi

# make image [BASE_IMAGE=...] [ENGINE=podman|docker] [RUNTIME=runc] [TAG=restoration-serve]: build the container image with docker
# or podman, whichever works here; pip in the build uses this host's pip configuration (deploy/image_build.py)
TAG ?= restoration-serve
image: $(STAMP)
	BASE_IMAGE="$(BASE_IMAGE)" ENGINE="$(ENGINE)" RUNTIME="$(RUNTIME)" $(PY) -m deploy.image_build --tag "$(TAG)"

# make gpu-check OUT=gpu-check [DRY_RUN=1]: on a machine with one NVIDIA GPU, every endpoint through a GPU
# TorchServe (half precision) against the CPU answers, latency and GPU memory, all under OUT (benchmarks/gpu_check.py)
gpu-check: $(STAMP) java
	$(PY) -m benchmarks.gpu_check "$(or $(OUT),gpu-check)" $(if $(DRY_RUN),--dry-run)

.PHONY: image gpu-check
