# LocalStack 4.14.0 on Python 3.13 with the host mode's pins (localstack/requirements-host.txt).
# Debian bookworm has Python 3.11 only, so the build context carries the host's pyenv 3.13 tree
# (copied to the same prefix, because its scripts and sysconfig name that prefix), plus the
# shared libraries its extension modules link against, from Debian's packages.
# pip reaches PyPI with the host's CA bundle as a BuildKit secret (id=ca), never in a layer.
ARG BASE
FROM ${BASE}
ARG PYTHON_PREFIX
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates libssl3 libffi8 libsqlite3-0 libbz2-1.0 liblzma5 zlib1g libreadline8 libncursesw6 \
      libgdbm6 libuuid1 libexpat1 \
 && rm -rf /var/lib/apt/lists/*
COPY python3.13/ ${PYTHON_PREFIX}/
COPY requirements-host.txt /tmp/requirements-host.txt
RUN --mount=type=secret,id=ca \
    ${PYTHON_PREFIX}/bin/python3.13 -m venv /opt/localstack-venv \
 && PIP_CERT=/run/secrets/ca PIP_NO_CACHE_DIR=1 /opt/localstack-venv/bin/pip install -q \
      --disable-pip-version-check -r /tmp/requirements-host.txt \
 && /opt/localstack-venv/bin/python -c "import localstack.runtime.main" \
 && rm /tmp/requirements-host.txt
# The host mode's settings (scripts/localstack.py): no DNS server, no downloads or analytics.
ENV PATH=/opt/localstack-venv/bin:$PATH GATEWAY_LISTEN=0.0.0.0:4566 DNS_ADDRESS=0 \
    LOCALSTACK_VOLUME_DIR=/var/lib/localstack/volume FILESYSTEM_ROOT=/var/lib/localstack/filesystem \
    LOCALSTACK_HOST=localhost.localstack.cloud:4566 SKIP_SSL_CERT_DOWNLOAD=1 DISABLE_EVENTS=1 \
    LOCALSTACK_TELEMETRY_DISABLED=1 DO_NOT_TRACK=1 EAGER_SERVICE_LOADING=0 AWS_DEFAULT_REGION=us-east-1
COPY localstack-healthcheck.py /usr/local/bin/localstack-healthcheck.py
# The same CloudFormation stack as host mode, deployed by LocalStack's READY init hook.
COPY local.yaml /opt/hostchecker/infra/local.yaml
COPY ready.d/ /etc/localstack/init/ready.d/
EXPOSE 4566
VOLUME ["/var/lib/localstack"]
CMD ["python", "-m", "localstack.runtime.main"]
