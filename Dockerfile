# restoration-serve on CPU: TorchServe with the five restoration models.
#   docker build -t restoration-serve .
#   docker run --rm -p 127.0.0.1:8080:8080 restoration-serve
# The API token is printed in the container log (and lives in /srv/restoration-serve/.serve/key_file.json).
FROM python:3.11-slim-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends openjdk-17-jre-headless make \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /srv/restoration-serve
COPY requirements.txt .
RUN python -m venv .venv && .venv/bin/pip install --no-cache-dir -r requirements.txt \
    && touch .venv/.installed-requirements
COPY . .
RUN make archives
# Inside the container the APIs must listen on the container's interface; publish them on the
# host's loopback only (-p 127.0.0.1:8080:8080) to keep the bundle's loopback-only default.
RUN sed -i 's#http://127.0.0.1:#http://0.0.0.0:#' config.properties
EXPOSE 8080 8081 8082
CMD ["sh", "-c", "make serve && tail -F .serve/logs/ts_log.log"]
