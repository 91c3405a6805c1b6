# notifyd: docker build -t notifyd . && docker run -v /path/to/your/config-dir:/etc/notifyd:ro notifyd
# (the directory holds notifyd.yaml and whatever it names, e.g. directory/users.yaml)
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY notifyd ./notifyd
COPY schemas ./schemas
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin notifyd \
    && mkdir -p /etc/notifyd /run/notifyd \
    && chown notifyd /run/notifyd
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
COPY config/notifyd.example.yaml /etc/notifyd/notifyd.yaml
# The example names its user directory relative to itself.
COPY config/directory /etc/notifyd/directory
ENV NOTIFYD_CONFIG=/etc/notifyd/notifyd.yaml \
    RUNTIME_DIRECTORY=/run/notifyd \
    PYTHONUNBUFFERED=1
USER notifyd
VOLUME ["/etc/notifyd"]
EXPOSE 9464
# The listener binds loopback by default; in a container set metrics.listen: "0.0.0.0:9464".
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s \
    CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:9464/healthz', timeout=2).status == 200 else 1)"
STOPSIGNAL SIGTERM
ENTRYPOINT ["notifyd", "run"]
