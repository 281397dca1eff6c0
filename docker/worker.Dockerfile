# syntax=docker/dockerfile:1
# The worker image: transcode nodes (`codecshift worker`) and the control
# worker (`codecshift control`, which probes media and so needs ffprobe too).
# Built with the project root as the context:
#   ./docker/compose.sh build            (fills VERSION from VERSION.txt)
#   docker build -f docker/worker.Dockerfile --build-arg VERSION=$(cat VERSION.txt) .
#
# Why jellyfin-ffmpeg: Debian's ffmpeg has VAAPI but neither NVENC nor QSV
# (libvpl); building ffmpeg ourselves would mean maintaining nv-codec-headers,
# libvpl, libva and the Intel media driver in step. Jellyfin's build is made for
# exactly this job (hardware transcoding in containers), is packaged for Debian
# bookworm on amd64 and arm64 with security updates, links NVENC (loaded from
# the driver that nvidia-container-toolkit mounts at run time), QSV through
# oneVPL and VAAPI, keeps libx265 and SVT-AV1 for the CPU queue, and ships its
# own current libva plus the Intel iHD media driver, so QSV and VAAPI work on
# recent Intel GPUs without Debian's older non-free driver. Mesa's VA driver
# from Debian covers AMD VAAPI. The BtbN static builds have the encoders but
# no VA drivers, which we would then have to pin separately.

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
ARG JELLYFIN_FFMPEG=jellyfin-ffmpeg7
LABEL org.opencontainers.image.title="CodecShift worker" \
      org.opencontainers.image.description="CodecShift transcode node and control worker, with an ffmpeg for NVENC, QSV, VAAPI and CPU" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="MIT"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CODECSHIFT_DATA_DIR=/data \
    NVIDIA_DRIVER_CAPABILITIES=compute,video,utility

RUN apt-get update \
 && apt-get install --yes --no-install-recommends ca-certificates curl gnupg \
 && install -d -m 0755 /etc/apt/keyrings \
 && curl -fsSL https://repo.jellyfin.org/jellyfin_team.gpg.key \
      | gpg --dearmor -o /etc/apt/keyrings/jellyfin.gpg \
 && printf 'Types: deb\nURIs: https://repo.jellyfin.org/debian\nSuites: %s\nComponents: main\nArchitectures: %s\nSigned-By: /etc/apt/keyrings/jellyfin.gpg\n' \
      "$(. /etc/os-release && echo "$VERSION_CODENAME")" "$(dpkg --print-architecture)" \
      > /etc/apt/sources.list.d/jellyfin.sources \
 && apt-get update \
 && apt-get install --yes --no-install-recommends "$JELLYFIN_FFMPEG" mesa-va-drivers \
 && ln -s /usr/lib/jellyfin-ffmpeg/ffmpeg /usr/local/bin/ffmpeg \
 && ln -s /usr/lib/jellyfin-ffmpeg/ffprobe /usr/local/bin/ffprobe \
 && apt-get purge --yes --auto-remove curl gnupg \
 && rm -rf /var/lib/apt/lists/*

# Fail the build, not the first job, if this ffmpeg lacks an encoder a queue
# needs (NVENC and QSV are built for amd64 only).
RUN want="libx265 libsvtav1 hevc_vaapi av1_vaapi"; \
    if [ "$(dpkg --print-architecture)" = amd64 ]; then want="$want hevc_nvenc av1_nvenc hevc_qsv av1_qsv"; fi; \
    have=$(ffmpeg -hide_banner -encoders); \
    for encoder in $want; do \
        echo "$have" | grep -qw -- "$encoder" || { echo "ffmpeg lacks the $encoder encoder" >&2; exit 1; }; \
    done

# A fixed unprivileged user in the groups that usually own /dev/dri; compose
# adds the host's render group id (RENDER_GID) because it differs per machine.
RUN groupadd --gid 1000 codecshift \
 && useradd --uid 1000 --gid 1000 --groups video --home-dir /home/codecshift --create-home \
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

# The worker in this container answers a Celery ping through the broker.
HEALTHCHECK --interval=60s --timeout=20s --start-period=60s --retries=3 \
    CMD ["python", "/usr/local/bin/codecshift-healthcheck", "celery"]

CMD ["codecshift", "worker"]
