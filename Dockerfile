# rmbd image: two static binaries on an empty base, so building it needs no
# image from any registry. `make docker` builds the binaries into
# build/docker and uses that folder as the build context.
FROM scratch
COPY rmbd rmbd-cli /
# /data is owned by the user rmbd runs as, so that a volume mounted there
# (docker compose creates it from the image) is writable: --data-dir /data.
COPY --chown=65532:65532 data /data
# /keys likewise, for a volume holding the cluster key file (see
# examples/compose: `rmbd keygen /keys/cluster.key` fills it once).
COPY --chown=65532:65532 data /keys
USER 65532:65532
# Prometheus metrics, /healthz and /readyz (rmbd --metrics-listen).
ENV RMBD_METRICS_LISTEN=0.0.0.0:9100
EXPOSE 8000/udp 8000/tcp 7946/udp 7946/tcp 9100/tcp
# Serving: /healthz on the metrics listener (the image has no curl; rmbd
# asks itself). A cluster that waits for readiness asks --ready (see
# examples/compose).
HEALTHCHECK --interval=5s --timeout=3s --start-period=3s --retries=3 \
	CMD ["/rmbd", "healthcheck"]
ENTRYPOINT ["/rmbd"]
CMD ["--listen", "0.0.0.0:8000"]
