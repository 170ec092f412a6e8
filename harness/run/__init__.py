"""Running a session: devices, the agent client, measuring one variant, device set-up,
run metadata and sweep points. Produces records; the analysis reads them from the store."""
