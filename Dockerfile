# Build: docker build --build-arg CHAT_ENV=prod -t chat-server:prod .
# Run:   docker run --rm -p 8080:8080 -v chat-data:/app/data \
#          -e CHAT_ALLOWED_HOSTS=chat.example.org chat-server:prod
# The compile flags live in one place, scripts/compile.ts ("deno task compile");
# --image narrows them for this image: the server reads only under /app,
# /run/secrets and /tmp, and writes only /app/data. Mount certificates and
# keys under /app or /run/secrets.

ARG DENO_VERSION=2.9.6

FROM denoland/deno:${DENO_VERSION} AS build
WORKDIR /src
COPY deno.json deno.lock ./
COPY src ./src
COPY config ./config
COPY public ./public
COPY scripts/compile.ts ./scripts/compile.ts
RUN deno task compile --image && mkdir -p /src/data

# Deno binaries need glibc and libgcc, which the distroless "cc" image has.
FROM gcr.io/distroless/cc-debian12:nonroot
ARG CHAT_ENV=prod
ENV CHAT_ENV=${CHAT_ENV} \
    CHAT_CONFIG_DIR=/app/config \
    CHAT_HOST=0.0.0.0 \
    CHAT_PORT=8080
WORKDIR /app
COPY --from=build /src/dist/chat-server /app/chat-server
COPY config /app/config
# Where history.store: kv keeps its file: owned by the user the server runs as,
# so a named volume mounted here starts out writable.
COPY --from=build --chown=nonroot:nonroot /src/data /app/data
USER nonroot
EXPOSE 8080
# In a cluster an instance may wait up to cluster.nats.start_timeout (60 s) for
# NATS before it listens: the start period covers that wait.
HEALTHCHECK --interval=30s --timeout=3s --start-period=70s --retries=3 \
    CMD ["/app/chat-server", "--healthcheck"]
ENTRYPOINT ["/app/chat-server"]
