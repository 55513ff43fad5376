# Redis 7 from Debian's packages, append-only file in /data (a named volume).
# The password comes from REDIS_PASSWORD at start (never in the image).
ARG BASE
FROM ${BASE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /data && chown redis:redis /data
USER redis
WORKDIR /data
EXPOSE 6379
VOLUME ["/data"]
CMD ["sh", "-c", "exec redis-server --bind 0.0.0.0 --protected-mode no --appendonly yes --dir /data --requirepass \"$REDIS_PASSWORD\""]
