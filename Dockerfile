# syntax=docker/dockerfile:1
# The automl-service worker image.
#
#   docker build -t automl-service .
#   docker run --rm -p 8080:8080 automl-service              # worker, local backend
#   docker run --rm automl-service drain --deadline 3300     # process what is queued, exit
#
# Settings come from AUTOML_SERVICE_* variables (see automl_service/settings.py); secrets
# only from the environment at run time or a managed identity, never baked in here.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Dependencies first, read from pyproject.toml alone, so that a code change does not
# reinstall them.
COPY pyproject.toml ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb')); open('requirements.txt', 'w').write('\n'.join(p['project']['dependencies']) + '\n')" \
    && pip install -r requirements.txt
COPY README.md ./
COPY automl_service ./automl_service
RUN pip install --no-deps . \
    && automl-service --version

FROM ${PYTHON_IMAGE}
# LightGBM needs the GNU OpenMP runtime, which the slim image lacks.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 automl \
    && useradd --system --uid 10001 --gid automl --create-home --home-dir /home/automl \
        --shell /usr/sbin/nologin automl \
    && mkdir -p /var/lib/automl-service \
    && chown automl:automl /var/lib/automl-service
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MPLCONFIGDIR=/tmp/matplotlib \
    AUTOML_SERVICE_HEALTH__ENABLED=true \
    AUTOML_SERVICE_HEALTH__HOST=0.0.0.0 \
    AUTOML_SERVICE_HEALTH__PORT=8080 \
    AUTOML_SERVICE_LOGGING__FORMAT=json \
    AUTOML_SERVICE_LOCAL__DATA_DIR=/var/lib/automl-service
# Numeric, so that Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
WORKDIR /home/automl
VOLUME ["/var/lib/automl-service"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["automl-service", "health", "--timeout", "5"]
ENTRYPOINT ["automl-service"]
CMD ["worker"]
