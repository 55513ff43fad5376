# PostgreSQL 15 from Debian's packages. Data in /var/lib/postgresql/data (a named volume);
# the cluster is created on the first start from POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB.
ARG BASE
FROM ${BASE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql-15 \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/lib/postgresql/data /run/postgresql \
 && chown -R postgres:postgres /var/lib/postgresql /run/postgresql
ENV PATH=/usr/lib/postgresql/15/bin:$PATH PGDATA=/var/lib/postgresql/data
COPY postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint.sh
USER postgres
EXPOSE 5432
VOLUME ["/var/lib/postgresql/data"]
ENTRYPOINT ["/usr/local/bin/postgres-entrypoint.sh"]
