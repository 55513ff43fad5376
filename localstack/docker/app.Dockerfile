# The API (chalice local, standing in for API Gateway + Lambda) and the scheduler (standing in for
# EventBridge), one image: the compose file picks the command. Built by localstack/docker/images.py.
#
# PyPI is reached through the host's TLS-intercepting proxy, so pip needs the host's CA bundle.
# It comes in as a BuildKit secret (id=ca) and is never written into a layer.
ARG PYTHON_IMAGE
FROM ${PYTHON_IMAGE}
COPY requirements-api.txt /tmp/requirements-api.txt
RUN --mount=type=secret,id=ca \
    python3 -m venv /opt/venv \
 && PIP_CERT=/run/secrets/ca /opt/venv/bin/pip install -q --require-hashes -r /tmp/requirements-api.txt \
 && rm /tmp/requirements-api.txt
ENV PATH=/opt/venv/bin:$PATH AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1
WORKDIR /app
COPY app/ /app/
RUN useradd --system --uid 10002 --home-dir /app --shell /usr/sbin/nologin hostchecker
USER hostchecker
EXPOSE 8000
# chalice local binds where it is told: all of the container's addresses, published by compose.
CMD ["chalice", "local", "--stage", "local", "--host", "0.0.0.0", "--port", "8000", "--no-autoreload"]
