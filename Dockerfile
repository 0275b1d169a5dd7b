# syntax=docker/dockerfile:1
# Multi-stage build: compile in the full Rust image, run in a small Debian image
# as a non-root user.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
# Build dependencies once, cached while only src/ changes.
RUN mkdir src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && cargo build --release --locked --bin study-tracker \
    && rm -rf src
# The chart's font is compiled in (include_bytes!).
COPY assets ./assets
COPY src ./src
RUN touch src/main.rs src/lib.rs && cargo build --release --locked --bin study-tracker

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates tzdata \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 tracker \
    && useradd --system --uid 10001 --gid 10001 --home-dir /app --create-home tracker
WORKDIR /app
COPY --from=build /src/target/release/study-tracker /usr/local/bin/study-tracker
# The spool must outlive the container: mount a volume here. The user and its
# group (10001) own it, group-writable with setgid, so a volume mounted with
# group 10001 (Kubernetes `fsGroup: 10001`, `docker run --group-add`) is
# writable too. A volume owned by root and nothing else is not: the bot then
# stops at start with one line naming SPOOL_DIR (see README, "Deploying").
RUN mkdir -p /app/data/spool && chown -R tracker:tracker /app/data && chmod -R 2770 /app/data
VOLUME ["/app/data"]
ENV SPOOL_DIR=/app/data/spool
USER tracker
# /healthz, /readyz and /metrics (HTTP_ADDR; see README, "Health checks and metrics").
EXPOSE 8080
# SIGTERM triggers a graceful shutdown: open sessions are credited up to the signal.
STOPSIGNAL SIGTERM
ENTRYPOINT ["study-tracker"]
CMD ["run"]
