# The livemetrics image: the `livemetrics` command (worker, simulate, produce,
# report, status, replay) on Python 3.11. docker-compose.yml and
# deploy/kubernetes/ run it.
#
#   docker build -t livemetrics:local .
#   docker run --rm livemetrics:local livemetrics --help
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The wheel compiles the pure core with mypyc (hatch_build.py): a C compiler
# for this stage only. Only what the wheel needs: the package, its topic
# manifest and schemas (force-included as livemetrics/_topics, see
# pyproject.toml), the build hook and the README.
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /build
COPY pyproject.toml README.md hatch_build.py ./
COPY topics ./topics
COPY src ./src
RUN pip wheel --no-deps --wheel-dir /wheels .

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

COPY --from=build /wheels /wheels
RUN pip install /wheels/*.whl && rm -rf /wheels

# An unprivileged user; its home is the working directory, where the worker
# keeps its Faust data directory (.livemetrics/worker).
RUN useradd --system --uid 10001 --create-home --home-dir /var/lib/livemetrics livemetrics
USER 10001
WORKDIR /var/lib/livemetrics

# The worker's web port: /metrics for Prometheus (`livemetrics worker --web-port`).
EXPOSE 6066

CMD ["livemetrics", "--help"]
