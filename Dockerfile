# Build: docker build --build-arg CHAT_ENV=prod -t chat-server:prod .
# Run:   docker run --rm -p 8080:8080 -v chat-data:/app/data chat-server:prod
# The compile flags live in one place, the "compile" task of deno.json.

ARG DENO_VERSION=2.9.6

FROM denoland/deno:${DENO_VERSION} AS build
WORKDIR /src
COPY deno.json deno.lock ./
COPY src ./src
COPY config ./config
COPY public ./public
RUN deno task compile && mkdir -p /src/data

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
HEALTHCHECK --interval=30s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/app/chat-server", "--healthcheck"]
ENTRYPOINT ["/app/chat-server"]
