# The web UI: the host-built frontend/dist (make ui) behind Debian's nginx. Unknown paths answer
# index.html with 200 (try_files), so deep links such as /checks/<id> load the app.
# config.json (the API's URL as the browser sees it) is written at start from $UI_API_URL.
ARG BASE
FROM ${BASE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx-light \
 && rm -rf /var/lib/apt/lists/* /etc/nginx/sites-enabled/default
COPY nginx.conf /etc/nginx/conf.d/hostchecker.conf
COPY ui-entrypoint.sh /usr/local/bin/ui-entrypoint.sh
COPY dist/ /usr/share/hostchecker-ui/
EXPOSE 80
ENTRYPOINT ["/usr/local/bin/ui-entrypoint.sh"]
CMD ["nginx", "-g", "daemon off;"]
