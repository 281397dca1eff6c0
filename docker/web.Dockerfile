# syntax=docker/dockerfile:1
# The dashboard image: `codecshift web` (gunicorn), `codecshift beat` and
# `codecshift flower`. Built with the project root as the context:
#   ./docker/compose.sh build            (fills VERSION from VERSION.txt)
#   docker build -f docker/web.Dockerfile --build-arg VERSION=$(cat VERSION.txt) .
# No ffmpeg here: probing and encoding happen in the worker image, which the
# control worker and the transcode nodes use.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# -- build: check the version, then build a wheel of the project --------------
FROM ${PYTHON_IMAGE} AS build
ARG VERSION=""
WORKDIR /src
COPY docker/check-version.sh VERSION.txt ./
RUN sh check-version.sh "$VERSION" VERSION.txt
COPY setup.cfg pyproject.toml README.md MANIFEST.in ./
COPY codecshift ./codecshift
COPY tasks ./tasks
COPY web ./web
RUN --mount=type=cache,target=/root/.cache/pip \
    pip wheel --no-deps --wheel-dir /wheels .

# -- runtime ------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
ARG VERSION=""
LABEL org.opencontainers.image.title="CodecShift dashboard" \
      org.opencontainers.image.description="CodecShift dashboard, beat and Flower" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="MIT"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CODECSHIFT_DATA_DIR=/data \
    CODECSHIFT_WEB_HOST=0.0.0.0 \
    CODECSHIFT_WEB_PORT=8080

# A fixed unprivileged user; compose may run the containers as another uid
# (MEDIA_UID), so /data is writable by anyone and sticky, like /tmp.
RUN groupadd --gid 1000 codecshift \
 && useradd --uid 1000 --gid 1000 --home-dir /home/codecshift --create-home \
        --shell /usr/sbin/nologin codecshift \
 && install -d -m 1777 /data

COPY --from=build /wheels /wheels
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install /wheels/*.whl && rm -rf /wheels
# VERSION.txt beside the installed package, where codecshift.version reads it,
# so the version reported is the file's exact text (wheel metadata normalises it).
COPY VERSION.txt /usr/local/share/codecshift/VERSION.txt
RUN cp /usr/local/share/codecshift/VERSION.txt \
       "$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/VERSION.txt"
COPY docker/healthcheck.py /usr/local/bin/codecshift-healthcheck

USER codecshift
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080

# The dashboard answers without a server error (a redirect to sign-in is fine).
# beat and flower override this in docker-compose.yml.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["python", "/usr/local/bin/codecshift-healthcheck", "http"]

CMD ["codecshift", "web"]
