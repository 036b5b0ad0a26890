# syntax=docker/dockerfile:1
# The simulator image: web (`manage.py serve`), the Celery worker and the one-shot `prepare` all run from it.
# Slim and non-root; the tokenizer rank files ship inside the package (generators_app/tokenizer_files), so
# nothing is downloaded at start. tests/e2e/test_image.py builds and runs what these steps build.

# --- build: the project and its dependencies into a virtualenv ---------------------------------------------
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml README.md ./
COPY simulator_project ./simulator_project
COPY generators_app ./generators_app
COPY limits_app ./limits_app
COPY recordings_app ./recordings_app
# The rank files must be in the installed package: the image never downloads them.
RUN /opt/venv/bin/pip install . \
 && /opt/venv/bin/python -c "import importlib.resources as r; \
d = r.files('generators_app') / 'tokenizer_files'; \
assert all((d / f).is_file() for f in ('o200k_base.tiktoken', 'cl100k_base.tiktoken')), 'tokenizer files missing'"

# --- runtime: the virtualenv, manage.py and an unprivileged user -------------------------------------------
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    SIMULATOR_DATA_DIR=/data \
    SIMULATOR_HOST=0.0.0.0 \
    SIMULATOR_PORT=8000 \
    SIMULATOR_WORKERS=2
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/simulator simulator \
 && mkdir -p /data/media && chown -R simulator:simulator /data
# (a named volume mounted on /data/media, as docker-compose.yml does, starts with this owner)
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY manage.py ./
# The example extensions (SIMULATOR_EXTENSIONS=examples.echo_extension); mount your own file and name its path.
COPY examples ./examples
USER simulator
EXPOSE 8000
# Readiness of this web process (database and Redis reachable); the worker overrides it in docker-compose.yml.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-m", "simulator_project.healthcheck"]
# Alone (`docker run`), it prepares its database and serves; docker-compose.yml prepares once in `migrate` and
# runs web with --no-prepare. uvicorn finishes in-flight requests on SIGTERM (SIMULATOR_GRACEFUL_SHUTDOWN_SECONDS);
# the exec form makes python PID 1, so it gets the signal.
CMD ["python", "manage.py", "serve"]
