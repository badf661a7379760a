# syntax=docker/dockerfile:1
# ml-inference: a static Go binary on an empty base image.
#  - build stage: the Go toolchain pinned to the version the project is tested with;
#  - runtime: scratch (nothing to patch), CA certificates for OTLP over TLS,
#    a numeric non-root user, models baked in under /models (mount another
#    directory over it, or use the MLflow source, to change them).
# It writes nothing to disk, so it runs with readOnlyRootFilesystem: true.

FROM golang:1.26.8-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY cmd ./cmd
COPY internal ./internal
ARG VERSION=dev
ARG REVISION=unknown
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X main.version=${VERSION} -X main.revision=${REVISION}" \
      -o /out/ml-inference ./cmd/ml-inference
# The passwd entry lets tools resolve the user name; the process needs none.
RUN echo 'nonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin' > /out/passwd

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/passwd /etc/passwd
COPY --from=build /out/ml-inference /ml-inference
COPY models /models
USER 65532:65532
EXPOSE 8000
ENV ML_INFERENCE_MODELS_DIR=/models
ENTRYPOINT ["/ml-inference"]
